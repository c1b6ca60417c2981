"""Core actions every playbook can use.

- `pool.check`: re-validates the pool file when the run starts.
- `host.reachable`: logs in to a host and records how it resolves a name.
- `host.flush_dns`: clears a host's resolver cache.
- `host.restart_services`: restarts the profile's services on a host.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..errors import CheckFailed, ConfigError, UsageError
from .base import Action, Change, Json, register


def _arg(action: Action, name: str) -> Any:
    try:
        return action.args[name]
    except KeyError:
        raise UsageError(f"{action.name} needs the argument `{name}`") from None


@register
class PoolCheck(Action):
    """Reads the pool file again at run time (a run may resume days after the
    plan was made) and applies every rule of its profile.

    Changes nothing; no undo. Proof: the file validates; the evidence records
    its SHA-256, profile and topology, so the journal shows what a run used.
    """

    name = "pool.check"
    read_only = True

    def targets(self) -> list[str]:
        return ["admin"]

    def describe(self) -> list[Change]:
        return [Change("check", "admin", "the pool file passes every rule of its profile")]

    def apply(self, current: Json) -> Json:
        from ..config.loader import load_pool

        path = self.ctx.extra.get("pool_path")
        if not path:
            raise UsageError("pool.check needs the pool file's path from the runner")
        try:
            loaded = load_pool(Path(path))
        except ConfigError as exc:
            raise CheckFailed(
                f"the pool file no longer validates: {exc.message}", hint="run `ocsscale check`"
            ) from None
        return {
            "file": str(path),
            "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
            "profile": loaded.profile.name,
            "topology": loaded.pool.load_balancer.topology,
            "front_ends": [fe.name for fe in loaded.pool.front_ends],
        }


@register
class HostReachable(Action):
    """Connects to `host` and asks it how it resolves `name` (the pool FQDN).

    Changes nothing; no undo. Proof: the host answered; when `expect` (a list
    of addresses) is given, the name must resolve to exactly those.
    """

    name = "host.reachable"
    read_only = True

    def targets(self) -> list[str]:
        return [str(_arg(self, "host"))]

    def describe(self) -> list[Change]:
        host, name = _arg(self, "host"), _arg(self, "name")
        expect = self.args.get("expect")
        what = f" to {', '.join(expect)}" if expect else ""
        return [Change("check", host, f"log in and resolve {name}{what}")]

    def apply(self, current: Json) -> Json:
        host = self.ctx.host(str(_arg(self, "host")))
        name = str(_arg(self, "name"))
        addresses = sorted(host.resolve(name))
        expect = self.args.get("expect")
        if expect is not None and sorted(expect) != addresses:
            raise CheckFailed(
                f"{host.name} resolves {name} to {', '.join(addresses) or 'nothing'}, "
                f"expected {', '.join(sorted(expect))}"
            )
        return {"host": host.name, "os": host.os, "name": name, "addresses": addresses}


@register
class FlushDns(Action):
    """Clears the resolver cache of `host` (ipconfig /flushdns on Windows), so
    the next lookup sees a hosts-file or DNS change.

    There is nothing to undo (a cache refills by itself): no undo record.
    Proof: the host's flush command exited 0.
    """

    name = "host.flush_dns"

    def targets(self) -> list[str]:
        return [str(_arg(self, "host"))]

    def describe(self) -> list[Change]:
        return [Change("change", str(_arg(self, "host")), "flush the DNS resolver cache")]

    def apply(self, current: Json) -> Json:
        host = self.ctx.host(str(_arg(self, "host")))
        host.flush_dns()
        return {"host": host.name, "flushed": True}


@register
class RestartServices(Action):
    """Restarts services on `host` so they resolve the pool name anew: the
    `services` argument, or else the profile's services for the host's OS.

    A restart leaves nothing to put back; its undo record says which services
    were restarted so rollback and status list it, and its revert does
    nothing. Proof: the transport waits until every service runs again.
    """

    name = "host.restart_services"

    def targets(self) -> list[str]:
        return [str(_arg(self, "host"))]

    def _services(self) -> list[str]:
        given = self.args.get("services")
        if given is not None:
            return [str(s) for s in given]
        name = str(_arg(self, "host"))
        try:
            os_kind = self.ctx.pool.host(name).os
        except KeyError:
            raise UsageError(f"host.restart_services: no host named {name}") from None
        return self.ctx.profile.services.for_os(os_kind)

    def describe(self) -> list[Change]:
        services = self._services()
        host = str(_arg(self, "host"))
        if not services:
            return [Change("none", host, "no services to restart")]
        return [Change("change", host, f"restart {', '.join(services)}")]

    def diff(self, current: Json) -> list[Change]:
        return [] if not self._services() else self.describe()

    def undo_record(self, current: Json) -> Json:
        return {"restarted": self._services(), "nothing_to_put_back": True}

    def apply(self, current: Json) -> Json:
        host = self.ctx.host(str(_arg(self, "host")))
        services = self._services()
        host.restart_services(services)
        return {"host": host.name, "restarted": services}

    def revert(self, undo: Json) -> Json:
        return {"nothing_to_put_back": True}

    def revert_targets(self, undo: Json) -> list[str]:
        return []  # the revert does nothing: the host need not be reachable
