"""What every DNS provider offers, and the errors it raises.

A provider reads one RRset from the zone's authoritative server (`lookup`),
replaces it only when it still holds the value the caller saw (`replace`,
returning an undo record of plain JSON), and puts back what an undo record
names (`revert`). Library exceptions (dnspython, WinRM, sockets) never leave a
provider: they become one of the errors below, whose messages name the
server, the record and the cause, and never a secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple, Protocol

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from ...errors import Refused, StepFailed, TransportError, UsageError
from ...registry import Registry
from ..plugin import Capabilities, Ports

Json = Any


class DnsError(TransportError):
    """The DNS server could not be reached, or refused the request."""


class DnsConflict(Refused):
    """The record no longer holds the value the change was planned against:
    someone else changed it. Nothing was changed."""


class RecordSet(NamedTuple):
    """One RRset as the authoritative server answers it (`ttl` None: absent)."""

    values: tuple[str, ...]
    ttl: int | None

    @property
    def exists(self) -> bool:
        return bool(self.values)

    def show(self) -> str:
        if not self.values:
            return "(no record)"
        return f"{', '.join(self.values)} (TTL {self.ttl})"

    def to_json(self) -> dict[str, Json]:
        return {"values": list(self.values), "ttl": self.ttl}

    @classmethod
    def from_json(cls, data: Mapping[str, Json]) -> RecordSet:
        values = data.get("values") or []
        ttl = data.get("ttl")
        return cls(tuple(str(v) for v in values), None if ttl is None else int(ttl))


ABSENT = RecordSet((), None)


def check_type(rdtype: str) -> str:
    """The record type in upper case (UsageError for a type dnspython does not know)."""
    try:
        return dns.rdatatype.to_text(dns.rdatatype.from_text(rdtype.upper()))
    except dns.exception.DNSException:
        raise UsageError(f"unknown DNS record type {rdtype!r}") from None


def normalise(rdtype: str, values: Iterable[str]) -> tuple[str, ...]:
    """Values in one canonical text (names absolute and in lower case), sorted and
    unique, so '10.0.0.30' read from Windows and from BIND compare equal."""
    out: set[str] = set()
    for value in values:
        try:
            rdata = dns.rdata.from_text(
                dns.rdataclass.IN,
                dns.rdatatype.from_text(rdtype),
                str(value),
                dns.name.root,
                relativize=False,
            )
        except (dns.exception.DNSException, ValueError):
            raise UsageError(f"{value!r} is not a valid {rdtype} record value") from None
        out.add(canonical_text(rdtype, rdata.to_text()))
    return tuple(sorted(out))


#: types whose data is text, where case matters (names compare without case)
_CASE_SENSITIVE = {"TXT", "SPF", "HINFO", "CAA", "NAPTR"}


def canonical_text(rdtype: str, text: str) -> str:
    return text if rdtype.upper() in _CASE_SENSITIVE else text.lower()


def same_values(rdtype: str, a: Sequence[str], b: Sequence[str]) -> bool:
    return normalise(rdtype, a) == normalise(rdtype, b)


def relative_name(name: str, zone: str) -> str:
    """`name` relative to `zone` ('@' for the apex); UsageError when outside it."""
    fqdn, origin = name.rstrip(".").lower(), zone.rstrip(".").lower()
    if fqdn == origin:
        return "@"
    if not fqdn.endswith("." + origin):
        raise UsageError(f"{name} is not inside the zone {zone}")
    return fqdn[: -len(origin) - 1]


def undo_record(
    provider: str, zone: str, name: str, rdtype: str, old: RecordSet, new: RecordSet
) -> dict[str, Json]:
    """What revert needs: the value and TTL before, and what the change made."""
    return {
        "provider": provider,
        "zone": zone,
        "name": name,
        "type": rdtype,
        "old": old.to_json(),
        "new": new.to_json(),
    }


def conflict(
    where: str, name: str, rdtype: str, found: RecordSet, expected: Sequence[str]
) -> DnsConflict:
    want = ", ".join(expected) if expected else "(no record)"
    return DnsConflict(
        f"{where}: {name} {rdtype} holds {found.show()}, not the expected {want}: it was "
        "changed by someone else since this change was planned; nothing was changed",
        hint="look at who changed it; run the step again once the record is what it should be",
    )


def _ours(rdtype: str, current: Sequence[str], old: Sequence[str], new: Sequence[str]) -> bool:
    """Whether `current` is a state our change can leave: the old values, the new
    ones, or, when it stopped half-way (the new added, the old not all removed
    yet: a provider adds before it removes), some of both and nothing else."""
    now = set(normalise(rdtype, current))
    return bool(now) and now <= set(normalise(rdtype, old)) | set(normalise(rdtype, new))


class DnsProvider(Protocol):
    """The interface every provider implements (see the module docstring)."""

    kind: str
    zone: str
    capabilities: ClassVar[Capabilities]

    def targets(self) -> list[str]:
        """Host names this provider logs in to (for the credential check)."""

    def lookup(self, name: str, rdtype: str) -> RecordSet:
        """The RRset as the zone's authoritative server holds it."""

    def replace(
        self, name: str, rdtype: str, values: Sequence[str], ttl: int, *, expect: Sequence[str]
    ) -> dict[str, Json]:
        """Replace the RRset when it still holds `expect` (DnsConflict otherwise,
        with nothing changed); read back; returns the undo record."""

    def revert(self, undo: Mapping[str, Json]) -> RecordSet:
        """Put back the undo record's old value and TTL (a no-op when it is
        already there; also from a change that stopped half-way, old and new
        values side by side; DnsConflict when someone changed it since)."""

    def close(self) -> None: ...


class ProviderBase:
    """`revert` and the replace bookkeeping shared by every provider; a
    provider supplies `lookup` and `_change` (the change itself)."""

    kind = "?"
    zone = ""
    #: every change is read back from the zone's server before it counts
    capabilities: ClassVar[Capabilities] = Capabilities(drives_itself=True, read_back=True)

    def where(self) -> str:
        raise NotImplementedError

    def targets(self) -> list[str]:
        return []

    def lookup(self, name: str, rdtype: str) -> RecordSet:
        raise NotImplementedError

    def _change(
        self, name: str, rdtype: str, values: tuple[str, ...], ttl: int, expect: tuple[str, ...]
    ) -> None:
        """Make the change, refusing (DnsConflict) when the RRset is not `expect`."""
        raise NotImplementedError

    def replace(
        self, name: str, rdtype: str, values: Sequence[str], ttl: int, *, expect: Sequence[str]
    ) -> dict[str, Json]:
        rdtype = check_type(rdtype)
        relative_name(name, self.zone)  # refuses names outside the zone
        values_n, expect_n = normalise(rdtype, values), normalise(rdtype, expect)
        if not values_n:
            raise UsageError(f"replacing {name} {rdtype} needs at least one value")
        old = self.lookup(name, rdtype)
        if normalise(rdtype, old.values) != expect_n:
            raise conflict(self.where(), name, rdtype, old, expect_n)
        self._change(name, rdtype, values_n, int(ttl), expect_n)
        after = self.lookup(name, rdtype)
        if normalise(rdtype, after.values) != values_n or after.ttl != int(ttl):
            raise StepFailed(
                f"{self.where()}: after the change {name} {rdtype} reads {after.show()}, "
                f"expected {', '.join(values_n)} (TTL {ttl})"
            )
        return undo_record(self.kind, self.zone, name, rdtype, old, after)

    def revert(self, undo: Mapping[str, Json]) -> RecordSet:
        name, rdtype = str(undo["name"]), check_type(str(undo["type"]))
        old, new = RecordSet.from_json(undo["old"]), RecordSet.from_json(undo["new"])
        current = self.lookup(name, rdtype)
        if same_values(rdtype, current.values, old.values) and current.ttl == old.ttl:
            return current  # already as it was: a second revert changes nothing
        if not _ours(rdtype, current.values, old.values, new.values):
            raise conflict(self.where(), name, rdtype, current, new.values)
        if not old.values:
            raise StepFailed(
                f"{self.where()}: {name} {rdtype} did not exist before the change; "
                "remove it by hand (the tool only replaces records)"
            )
        assert old.ttl is not None
        self.replace(name, rdtype, old.values, old.ttl, expect=current.values)
        return self.lookup(name, rdtype)

    def close(self) -> None:
        return None


#: the DNS providers by `dns.provider`: each module of providers/dns/ that holds
#: one adds it (`PROVIDERS.add(name, Settings, Provider.from_settings,
#: capabilities=fixed(Provider.capabilities))`)
PROVIDERS: Registry[[Ports], DnsProvider, Capabilities] = Registry(
    "DNS provider", "ocsscale.providers.dns"
)
