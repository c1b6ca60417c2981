"""Processes, namespaces and /proc readings for the benchmark.

Everything the benchmark starts is registered here and ended by pid; every network
namespace it creates is deleted by name. `Sandbox.close()` runs on normal exit, on
Ctrl-C and on SIGTERM (run.py turns SIGTERM into KeyboardInterrupt).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

CLONE_NEWNET = 0x40000000
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """An expected failure with a message meant for the operator (no traceback)."""


def run_quiet(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


class Sandbox:
    """A private network namespace the benchmark moves into, plus its child processes."""

    def __init__(self, tag: str) -> None:
        self.netns = f"ocsbench-{tag}-{os.getpid()}"
        self.extra_netns: list[str] = []
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="ocsbench-"))
        self._entered = False

    # -- namespace -------------------------------------------------------------------
    def enter(self, sysctls: dict[str, str]) -> None:
        """Create the namespace and move this (single-threaded) process into it.

        Children inherit it, so every proxy, backend and load tool sees only this
        namespace's loopback and its sysctls; the host's settings are never changed.
        """
        run_quiet(["ip", "netns", "add", self.netns])
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.netns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise BenchError(f"setns({self.netns}): {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(fd)
        self._entered = True
        run_quiet(["ip", "link", "set", "lo", "up"])
        for key, value in sysctls.items():
            Path("/proc/sys", key.replace(".", "/")).write_text(value)

    def add_netns(self, suffix: str) -> str:
        name = f"{self.netns}-{suffix}"
        run_quiet(["ip", "netns", "add", name])
        self.extra_netns.append(name)
        run_quiet(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    # -- processes -------------------------------------------------------------------
    def start(
        self,
        name: str,
        argv: list[str],
        cpu: int | str | None = None,
        netns: str | None = None,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a process (taskset and `ip netns exec` both exec, so the pid is the tool's)."""
        if shutil.which(argv[0]) is None and not os.path.exists(argv[0]):
            raise BenchError(f"{argv[0]} is not installed (needed for {name})")
        full = list(argv)
        if cpu is not None:
            full = ["taskset", "-c", str(cpu), *full]
        if netns is not None:
            full = ["ip", "netns", "exec", netns, *full]
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            full,
            stdin=stdin,
            stdout=stdout if stdout is not None else log,
            stderr=log,
            cwd=cwd,
            env=env,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.tmp / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        if proc.poll() is None:
            if proc.stdin is not None:
                try:
                    proc.stdin.write(b"quit\n")
                    proc.stdin.flush()
                    proc.stdin.close()
                except OSError:
                    pass
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.5 if proc.stdin is None else 5.0)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    def close(self, keep_logs: bool = False) -> None:
        for _, proc in reversed(list(self.procs)):
            try:
                self.stop(proc, timeout=5.0)
            except Exception:  # noqa: BLE001 - cleanup must go on to the next process
                proc.kill()
        for name in self.extra_netns:
            run_quiet(["ip", "netns", "del", name], check=False)
        if self._entered or Path(f"/run/netns/{self.netns}").exists():
            run_quiet(["ip", "netns", "del", self.netns], check=False)
        if not keep_logs:
            shutil.rmtree(self.tmp, ignore_errors=True)


def raise_nofile(limit: int) -> int:
    """Raise our (and so our children's) fd limit as far as allowed; return what we got.

    Raising the hard limit needs CAP_SYS_RESOURCE; in a container without it the
    benchmark spreads connections over more processes instead (see conns.py).
    """
    nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    limit = min(limit, nr_open)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < limit:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
            return limit
        except (ValueError, PermissionError):
            pass
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    return min(limit, hard)


# -- /proc readings --------------------------------------------------------------------
def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (an engine with worker processes counts as a whole)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process tree (all threads), in seconds."""
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def rss_bytes(pid: int) -> int:
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def wait_for_port(
    host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BenchError(
                f"process exited with code {proc.returncode} before {host}:{port} opened"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{host}:{port} did not accept connections within {timeout:.0f} s")
