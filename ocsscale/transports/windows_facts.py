"""What the tool reads from a Windows host, as plain data, and the pure rules over it.

The WinRM transport runs the scripts (winrm_windows.py); everything here is
parsing and judging their answers, so it is tested without a host:
- the PowerShell and .NET versions a host reports, against what the scripts need;
- the order to stop and start services in, from their dependencies;
- the IIS loopback check settings, for whether a host name is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..errors import StepFailed

#: what every script the tool sends needs (tests/winrm/ps20_allowlist.yaml holds them to it)
MIN_POWERSHELL = (2, 0)
MIN_DOTNET = (3, 5)


def version_tuple(text: str) -> tuple[int, ...]:
    """'3.5.30729.4926' -> (3, 5, 30729, 4926); unreadable parts end the tuple."""
    parts = []
    for piece in str(text).strip().lstrip("vV").split("."):
        if not piece.isascii() or not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def missing_requirements(powershell: str, dotnet: Sequence[str]) -> list[str]:
    """What a host lacks to run the tool's scripts, each said with what to install."""
    missing = []
    if version_tuple(powershell)[:2] < MIN_POWERSHELL:
        missing.append(
            f"PowerShell 2.0 or later (found {powershell or 'none'}): install Windows"
            " Management Framework 2.0 (KB968930) on Windows Server 2003 SP2 and 2008"
        )
    best = max((version_tuple(v) for v in dotnet), default=())
    if best[:2] < MIN_DOTNET:
        found = ", ".join(dotnet) if dotnet else "none"
        missing.append(
            f".NET Framework 3.5 or later (found {found}): install .NET Framework 3.5 SP1"
            " (on Windows Server 2008 R2, the .NET Framework 3.5.1 feature)"
        )
    return missing


# -- services ---------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    display_name: str
    status: str  # Running, Stopped, ...
    start_mode: str  # Auto, Manual, Disabled (Win32_Service.StartMode)
    depends_on: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_result(cls, item: Mapping[str, Any]) -> ServiceInfo:
        depends = item.get("depends_on") or []
        if isinstance(depends, str):  # a one-element list written as a string
            depends = [depends]
        return cls(
            name=str(item.get("name", "")),
            display_name=str(item.get("display_name", "")),
            status=str(item.get("status", "")),
            start_mode=str(item.get("start_mode", "")),
            depends_on=tuple(str(d) for d in depends),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "status": self.status,
            "start_mode": self.start_mode,
            "depends_on": list(self.depends_on),
        }

    @property
    def should_run(self) -> bool:
        """Windows starts it at boot (Auto), or it runs now: it must run after a restart."""
        return self.start_mode.lower().startswith("auto") or self.status == "Running"


@runtime_checkable
class ServiceReader(Protocol):
    """A host that reads Windows services (the WinRM transport, winrm_windows.py)."""

    def services(
        self, names: Sequence[str] = (), display_names: Sequence[str] = ()
    ) -> list[ServiceInfo]: ...


def service_reader(host: object, name: str) -> ServiceReader:
    """`host` as a ServiceReader; StepFailed when its transport reads no services."""
    if not isinstance(host, ServiceReader):
        raise StepFailed(f"{name}: its transport cannot read Windows services")
    return host


def stop_order(services: Iterable[ServiceInfo]) -> list[str]:
    """Names in the order to stop them: a service after every service (of the set) that
    depends on it. Start in the reverse order. Ties keep the given order; a dependency
    cycle (which Windows refuses to create) is broken in the given order."""
    items = list(services)
    names = {s.name.lower(): s.name for s in items}
    dependants: dict[str, set[str]] = {key: set() for key in names}
    for service in items:
        for dependency in service.depends_on:
            if dependency.lower() in dependants:
                dependants[dependency.lower()].add(service.name.lower())
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(items):
        ready = [k for k in names if k not in done and dependants[k] <= done]
        for key in ready or [next(k for k in names if k not in done)]:
            done.add(key)
            order.append(names[key])
    return order


# -- IIS loopback check -------------------------------------------------------------


def loopback_allows(
    disable_loopback_check: int | None, back_connection_host_names: Sequence[str], name: str
) -> tuple[bool, str]:
    """Whether IIS on the host accepts a request to itself under `name` (KB 896861)."""
    if disable_loopback_check == 1:
        return True, "DisableLoopbackCheck is 1: the loopback check is off for every name"
    listed = [n.strip().lower() for n in back_connection_host_names if n.strip()]
    if name.lower().rstrip(".") in listed:
        return True, f"BackConnectionHostNames lists {name}"
    shown = ", ".join(back_connection_host_names) or "nothing"
    return False, (
        f"the loopback check is on and BackConnectionHostNames lists {shown}, not {name}:"
        " add it (HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa\\MSV1_0, multi-string)"
    )
