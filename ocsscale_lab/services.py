"""The lab's long-running processes, each a named "service" of one host.

A service's definition (argv, namespace, the ports it must listen on) is a JSON
file under the lab directory, and its pid is kept next to it. `lab up`, `lab
down` and `python -m ocsscale_lab.svc` (what the transports call to restart a
service over SSH) all start and stop services through this module, so the pid
the lab records is always the one running.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from . import system
from .system import LabError


@dataclass(frozen=True)
class Service:
    host: str
    name: str
    ns: str
    argv: tuple[str, ...]
    ports: tuple[int, ...]  # TCP ports that must listen before it counts as started
    env: tuple[tuple[str, str], ...] = ()  # set on top of a fixed minimal environment
    #: run first, ending in `exec "$@"` of argv (e.g. to adjust the mount namespace);
    #: argv alone is what identifies the running process
    launcher: tuple[str, ...] = ()
    #: what `reload` sends (engine: HUP, HAProxy master-worker: USR2); "" = no reload
    reload_signal: str = ""
    #: installed by `lab up` but started by a run (the LB before configure-lb):
    #: stopped is a healthy state for it
    on_demand: bool = False

    def directory(self, lab_dir: Path) -> Path:
        return lab_dir / "services" / self.host

    def pid_file(self, lab_dir: Path) -> Path:
        return self.directory(lab_dir) / f"{self.name}.pid"

    def log_file(self, lab_dir: Path) -> Path:
        return lab_dir / "hosts" / self.host / "log" / f"{self.name}.log"

    def start_mode_file(self, lab_dir: Path) -> Path:
        return self.directory(lab_dir) / f"{self.name}.start-mode"


def definition_path(lab_dir: Path, host: str, name: str) -> Path:
    return lab_dir / "services" / host / f"{name}.json"


def define(lab_dir: Path, service: Service) -> None:
    path = definition_path(lab_dir, service.host, service.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    service.log_file(lab_dir).parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(service), indent=1) + "\n", encoding="utf-8")


def load(lab_dir: Path, host: str, name: str) -> Service:
    path = definition_path(lab_dir, host, name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        known = ", ".join(names(lab_dir, host)) or "none"
        raise LabError(f"host {host} has no service {name!r} (services: {known})") from None
    return Service(
        host=data["host"],
        name=data["name"],
        ns=data["ns"],
        argv=tuple(data["argv"]),
        ports=tuple(data["ports"]),
        env=tuple((k, v) for k, v in data.get("env", [])),
        launcher=tuple(data.get("launcher", [])),
        reload_signal=str(data.get("reload_signal", "")),
        on_demand=bool(data.get("on_demand", False)),
    )


def names(lab_dir: Path, host: str) -> list[str]:
    directory = lab_dir / "services" / host
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.json"))


START_MODES = ("enabled", "disabled")


def start_mode(lab_dir: Path, service: Service) -> str:
    """Whether the host's boot starts it, as `systemctl is-enabled` says it: what
    enable/disable last set (a file in the lab directory, so it outlives every
    process), else enabled for what `lab up` starts and disabled for what a run
    starts (on_demand). A file holding anything else is an error, not a guess."""
    try:
        text = service.start_mode_file(lab_dir).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return "disabled" if service.on_demand else "enabled"
    except OSError as exc:
        raise LabError(f"{service.name} on {service.host}: start mode unreadable: {exc}") from None
    if text not in START_MODES:
        raise LabError(f"{service.name} on {service.host}: start mode file holds no start mode")
    return text


def set_start_mode(lab_dir: Path, service: Service, mode: str) -> None:
    if mode not in START_MODES:
        raise ValueError(mode)
    path = service.start_mode_file(lab_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(mode + "\n", encoding="utf-8")
    partial.replace(path)  # never a half-written file


def pid_of(lab_dir: Path, service: Service) -> int | None:
    """The pid of the running service, if the recorded pid still runs its argv."""
    try:
        pid_text, started_text = service.pid_file(lab_dir).read_text().split()
        pid, started = int(pid_text), int(started_text)
    except (OSError, ValueError):
        return None
    return pid if system.is_ours(pid, started, service.argv) else None


# The same environment whether a service is started by `lab up` or restarted
# over SSH, so it behaves the same either way.
_BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}


def spawn(lab_dir: Path, service: Service) -> int:
    """Start the service (unless it runs) without waiting; its pid, recorded."""
    if (pid := pid_of(lab_dir, service)) is not None:
        return pid
    env = {**_BASE_ENV, **dict(service.env)}
    service.directory(lab_dir).mkdir(parents=True, exist_ok=True)
    argv = (*service.launcher, *service.argv)
    pid = system.spawn(service.ns, argv, service.log_file(lab_dir), env)
    # The pid and its start time, which tells it apart from a later process reusing the pid.
    service.pid_file(lab_dir).write_text(f"{pid} {system.start_time(pid)}\n")
    return pid


def wait_ready(lab_dir: Path, service: Service, pid: int, timeout: float = 20.0) -> None:
    what = f"{service.name} on {service.host}"
    try:
        system.wait_listening(pid, service.ports, what, timeout)
    except LabError as exc:
        tail = _log_tail(service.log_file(lab_dir))
        raise LabError(f"{exc}{': ' + tail if tail else ''}") from None


def start(lab_dir: Path, service: Service, timeout: float = 20.0) -> int:
    pid = spawn(lab_dir, service)
    wait_ready(lab_dir, service, pid, timeout)
    return pid


def reload(lab_dir: Path, service: Service) -> int:
    """Signal the running service to re-read its configuration; its pid."""
    pid = pid_of(lab_dir, service)
    if pid is None:
        raise LabError(f"{service.name} on {service.host} is not running: nothing to reload")
    if not service.reload_signal:
        raise LabError(f"{service.name} on {service.host} cannot reload (no reload signal)")
    import signal

    os.kill(pid, getattr(signal, "SIG" + service.reload_signal))
    return pid


def stop(lab_dir: Path, service: Service) -> None:
    pid = pid_of(lab_dir, service)
    if pid is not None:
        system.terminate(pid)
    service.pid_file(lab_dir).unlink(missing_ok=True)


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])
