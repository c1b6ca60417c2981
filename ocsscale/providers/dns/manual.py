"""manual: the operator makes the change; the tool says exactly which, and checks.

`replace` first checks the expected old value over DNS (a record that moved
since the plan is refused before anyone is asked to touch it), then tells the
operator the exact change (zone, name, type, values to add and then the ones
to remove, TTL), waits for "done", and looks the record up on the authoritative server.
An answer is never trusted: until the server holds the new value and TTL the
operator is told what it still answers and asked again (a bounded number of
times). With nobody at the console the operator refuses (NoOperator).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

from ...config.model import ManualDns
from ...errors import Declined, StepFailed, UsageError
from ...operator import Operator
from ..plugin import Capabilities, Ports
from .base import PROVIDERS, ProviderBase, RecordSet, same_values
from .query import lookup, server_label

#: how many times a "done" that the server does not confirm is asked again
ATTEMPTS = 5


class ManualProvider(ProviderBase):
    kind = "manual"
    #: the operator makes the change; the tool checks it on the zone's server
    capabilities: ClassVar[Capabilities] = Capabilities(drives_itself=False, read_back=True)

    def __init__(
        self,
        zone: str,
        servers: Sequence[tuple[str, int]],
        operator: Operator,
        *,
        timeout: float = 10.0,
        attempts: int = ATTEMPTS,
    ) -> None:
        if not servers:
            raise UsageError("the manual DNS provider verifies on dns.servers: list them")
        self.zone = zone.rstrip(".")
        self.address, self.port = servers[0]
        self.operator = operator
        self.timeout = timeout
        self.attempts = attempts

    @classmethod
    def from_settings(cls, settings: ManualDns, ports: Ports) -> ManualProvider:
        return cls(
            settings.zone,
            [(str(s), settings.port) for s in settings.servers],
            ports.operator,
            timeout=settings.timeout,
        )

    def where(self) -> str:
        return server_label(self.address, self.port)

    def lookup(self, name: str, rdtype: str) -> RecordSet:
        return lookup(self.address, self.port, name, rdtype, self.timeout)

    def instructions(
        self, name: str, rdtype: str, values: tuple[str, ...], ttl: int, expect: tuple[str, ...]
    ) -> list[str]:
        # Windows clients cache "no such name": the name must never be without a
        # record, so the operator adds first and removes only then.
        added = [v for v in values if v not in expect]
        removed = [v for v in expect if v not in values]
        lines = [f"zone {self.zone}, record {name} (type {rdtype}):"]
        lines += [f"  add     {name}  {ttl}  IN  {rdtype}  {v}" for v in added]
        lines += [f"  keep    {name}  {ttl}  IN  {rdtype}  {v}" for v in values if v in expect]
        lines += [f"  remove  {name}  {rdtype}  {v}" for v in removed]
        lines += [f"  (one RRset: every {rdtype} value of {name} gets TTL {ttl} s)"]
        if added and removed:
            lines.append(
                "  Add the new record first, then remove the old: never delete first, "
                "or for a moment the name has no address and clients cache that answer."
            )
        elif not added and not removed:
            lines.append("  Only the TTL changes: edit it in place; never delete the record.")
        lines.append(f"Make the change on the zone's primary server; {self.where()} is then asked.")
        return lines

    def change_data(
        self, name: str, rdtype: str, values: tuple[str, ...], ttl: int, expect: tuple[str, ...]
    ) -> dict[str, Any]:
        """The same change as JSON (for `ocsscale answer --json` and the lab's
        operator); the order of work is add, then remove."""
        return {
            "kind": "dns-change",
            "zone": self.zone,
            "name": name,
            "rdtype": rdtype,
            "ttl": ttl,
            "add": [v for v in values if v not in expect],
            "keep": [v for v in values if v in expect],
            "remove": [v for v in expect if v not in values],
            "server": self.where(),
        }

    def _change(
        self, name: str, rdtype: str, values: tuple[str, ...], ttl: int, expect: tuple[str, ...]
    ) -> None:
        self.operator.tell(
            f"Change DNS record {name} by hand",
            self.instructions(name, rdtype, values, ttl, expect),
            self.change_data(name, rdtype, values, ttl, expect),
        )
        seen = RecordSet((), None)
        for _ in range(self.attempts):
            answer = self.operator.ask(
                f"Type done when {name} {rdtype} is {', '.join(values)} with TTL {ttl}",
                ["done", "abort"],
            )
            if answer != "done":
                raise Declined(f"the operator stopped the change of {name}; nothing was verified")
            seen = self.lookup(name, rdtype)
            if same_values(rdtype, seen.values, values) and seen.ttl == ttl:
                return
            self.operator.tell(
                f"{self.where()} does not answer the change yet",
                [
                    f"{name} {rdtype} reads {seen.show()}",
                    f"expected {', '.join(values)} (TTL {ttl})",
                ],
            )
        raise StepFailed(
            f"{self.where()}: {name} {rdtype} still reads {seen.show()} after {self.attempts} "
            f"confirmations; expected {', '.join(values)} (TTL {ttl})"
        )


def _capabilities(settings: ManualDns) -> Capabilities:
    """A zone the pool file says is AD-integrated converges by replication."""
    return replace(ManualProvider.capabilities, replicated=settings.ad_integrated)


PROVIDERS.add("manual", ManualDns, ManualProvider.from_settings, capabilities=_capabilities)
