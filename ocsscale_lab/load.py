"""`ocsscale lab load`: the continuous client load, from every Linux test client at once.

Each client runs its own :class:`~ocsscale.probes.load.LoadRunner` in its own
process inside its namespace (`ip netns exec NS <lab bin>/ocsscale lab
load-worker ...`). A process, not a thread that entered the namespace: only a
process started by `ip netns exec` sees the client's own /etc/hosts and
resolv.conf, and a load through the pool name must resolve it as that client
does, on every request, to follow a cutover.

Each worker writes its report as JSON to a file in a private directory under
the lab; :class:`LabLoad` starts the workers, forwards marks to them (a marks
file they poll), stops them (SIGTERM: a worker stops its load and still
writes its report) and reads the reports back. The failover drill and the
cutover use :class:`LabLoad` in the background; the CLI runs it to the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ocsscale.errors import UsageError
from ocsscale.probes.load import LoadRunner, LoadTarget, check_bounds, system_resolver
from ocsscale.probes.load_report import LoadReport
from ocsscale.probes.tlsclient import TlsOptions

from . import state as labstate
from . import system
from .state import LabState
from .system import LabError
from .topology import POOL_FQDN, VIP

Through = Literal["vip", "name"]
THROUGH: tuple[Through, ...] = ("vip", "name")
MAX_DURATION = 600.0  # seconds, per run
MAX_RATE = 200.0  # requests per second, per client
REQUEST_TIMEOUT = 2.0
#: plain TCP ports of the profile that also get a connect with a banner read
#: (the lab's FE stand-in names itself in it): cheap, and it identifies the FE
BANNER_PORT = 5065
_MARK_POLL = 0.2
_READY_TIMEOUT = 30.0  # a worker starts Python and reads the pool file first
_STOP_GRACE = REQUEST_TIMEOUT + 15.0  # a worker ends its requests in flight, then writes


def check_request(duration: float, rate: float, through: str) -> Through:
    """Refuse a load outside the lab's bounds (exit 2), before anything starts."""
    check_bounds(rate=rate, duration=duration, max_rate=MAX_RATE, max_duration=MAX_DURATION)
    if through not in THROUGH:
        raise UsageError(f"--through must be one of: {', '.join(THROUGH)}")
    return through  # type: ignore[return-value]


def lab_targets(state: LabState, through: Through) -> list[LoadTarget]:
    """SIP OPTIONS over TLS on the profile's SIP/TLS port; a TLS handshake on
    every other check port that speaks TLS (444: the certificate names the FE),
    a TCP connect on those that do not; and a TCP connect with a banner read on
    the stand-in's banner port."""
    from ocsscale.config.loader import load_pool

    profile = load_pool(state.pool_file).profile
    address = POOL_FQDN if through == "name" else VIP
    sip_tls = profile.sip_ports.tls
    targets: list[LoadTarget] = []
    if sip_tls is not None:
        targets.append(LoadTarget(address, sip_tls, "sip-tls", POOL_FQDN))
    for port in profile.check_ports:
        if port == sip_tls:
            continue
        kind = "tls" if port in profile.tls_ports else "tcp"
        targets.append(LoadTarget(address, port, kind, POOL_FQDN))
    if BANNER_PORT in profile.ports and BANNER_PORT not in profile.tls_ports:
        targets.append(LoadTarget(address, BANNER_PORT, "tcp", POOL_FQDN, banner=True))
    return targets


def linux_clients(state: LabState) -> list[str]:
    return [h.name for h in state.topo().by_role("client")]


def windows_clients(state: LabState) -> list[str]:
    return [h.name for h in state.topo().by_role("windows-client")]


@dataclass
class _Worker:
    client: str
    process: subprocess.Popen[bytes]
    output: Path
    log: Path


class LabLoad:
    """The lab's client load, running from every Linux test client at once."""

    def __init__(self, state: LabState, *, duration: float, rate: float, through: str) -> None:
        self.through = check_request(duration, rate, through)
        self.duration = duration
        self.rate = rate
        self.state = state
        self.clients = linux_clients(state)
        if not self.clients:
            raise UsageError(f"lab {state.name} has no Linux test client to run the load from")
        self._workers: list[_Worker] = []
        self._directory: Path | None = None
        self._lock = threading.Lock()

    @property
    def marks_file(self) -> Path:
        if self._directory is None:
            raise RuntimeError("the load was not started")
        return self._directory / "marks"

    def start(self) -> None:
        system.require_root_linux()
        wrapper = self.state.bin_dir / "ocsscale"
        if not os.access(wrapper, os.X_OK):
            raise LabError(f"lab {self.state.name}: {wrapper} is missing; the lab is broken")
        self._directory = Path(tempfile.mkdtemp(prefix="load-", dir=self.state.directory))
        self.marks_file.write_text("", encoding="utf-8")
        env = dict(os.environ)
        env["PATH"] = f"{self.state.bin_dir}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        env.update({"OCSSCALE_LAB": self.state.name, "OCSSCALE_LAB_DIR": str(self.state.directory)})
        topo = self.state.topo()
        try:
            for client in self.clients:
                ns = topo.ns(client)
                if not system.netns_exists(ns):
                    raise LabError(f"namespace {ns} of {client} is missing: the lab is broken")
                output = self._directory / f"{client}.json"
                log = self._directory / f"{client}.log"
                argv = [
                    "ip", "netns", "exec", ns, str(wrapper), "lab", "load-worker",
                    "--name", self.state.name, "--client", client,
                    "--duration", repr(float(self.duration)), "--rate", repr(float(self.rate)),
                    "--through", self.through,
                    "--marks", str(self.marks_file), "--output", str(output),
                ]  # fmt: skip
                with open(log, "wb") as out, open(os.devnull, "rb") as devnull:
                    process = subprocess.Popen(
                        argv, stdin=devnull, stdout=out, stderr=subprocess.STDOUT, env=env,
                        start_new_session=True, close_fds=True,
                    )  # fmt: skip
                self._workers.append(_Worker(client, process, output, log))
            self._wait_ready()
        except BaseException:
            self._terminate_all()
            self._cleanup()
            raise

    def _wait_ready(self) -> None:
        """Return once every worker's load runs (so a drill starts under load)."""
        deadline = time.monotonic() + _READY_TIMEOUT
        for worker in self._workers:
            while not ready_file(worker.output).exists():
                if worker.process.poll() is not None:
                    break  # ended already (a short load): stop() reads its report
                if time.monotonic() > deadline:
                    tail = _tail(worker.log)
                    raise LabError(
                        f"the load on {worker.client} did not start within "
                        f"{_READY_TIMEOUT:.0f} s{': ' + tail if tail else ''}"
                    )
                time.sleep(0.05)

    def mark(self, label: str) -> None:
        """Label what every client sees from now on (e.g. a phase or step name)."""
        line = json.dumps({"t": time.time(), "label": label})
        with self._lock, self.marks_file.open("a", encoding="utf-8") as marks:
            marks.write(line + "\n")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every client's load has ended by itself; True when it has."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in self._workers:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                worker.process.wait(left)
            except subprocess.TimeoutExpired:
                return False
        return True

    def stop(self) -> dict[str, LoadReport]:
        """Stop every client's load (if still running) and return each one's report."""
        try:
            for worker in self._workers:
                if worker.process.poll() is None:
                    worker.process.send_signal(signal.SIGTERM)
            self._wait_or_kill()
            return {worker.client: self._read(worker) for worker in self._workers}
        finally:
            self._cleanup()

    def run(self) -> dict[str, LoadReport]:
        """Start, wait for the end (bounded), stop: the whole run, as the CLI does it."""
        self.start()
        try:
            self.wait(self.duration + _STOP_GRACE)
        except BaseException:  # Ctrl-C: still stop and clean up
            self.stop()
            raise
        return self.stop()

    def _wait_or_kill(self) -> None:
        deadline = time.monotonic() + _STOP_GRACE
        for worker in self._workers:
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(10)

    def _terminate_all(self) -> None:
        for worker in self._workers:
            if worker.process.poll() is None:
                worker.process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.process.wait(10)

    def _read(self, worker: _Worker) -> LoadReport:
        try:
            data = json.loads(worker.output.read_text(encoding="utf-8"))
            return LoadReport.from_dict(data)
        except (OSError, ValueError, TypeError):
            tail = _tail(worker.log)
            raise LabError(
                f"the load on {worker.client} wrote no report "
                f"(exit {worker.process.returncode}){': ' + tail if tail else ''}"
            ) from None

    def _cleanup(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


# -- the worker, inside one client's namespace -------------------------------------


def worker_main(
    name: str, client: str, duration: float, rate: float, through: str, marks: Path, output: Path
) -> LoadReport:
    """Run one client's load to its end (or SIGTERM) and write its report to `output`."""
    from ocsscale.actions.probing import answered_by, certificate_owner
    from ocsscale.config.loader import load_pool

    checked = check_request(duration, rate, through)
    state = labstate.require(name)
    if client not in linux_clients(state):
        raise UsageError(f"lab {name} has no Linux test client {client!r}")
    pool = load_pool(state.pool_file).pool
    load = LoadRunner(
        lab_targets(state, checked),
        rate=rate,
        duration=duration,
        tls=TlsOptions(verify=True, ca_bundle=str(state.ca_dir / "ca.pem")),
        identify=lambda ev: answered_by(ev, pool) or certificate_owner(ev, pool),
        timeout=REQUEST_TIMEOUT,
        resolve=system_resolver if checked == "name" else None,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    seen = _apply_marks(load, marks, 0)  # marks made before this process was up
    load.start()
    ready_file(output).touch()
    while not stop.is_set() and not load.wait(_MARK_POLL):
        seen = _apply_marks(load, marks, seen)
    _apply_marks(load, marks, seen)
    report = load.stop()
    tmp = output.with_suffix(".tmp")
    tmp.write_text(json.dumps(report.to_dict()), encoding="utf-8")
    os.replace(tmp, output)
    return report


def ready_file(output: Path) -> Path:
    """Where a worker says its load runs (and its signal handlers are set)."""
    return output.with_suffix(".ready")


def _apply_marks(load: LoadRunner, marks: Path, seen: int) -> int:
    """Apply the marks appended since the last look; how many lines are seen now."""
    try:
        # a line still being written has no newline yet: leave it for the next look
        lines = marks.read_text(encoding="utf-8").split("\n")[:-1]
    except OSError:
        return seen
    for line in lines[seen:]:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            load.mark(str(json.loads(line)["label"]))
    return len(lines)
