"""The stand-in's Windows services: display names, states, start modes, dependencies.

Kept in `<sandbox>/services.json`; each stop and start is logged (services.log).
Stopping a service stops its running dependants first (as
ServiceController.Stop does); starting one starts what it depends on first
(as the service control manager does); a disabled service does not start.
Start modes are Win32_Service.StartMode's words (Auto, Manual, Disabled), set
as Set-Service -StartupType sets them (Automatic, Manual, Disabled).

A service may be bound to real processes (`--bind-service`, BoundServices): on a
lab Windows front end, RTCSRV is the pool member, so stopping it really closes
the FE's ports and starting it opens them again. The process is stopped before
the service counts as Stopped and started (listening) before it counts as
Running; a start that fails leaves it Stopped, with the reason.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any


class StandInError(Exception):
    """An error with the message .NET/PowerShell would give."""


def _svc(
    display: str, *depends: str, mode: str = "Auto", status: str = "Running"
) -> dict[str, Any]:
    return {
        "display_name": display,
        "status": status,
        "start_mode": mode,
        "depends_on": list(depends),
    }


#: `--ocs-front-end`: the services of a consolidated OCS 2007 R2 front end, as the stand-in
#: plays them (the RTC* names are Microsoft's; the dependencies are the stand-in's own, to
#: give the restart order something to get right), plus IIS and a third-party agent that
#: depends on the front-end service without an OCS display name.
OCS_FRONT_END_SERVICES: dict[str, dict[str, Any]] = {
    "RTCSRV": _svc("Office Communications Server Front-End"),
    "RTCIMMCU": _svc("Office Communications Server IM Conferencing", "RTCSRV"),
    "RTCACPMCU": _svc("Office Communications Server Telephony Conferencing", "RTCSRV"),
    "RTCAVMCU": _svc("Office Communications Server Audio/Video Conferencing", "RTCSRV"),
    "RTCDATAMCU": _svc("Office Communications Server Web Conferencing", "RTCSRV"),
    "RTCHOST": _svc("Office Communications Server Application Host", "RTCSRV"),
    "RTCRGS": _svc("Office Communications Server Response Group", "RTCHOST"),
    "RTCCAA": _svc("Office Communications Server Conferencing Attendant", "RTCHOST"),
    "RTCCAS": _svc("Office Communications Server Conferencing Announcement", "RTCHOST"),
    "RTCOVC": _svc("Office Communications Server Outside Voice Control", "RTCHOST"),
    "RTCMONAGENT": _svc(
        "Office Communications Server Monitoring Agent", mode="Manual", status="Stopped"
    ),
    "W3SVC": _svc("World Wide Web Publishing Service", "WAS"),
    "WAS": _svc("Windows Process Activation Service"),
    "CONTOSOAGENT": _svc("Contoso Backup Agent", "RTCSRV"),
}


#: Set-Service -StartupType (ServiceStartMode, case-insensitive) -> Win32_Service.StartMode
STARTUP_TYPES = {"automatic": "Auto", "manual": "Manual", "disabled": "Disabled"}
#: what Windows says when a Disabled service is asked to start (ERROR_SERVICE_DISABLED)
SERVICE_DISABLED = (
    "The service cannot be started, either because it is disabled or because it has no"
    " enabled devices associated with it"
)


#: seconds a bound process may take to stop or to start listening
BOUND_TIMEOUT = 60.0


class BoundServices:
    """Windows services played by real processes: `control` is the argv prefix of a
    systemctl-like command (the lab's `lab-svc --host FE`), run as `control ACTION NAME`
    for each process bound to the service."""

    def __init__(self, control: tuple[str, ...], bound: dict[str, tuple[str, ...]]) -> None:
        if bound and not control:
            raise ValueError("bound services need a control command")
        self._control = control
        self._bound = {name.lower(): processes for name, processes in bound.items()}

    def __call__(self, action: str, service: str) -> None:
        for process in self._bound.get(service.lower(), ()):
            try:
                done = subprocess.run(
                    [*self._control, action, process],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=BOUND_TIMEOUT,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise StandInError(
                    f"Cannot {action} service {service} on computer '.': {type(exc).__name__}."
                ) from None
            if done.returncode != 0:
                reason = (done.stderr.strip() or done.stdout.strip())[-300:] or "no message"
                raise StandInError(f"Cannot {action} service {service} on computer '.': {reason}")


def parse_binding(text: str) -> tuple[str, tuple[str, ...]]:
    """`--bind-service WINDOWS=PROCESS[,PROCESS]` -> (WINDOWS, (PROCESS, ...))."""
    name, sep, processes = text.partition("=")
    bound = tuple(p.strip() for p in processes.split(",") if p.strip())
    if not sep or not name.strip() or not bound:
        raise ValueError("write --bind-service SERVICE=PROCESS[,PROCESS]")
    return name.strip(), bound


class ServiceTable:
    def __init__(
        self,
        path: Path,
        log: Callable[[str], None],
        bound: Callable[[str, str], None] | None = None,
    ) -> None:
        self._path = path
        self._log = log
        #: called as bound(action, service) before a stop or start takes effect
        self._bound = bound
        self._lock = threading.Lock()

    def all(self) -> dict[str, dict[str, Any]]:
        """name -> {display_name, status, start_mode, depends_on}."""
        raw = json.loads(self._path.read_text())
        return {name: _service_entry(name, value) for name, value in raw.items()}

    def _save_services(self, services: dict[str, dict[str, Any]]) -> None:
        self._path.write_text(json.dumps(services, indent=1))

    def _canonical(self, services: dict[str, dict[str, Any]], name: str) -> str:
        found = next((s for s in services if s.lower() == name.lower()), None)
        if found is None:
            raise StandInError(f"Cannot find any service with service name '{name}'.")
        return found

    def find(self, names: list[str], patterns: list[str]) -> list[dict[str, Any]]:
        """As the services script: the named ones (each must exist), those whose display
        name is -like a pattern, and running dependants of any found, with their states."""
        services = self.all()
        queue = [self._canonical(services, n) for n in names]
        queue += [
            name
            for name, entry in services.items()
            if any(_like(entry["display_name"], p) or _like(name, p) for p in patterns)
        ]
        order: list[str] = []
        while queue:
            name = queue.pop(0)
            if name in order:
                continue
            order.append(name)
            queue += [d for d in self._dependants(services, name) if _running(services[d])]
        return [
            {
                "name": name,
                "display_name": services[name]["display_name"],
                "status": services[name]["status"],
                "start_mode": services[name]["start_mode"],
                "depends_on": list(services[name]["depends_on"]),
            }
            for name in order
        ]

    @staticmethod
    def _dependants(services: dict[str, dict[str, Any]], name: str) -> list[str]:
        return [
            other
            for other, entry in services.items()
            if name.lower() in (d.lower() for d in entry["depends_on"])
        ]

    def stop(self, name: str) -> None:
        """ServiceController.Stop: running dependants are stopped first."""
        with self._lock:
            services = self.all()
            events: list[str] = []
            try:
                self._stop(services, self._canonical(services, name), events)
            finally:  # what did stop is saved even when a bound process would not
                self._save_services(services)
        for event in events:
            self._log(event)

    def _stop(self, services: dict[str, dict[str, Any]], name: str, events: list[str]) -> None:
        for dependant in self._dependants(services, name):
            if _running(services[dependant]):
                self._stop(services, dependant, events)
        if services[name]["status"] != "Stopped":
            if self._bound is not None:
                self._bound("stop", name)
            services[name]["status"] = "Stopped"
            events.append(f"stop {name}")

    def start(self, name: str) -> None:
        """ServiceController.Start: the service control manager starts what it depends
        on first; a disabled service does not start."""
        with self._lock:
            services = self.all()
            events: list[str] = []
            try:
                self._start(services, self._canonical(services, name), events)
            finally:
                self._save_services(services)
        for event in events:
            self._log(event)

    def _start(self, services: dict[str, dict[str, Any]], name: str, events: list[str]) -> None:
        entry = services[name]
        if entry["status"] == "Running":
            return
        if entry["start_mode"] == "Disabled":
            raise StandInError(f"Cannot start service {name} on computer '.': {SERVICE_DISABLED}.")
        for dependency in entry["depends_on"]:
            self._start(services, self._canonical(services, dependency), events)
        if self._bound is not None:
            self._bound("start", name)
        entry["status"] = "Running"
        events.append(f"start {name}")

    def set_start_mode(self, name: str, startup_type: str) -> str:
        """Set-Service -StartupType: the mode as Win32_Service now shows it."""
        mode = STARTUP_TYPES.get(startup_type.lower())
        if mode is None:
            raise StandInError(
                f"Cannot bind parameter 'StartupType'. Cannot convert value \"{startup_type[:40]}\""
                ' to type "System.ServiceProcess.ServiceStartMode".'
            )
        with self._lock:
            services = self.all()
            canonical = self._canonical(services, name)
            changed = services[canonical]["start_mode"] != mode
            services[canonical]["start_mode"] = mode
            self._save_services(services)
        if changed:
            self._log(f"config {canonical} {mode}")
        return mode

    def status(self, name: str) -> tuple[str, str]:
        services = self.all()
        canonical = self._canonical(services, name)
        return canonical, services[canonical]["status"]


def _service_entry(name: str, value: Any) -> dict[str, Any]:
    """A services.json entry; a bare status string (as `--services` writes) is a service
    started at boot that depends on nothing, displayed under its own name."""
    if isinstance(value, str):
        return _svc(name, status=value)
    return {
        "display_name": str(value.get("display_name", name)),
        "status": str(value.get("status", "Stopped")),
        "start_mode": str(value.get("start_mode", "Auto")),
        "depends_on": [str(d) for d in value.get("depends_on", [])],
    }


def _running(entry: dict[str, Any]) -> bool:
    return entry["status"] == "Running"


def _like(text: str, pattern: str) -> bool:
    """PowerShell's -like: wildcards * ? [..], case-insensitive."""
    return fnmatchcase(text.lower(), pattern.lower())
