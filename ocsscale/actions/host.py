"""The host actions every playbook can use.

- `host.reachable`: logs in to a host and records how it resolves a name; on
  Windows, first the PowerShell and .NET versions the tool's scripts need.
- `host.flush_dns`: clears a host's resolver cache.
- `host.restart_services`: restarts the profile's services on a host.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..config.model import OsKind
from ..errors import CheckFailed, UsageError
from . import undo_shape as shape
from .args import ActionArgs, Address, DnsName, HostName, Text
from .base import Action, Change, Context, Json, register


class HostArgs(ActionArgs):
    host: HostName


class ReachableArgs(HostArgs):
    name: DnsName
    #: the addresses `name` must resolve to, exactly
    expect: list[Address] | None = Field(default=None, max_length=64)


class RestartArgs(HostArgs):
    #: the services to restart instead of the profile's
    services: list[Text] | None = Field(default=None, max_length=64)


@register
class HostReachable(Action):
    r"""Connects to `host` and asks it how it resolves `name` (the pool FQDN).

    On a Windows host it first reads `$PSVersionTable.PSVersion` and the .NET
    Framework versions under HKLM:\SOFTWARE\Microsoft\NET Framework Setup\NDP
    (a script PowerShell 1.0 also runs), and fails naming what is missing:
    every other script needs PowerShell 2.0 and .NET 3.5.

    Changes nothing; no undo. Proof: the host answered; when `expect` (a list
    of addresses) is given, the name must resolve to exactly those.
    """

    name = "host.reachable"
    parallel = True
    read_only = True
    Args = ReachableArgs
    params: ReachableArgs

    def targets(self) -> list[str]:
        return [self.params.host]

    def describe(self) -> list[Change]:
        host, name = self.params.host, self.params.name
        expect = self.params.expect
        what = f" to {', '.join(expect)}" if expect else ""
        return [Change("check", host, f"log in and resolve {name}{what}")]

    def apply(self, current: Json) -> Json:
        host = self.ctx.host(self.params.host)
        name = self.params.name
        evidence: dict[str, Any] = {"host": host.name, "os": host.os, "name": name}
        if host.os == "windows":
            evidence.update(_windows_versions(host))
            if self._is_front_end(host.name):
                evidence["services"] = _windows_services(self.ctx, host)
        addresses = sorted(host.resolve(name))
        expect = self.params.expect
        if expect is not None and sorted(expect) != addresses:
            raise CheckFailed(
                f"{host.name} resolves {name} to {', '.join(addresses) or 'nothing'}, "
                f"expected {', '.join(sorted(expect))}"
            )
        return {**evidence, "addresses": addresses}

    def _is_front_end(self, name: str) -> bool:
        pool = self.ctx.pool
        if pool is None:
            return False
        return name == pool.legacy_fe.name or any(fe.name == name for fe in pool.front_ends)


def _windows_services(ctx: Any, host: Any) -> list[dict[str, Any]]:
    """The profile's services on a Windows front end (by name and display name), so the
    journal and `plan` can name them; a front end not installed yet has none: no error."""
    services = ctx.profile.services
    if not services.windows_display_names:
        return []
    # names as patterns: a service not installed yet is simply not found
    found = host.services([], [*services.windows_display_names, *services.windows])
    return [s.to_dict() | {"should_run": s.should_run} for s in found]


def _windows_versions(host: Any) -> dict[str, Any]:
    """The host's PowerShell and .NET versions; CheckFailed naming what is missing."""
    from ..transports.windows_facts import missing_requirements

    reader = getattr(host, "versions", None)
    if reader is None:
        raise CheckFailed(f"{host.name}: this transport cannot read the PowerShell version")
    found = reader()
    if found.get("powershell_missing"):
        raise CheckFailed(
            f"{host.name}: PowerShell is not installed (powershell.exe not found); the tool"
            " needs PowerShell 2.0 and .NET Framework 3.5",
            hint="install Windows Management Framework 2.0 (KB968930), or on Windows Server"
            " 2008 add the Windows PowerShell feature",
        )
    missing = missing_requirements(found["powershell"], found["dotnet"])
    if missing:
        raise CheckFailed(f"{host.name} lacks what the tool's scripts need: {'; '.join(missing)}")
    return {"powershell": found["powershell"], "dotnet": found["dotnet"]}


@register
class FlushDns(Action):
    """Clears the resolver cache of `host` (ipconfig /flushdns on Windows), so
    the next lookup sees a hosts-file or DNS change.

    There is nothing to undo (a cache refills by itself): no undo record.
    Proof: the host's flush command exited 0.
    """

    name = "host.flush_dns"
    parallel = True
    Args = HostArgs
    params: HostArgs

    def targets(self) -> list[str]:
        return [self.params.host]

    def describe(self) -> list[Change]:
        return [Change("change", self.params.host, "flush the DNS resolver cache")]

    def apply(self, current: Json) -> Json:
        host = self.ctx.host(self.params.host)
        host.flush_dns()
        return {"host": host.name, "flushed": True}


@register
class RestartServices(Action):
    """Restarts services on `host` so they resolve the pool name anew: the
    `services` argument, or else the profile's services for the host's OS.

    On Windows the profile's `windows_display_names` (`Office Communications
    Server*`) find the services by display name, with the named ones (W3SVC)
    and every running service that depends on one of them; `read` lists them
    (journaled), and they are restarted in dependency order: dependants
    stopped first, started last. `plan` names them once preflight has read
    them (the latest `host.reachable` evidence in the journal).

    A restart leaves nothing to put back; its undo record says which services
    were restarted so rollback and status list it, and its revert does
    nothing. Proof: every restarted service is Running again (the transport
    waits for each and reads its state back).
    """

    name = "host.restart_services"
    parallel = True
    Args = RestartArgs
    params: RestartArgs
    #: before the farm sends them traffic: later, restarts are drained (lb.drain_restart)
    phases = ("configure-fe", "validate-fe")

    def targets(self) -> list[str]:
        return [self.params.host]

    def _os(self) -> OsKind:
        name = self.params.host
        try:
            return self.ctx.pool.host(name).os
        except KeyError:
            raise UsageError(f"host.restart_services: no host named {name}") from None

    def _services(self) -> list[str]:
        given = self.params.services
        if given is not None:
            return list(given)
        services: list[str] = self.ctx.profile.services.for_os(self._os())
        return services

    def _display_names(self) -> list[str]:
        if self.params.services is not None or self._os() != "windows":
            return []
        return list(self.ctx.profile.services.windows_display_names)

    def describe(self) -> list[Change]:
        services, patterns = self._services(), self._display_names()
        host = self.params.host
        if not services and not patterns:
            return [Change("none", host, "no services to restart")]
        if not patterns:
            return [Change("change", host, f"restart {', '.join(services)}")]
        known = preflight_services(self.ctx, host)
        if known is not None:
            names = [s["name"] for s in known if s.get("should_run", True)]
            return [
                Change(
                    "change",
                    host,
                    f"restart {', '.join(names)} in dependency order (as preflight found them)",
                )
            ]
        like = " or ".join(repr(p) for p in patterns)
        named = f", and {', '.join(services)}" if services else ""
        return [
            Change(
                "change",
                host,
                f"restart the services whose display name is like {like}{named}, in dependency"
                " order (named here once preflight has read them)",
            )
        ]

    def read(self) -> Json:
        patterns = self._display_names()
        if not patterns:
            return None
        from ..transports.windows_facts import service_reader

        name = self.params.host
        host = service_reader(self.ctx.host(name), name)
        found = host.services(self._services(), patterns)
        return {"services": [s.to_dict() | {"should_run": s.should_run} for s in found]}

    def _to_restart(self, current: Json) -> list[str]:
        if isinstance(current, dict) and "services" in current:
            return [s["name"] for s in current["services"] if s["should_run"]]
        return self._services()

    def diff(self, current: Json) -> list[Change]:
        if not self._to_restart(current):
            return []
        if isinstance(current, dict) and "services" in current:
            names = ", ".join(self._to_restart(current))
            return [Change("change", self.params.host, f"restart {names}")]
        return self.describe()

    def undo_record(self, current: Json) -> Json:
        return {"restarted": self._to_restart(current), "nothing_to_put_back": True}

    def apply(self, current: Json) -> Json:
        host = self.ctx.host(self.params.host)
        services = self._to_restart(current)
        done = host.restart_services(services)
        evidence: dict[str, Any] = {"host": host.name, "restarted": services}
        if isinstance(done, list):  # Windows: the stop order and each state read back
            evidence["order"] = done
        if isinstance(current, dict) and "services" in current:
            evidence["found"] = current["services"]
        return evidence

    def check_undo(self, undo: Json) -> None:
        shape.record(undo)  # nothing of it is read: it only lists what was restarted

    def revert(self, undo: Json) -> Json:
        return {"nothing_to_put_back": True}

    def revert_targets(self, undo: Json) -> list[str]:
        return []  # the revert does nothing: the host need not be reachable


def preflight_services(ctx: Context, host: str) -> list[dict[str, Any]] | None:
    """The services preflight found on `host`, when `plan` was given the journal's
    latest preflight evidence (Context.preflight); None otherwise."""
    found = ctx.preflight.get(host, {}).get("services")
    return found if isinstance(found, list) else None
