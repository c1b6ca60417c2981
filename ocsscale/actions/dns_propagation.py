"""Which name servers must answer a DNS change, and how they converge.

Two kinds of zone, told apart by the provider:
- `serial` (rfc2136: BIND primaries and secondaries). A secondary catches up by
  zone transfer, so once it holds the change it holds the primary's SOA serial:
  equal serials are part of the proof, and a lag is seconds (30 s by default).
- `replication` (windows; manual with `dns.ad_integrated: true`). Every domain
  controller keeps its own serial, which never converge; a change reaches the
  other DCs by AD replication plus the DNS server's poll of the directory:
  seconds within a site, up to the replication interval between sites. Each
  server is asked whether it holds the new value; serials are never compared,
  and the deadline is longer (300 s by default).

The servers asked are the zone's NS set (as the first of dns.servers holds it),
or `dns.verify_servers`; `dns.verify_exclude` leaves some out (a DC the admin
machine cannot reach), and the evidence says so: never silently.
`dns.propagation_timeout` overrides either deadline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any

from ..errors import CheckFailed
from ..providers.dns import capabilities
from ..providers.dns.query import lookup, name_servers, server_label

if TYPE_CHECKING:
    from ..config.model import Dns

SERIAL, REPLICATION = "serial", "replication"
SERIAL_TIMEOUT = 30.0
REPLICATION_TIMEOUT = 300.0


def convergence(settings: Dns) -> str:
    """How the zone's servers converge (see the module docstring), as the provider
    says (an AD-integrated zone replicates)."""
    return REPLICATION if capabilities(settings).replicated else SERIAL


def deadline_seconds(settings: Any) -> float:
    if settings.propagation_timeout is not None:
        return float(settings.propagation_timeout)
    return REPLICATION_TIMEOUT if convergence(settings) == REPLICATION else SERIAL_TIMEOUT


def _is_address(text: str) -> bool:
    try:
        IPv4Address(text)
    except ValueError:
        return False
    return True


@dataclass
class Required:
    """The servers to ask, as (name, address); what was left out, and why."""

    servers: list[tuple[str, str]]
    source: str  # "ns-set" or "dns.verify_servers"
    excluded: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "excluded": self.excluded}


def required_servers(settings: Any, first_server: str) -> Required:
    """The servers that must answer (see the module docstring). CheckFailed when
    the exclusions leave none: nothing would then be proven."""
    port, timeout, zone = settings.port, settings.timeout, settings.zone
    if settings.verify_servers:
        servers: list[tuple[str, str]] = []
        for ref in settings.verify_servers:
            if _is_address(ref):
                servers.append((ref, ref))
                continue
            found = lookup(first_server, port, ref, "A", timeout).values
            if not found:
                raise CheckFailed(
                    f"{server_label(first_server, port)} has no A record for {ref} "
                    "(dns.verify_servers), so it cannot be asked"
                )
            servers += [(ref, a) for a in found]
        source = "dns.verify_servers"
    else:
        servers = name_servers(first_server, port, zone, timeout)
        source = "ns-set"
    excluded: list[dict[str, Any]] = []
    kept = []
    for ns, address in servers:
        hit = next(
            (x for x in settings.verify_exclude if x in (ns.rstrip(".").lower(), address)), None
        )
        if hit is None:
            kept.append((ns, address))
        else:
            excluded.append({"ns": ns, "address": address, "by": hit})
    matched = {e["by"] for e in excluded}
    for ref in settings.verify_exclude:
        if ref not in matched:  # a typo excludes nothing: shown, never a guess
            excluded.append({"ns": None, "address": None, "by": ref, "not_found": True})
    if not kept:
        raise CheckFailed(
            "dns.verify_exclude leaves no name server to ask: nothing could be proven",
            hint="exclude only the servers the admin machine cannot reach",
        )
    return Required(kept, source, excluded)


def serial_problems(answers: Sequence[Mapping[str, Any]]) -> list[str]:
    """serial convergence: every server answering holds one SOA serial."""
    serials = {a["serial"] for a in answers if not a["error"]}
    if len(serials) <= 1:
        return []
    return [
        "SOA serials differ ("
        + ", ".join(f"{a['ns']}: {a['serial']}" for a in answers)
        + "): a secondary has not caught up"
    ]


def deadline_hint(settings: Any) -> str:
    """What to do at the deadline (the runner adds: run again, or roll back)."""
    if convergence(settings) == REPLICATION:
        return (
            "the change is in place and kept; AD replication may still bring it to these "
            "servers (dns.propagation_timeout sets the wait; a DC the admin machine cannot "
            "reach goes in dns.verify_exclude): wait"
        )
    return "the change is in place and kept; the secondaries may still catch up: wait"
