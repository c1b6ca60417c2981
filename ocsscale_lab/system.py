"""The machine-level operations the lab needs: iproute2, namespaces, processes.

iproute2 is driven through subprocess with argv lists (never a shell). Every
failure becomes a `LabError` carrying the command and iproute2's own message.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ocsscale.errors import OcsscaleError, UsageError

NETNS_RUN = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")
_CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class LabError(OcsscaleError):
    """Building or removing a lab failed."""


def require_root_linux() -> None:
    if platform.system() != "Linux":
        raise UsageError("the lab needs Linux (it is built from network namespaces)")
    if os.geteuid() != 0:
        raise UsageError(
            "the lab needs root: it creates network namespaces and starts sshd and BIND",
            hint="run it as root, e.g. sudo ocsscale lab up",
        )
    if shutil.which("ip") is None:
        raise UsageError("`ip` (iproute2) is not installed", hint="apt-get install iproute2")


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 30.0) -> str:
    """Run a command and return its stdout; raise LabError with its stderr on failure."""
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise LabError(f"`{argv[0]}` is not installed") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{' '.join(argv)}` did not finish within {timeout:.0f} s") from None
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    argv = ["ip"] + (["-n", ns] if ns else []) + list(args)
    return run(argv, check=check)


# -- namespaces ------------------------------------------------------------------


def netns_exists(name: str) -> bool:
    return (NETNS_RUN / name).exists()


def netns_add(name: str) -> None:
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", ns=name)


def netns_pids(name: str) -> list[int]:
    if not netns_exists(name):
        return []
    out = run(["ip", "netns", "pids", name], check=False)
    return [int(p) for p in out.split() if p.isdigit()]


def netns_delete(name: str) -> None:
    if netns_exists(name):
        ip("netns", "delete", name, check=False)
        # `ip netns delete` leaves the mount point when it is still busy.
        (NETNS_RUN / name).unlink(missing_ok=True)


def sysctl(ns: str, key: str, value: str) -> None:
    run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}"])


def in_namespace(ns: str, fn: Callable[[], T]) -> T:
    """Call `fn` in a thread that has entered namespace `ns`, as `ip netns exec` would.

    The thread enters the network namespace and, when the lab wrote one, sees
    /etc/netns/<ns>/hosts as /etc/hosts (a private mount namespace of its own,
    slave to the machine's so nothing it mounts propagates back): names resolve
    as they do for a process started in `ns`. Sockets opened by `fn` belong to
    the namespace and keep working after it returns, from any thread.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(NETNS_RUN / ns, os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise LabError(f"cannot enter namespace {ns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            hosts = ETC_NETNS / ns / "hosts"
            if hosts.is_file():
                _thread_sees_hosts(libc, ns, hosts)
            result.append(fn())
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name=f"netns-{ns}", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


_CLONE_NEWNS = 0x00020000
_MS_BIND = 4096
_MS_REC = 16384
_MS_SLAVE = 1 << 19


def _thread_sees_hosts(libc: ctypes.CDLL, ns: str, hosts: Path) -> None:
    """Give the calling thread its own mount namespace with `hosts` over /etc/hosts.

    The namespace is made a recursive slave before anything is mounted, so the
    bind mount can never reach the machine's /etc/hosts; it ends with the thread.
    """

    def check(rc: int, what: str) -> None:
        if rc != 0:
            err = ctypes.get_errno()
            raise LabError(f"namespace {ns}: cannot {what}: {os.strerror(err)}")

    check(libc.unshare(_CLONE_NEWNS), "unshare the mount namespace")
    check(libc.mount(None, b"/", None, _MS_REC | _MS_SLAVE, None), "make / a slave mount")
    check(libc.mount(bytes(hosts), b"/etc/hosts", None, _MS_BIND, None), "bind its hosts file")


# -- processes -------------------------------------------------------------------


def spawn(ns: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> int:
    """Start `argv` inside namespace `ns`, detached, with output to `log`; its pid.

    `ip netns exec` execs the command, so the pid is the command's own. The
    process gets /etc/netns/<ns>/{hosts,resolv.conf} bind-mounted over /etc.
    """
    with open(log, "ab") as out, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdin=devnull,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
    return proc.pid


def cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.rstrip(b"\0").decode(errors="replace").split("\0") if raw else []


def alive(pid: int) -> bool:
    """Running, not a zombie (PID 1 may not reap the processes we orphan)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot): with the pid, its identity."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def is_ours(pid: int, started: int | None, argv: Sequence[str]) -> bool:
    """The pid still runs the command we started, not a later process reusing the pid.

    Some servers rewrite their command line (sshd shows "sshd: /usr/sbin/sshd
    -D -f ... [listener]"), so the recorded argv may also appear inside it.
    """
    if not alive(pid) or (started is not None and start_time(pid) != started):
        return False
    seen = cmdline(pid)
    if seen is None:
        return False
    return seen == list(argv) or " ".join(argv) in " ".join(seen)


def terminate(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; reap it if it is our child."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap(pid)
            if not alive(pid):
                return
            time.sleep(0.02)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def listening_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN state in the network namespace of process `pid`."""
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 3 and parts[3] == "0A":
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


def wait_listening(pid: int, ports: Sequence[int], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            raise LabError(f"{what} exited at start (see its log)")
        if set(ports) <= listening_ports(pid):
            return
        time.sleep(0.02)
    missing = sorted(set(ports) - listening_ports(pid))
    raise LabError(f"{what} did not listen on {missing} within {timeout:.0f} s")
