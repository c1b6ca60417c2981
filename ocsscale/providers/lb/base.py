"""What every load-balancer driver offers, and the farm it is asked to build.

A driver is one module (engine.py, haproxy.py, manual.py) with a settings
model (the pool file's `load_balancer.driver: {kind: ..., ...}`) and a class
that implements `LbDriver`. Actions (actions/lb.py) only ever talk to this
protocol: they read, journal the undo record, apply, verify; the driver knows
how its LB stores a farm, reloads, and reports its members.

Every value a driver returns is plain JSON and never holds a secret. Library
and transport errors are wrapped into the project's error tree here, with the
LB host's name and the cause.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Interface
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from ...config.lb_settings import KeepalivedSettings
from ...config.model import LbChecks, SecretRef
from ...config.profiles import port_requirement
from ...errors import UndoRecordError
from ...registry import Registry
from .. import undo_shape as shape
from ..plugin import Capabilities, Ports

if TYPE_CHECKING:
    from ...config.model import Pool
    from ...config.profiles import Profile

AdminState = Literal["ready", "drain", "maint"]
ADMIN_STATES: tuple[AdminState, ...] = ("ready", "drain", "maint")
Json = Any


@dataclass(frozen=True)
class Member:
    name: str
    address: str
    weight: int


_CHECK_DEFAULTS = LbChecks()


@dataclass(frozen=True)
class CheckTiming:
    """How the LB checks each member (the pool file's `load_balancer.checks`):
    seconds between checks, seconds a check may take, failed checks in a row to
    take a member out, good ones to bring it back."""

    interval: float = _CHECK_DEFAULTS.interval
    timeout: float = _CHECK_DEFAULTS.timeout
    fall: int = _CHECK_DEFAULTS.fall
    rise: int = _CHECK_DEFAULTS.rise

    @classmethod
    def from_checks(cls, checks: LbChecks) -> CheckTiming:
        return cls(checks.interval, checks.timeout, checks.fall, checks.rise)

    def view(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FarmSpec:
    """The farm the walkthrough asks for, built from the pool file and its profile.

    Every port is on the VIP; `check_ports` carry the health checks that every
    other port follows; balancing is weighted least connections; `idle_timeout`
    is the client and server idle timeout; `snat_addresses` are the source
    addresses the LB uses towards the members; `checks` how often and how
    strictly every member is checked."""

    name: str
    vip: str  # the address, no prefix
    vip_prefix: int
    ports: tuple[int, ...]
    check_ports: tuple[int, ...]
    idle_timeout: int
    members: tuple[Member, ...]
    snat_addresses: tuple[str, ...]
    balance: str = "wlc"
    checks: CheckTiming = field(default_factory=CheckTiming)

    @property
    def vip_interface(self) -> str:
        return f"{self.vip}/{self.vip_prefix}"

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(name)

    def view(self) -> dict[str, Any]:
        """The comparable part of a farm: what `read_farm()["view"]` must equal."""
        return {
            "vip": self.vip,
            "ports": sorted(self.ports),
            "check_ports": sorted(self.check_ports),
            "idle_timeout": self.idle_timeout,
            "balance": self.balance,
            "snat_addresses": sorted(self.snat_addresses),
            "members": {m.name: {"address": m.address, "weight": m.weight} for m in self.members},
            "checks": self.checks.view(),
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_pool(cls, pool: Pool, profile: Profile) -> FarmSpec:
        lb = pool.load_balancer
        vip: IPv4Interface = lb.vip
        snat = tuple(str(a) for a in lb.snat_addresses) or (str(vip.ip),)
        return cls(
            name=pool.pool.fqdn.split(".")[0],
            vip=str(vip.ip),
            vip_prefix=vip.network.prefixlen,
            ports=tuple(profile.ports),
            check_ports=tuple(profile.check_ports),
            idle_timeout=int(profile.idle_timeout),
            members=tuple(Member(fe.name, str(fe.address), fe.weight) for fe in pool.front_ends),
            snat_addresses=snat,
            balance=profile.balance,
            checks=CheckTiming.from_checks(lb.checks),
        )


def check_driver(undo: Mapping[str, Any], kind: str) -> None:
    """The revert is the pool file's driver's: a record another driver made would
    be put back by the wrong one (UndoRecordError)."""
    if shape.text(undo, "driver") != kind:
        raise UndoRecordError(f"'driver' is not {kind}, the pool file's load-balancer driver")


def farm_drift(expected: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Every difference between the plan's view and what `read_farm` gave: per host
    (named) for a pair, whose `hosts` each hold a view; else the one view's."""
    hosts = current.get("hosts")
    if isinstance(hosts, Mapping) and hosts:
        return [
            f"{name}: {line}"
            for name, state in hosts.items()
            for line in view_diff(expected, state.get("view"))
        ]
    return view_diff(expected, current.get("view"))


def view_diff(expected: Mapping[str, Any], actual: Mapping[str, Any] | None) -> list[str]:
    """Human lines for every difference between two farm views (empty: equal)."""
    if actual is None:
        return ["the load balancer has no farm"]
    lines: list[str] = []
    for key in ("vip", "ports", "check_ports", "idle_timeout", "balance", "snat_addresses"):
        if expected.get(key) != actual.get(key):
            lines.append(f"{key}: {actual.get(key)!r} on the LB, {expected.get(key)!r} planned")
    want_checks, have_checks = expected.get("checks") or {}, actual.get("checks") or {}
    for key in sorted(set(want_checks) | set(have_checks)):
        if want_checks.get(key) != have_checks.get(key):
            lines.append(
                f"checks {key}: {have_checks.get(key)!r} on the LB, "
                f"{want_checks.get(key)!r} planned"
            )
    want, have = expected.get("members", {}), actual.get("members", {}) or {}
    for name in sorted(set(want) | set(have)):
        if name not in have:
            lines.append(f"member {name}: missing on the LB")
        elif name not in want:
            lines.append(f"member {name}: on the LB, not in the pool file")
        elif want[name] != have[name]:
            lines.append(f"member {name}: {have[name]} on the LB, {want[name]} planned")
    return lines


@dataclass(frozen=True)
class MemberStats:
    """One member as the LB sees it."""

    name: str
    health: Literal["up", "down", "unknown"]
    admin: AdminState
    #: active connections per farm port (ports the LB reports; missing = 0)
    active: dict[int, int] = field(default_factory=dict)
    #: per port health where the LB tracks it per port (HAProxy backends); else empty
    port_health: dict[int, str] = field(default_factory=dict)

    @property
    def total_active(self) -> int:
        return sum(self.active.values())

    def down_everywhere(self) -> bool:
        if self.port_health:
            return all(h != "up" for h in self.port_health.values())
        return self.health == "down"

    def up_everywhere(self) -> bool:
        if self.port_health:
            return all(h == "up" for h in self.port_health.values())
        return self.health == "up"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["active"] = {str(k): v for k, v in self.active.items()}
        data["port_health"] = {str(k): v for k, v in self.port_health.items()}
        return data


@dataclass(frozen=True)
class PairHost:
    """One host of a load-balancer pair: its name and own fixed addresses (ip/prefix)."""

    name: str
    addresses: tuple[str, ...]

    def address_on(self, network: str) -> str | None:
        """This host's own address on the network of `network` (ip/prefix), or None."""
        net = IPv4Interface(network).network
        return next((a.split("/")[0] for a in self.addresses if IPv4Interface(a).ip in net), None)


@dataclass(frozen=True)
class PairSite:
    """A load-balancer pair as the drivers need it (the pool file's `load_balancer.pair`):
    `floating` are the addresses keepalived moves together (VIP first, ip/prefix)."""

    hosts: tuple[PairHost, ...]
    preferred: str
    preempt: bool
    router_id: int
    advert_interval: int
    secret: SecretRef
    keepalived: KeepalivedSettings
    floating: tuple[str, ...]

    def peer_of(self, name: str) -> PairHost:
        return next(h for h in self.hosts if h.name != name)

    @classmethod
    def from_pool(cls, pool: Pool) -> PairSite | None:
        lb = pool.load_balancer
        pair = lb.pair
        if pair is None or pair.secret is None:
            return None
        nets = [lb.vip] + ([lb.backend_address] if lb.backend_address is not None else [])
        floating: list[str] = []
        for address in lb.floating():
            net = next((n for n in nets if address in n.network), lb.vip)
            floating.append(f"{address}/{net.network.prefixlen}")
        return cls(
            hosts=tuple(
                PairHost(h.name, tuple(a.with_prefixlen for a in h.addresses)) for h in pair.hosts
            ),
            preferred=pair.preferred,
            preempt=pair.preempt,
            router_id=pair.router_id,
            advert_interval=pair.advert_interval,
            secret=pair.secret,
            keepalived=pair.keepalived,
            floating=tuple(floating),
        )


@dataclass(frozen=True)
class LbSite:
    """What of the pool a driver needs besides its own settings: the pool's name,
    the planned farm, the LB host's name (None: no host of its own) and the ports
    that must answer. Built by actions/plugin_ports.py."""

    fqdn: str
    farm: FarmSpec
    host: str | None = None
    required_ports: frozenset[int] = frozenset()
    #: a pair of LB hosts with the VIP floating between them (then `host` is None)
    pair: PairSite | None = None

    @classmethod
    def from_pool(cls, pool: Pool, profile: Profile) -> LbSite:
        farm = FarmSpec.from_pool(pool, profile)
        host = pool.load_balancer.host
        return cls(
            fqdn=pool.pool.fqdn,
            farm=farm,
            host=None if host is None else host.name,
            required_ports=frozenset(
                p for p in farm.ports if port_requirement(pool, profile, p) == "required"
            ),
            pair=PairSite.from_pool(pool),
        )


class LbDriver(Protocol):
    """The small protocol every driver implements (see the module docstring).

    `read_farm` may connect; `undo_for(current)` is pure and is journaled
    before `apply_farm` changes anything; `revert(undo)` must be safe to call
    twice."""

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def target(self) -> str:
        """The host name (or "lb") the plan shows for this LB."""
        ...

    def plan_note(self, farm: FarmSpec) -> str:
        """What the plan adds to the farm's summary ("" or the checklist's gist)."""
        ...

    def console(self) -> str:
        """Where a person reads and sets the members (for the failover procedure)."""
        ...

    def check_undo(self, undo: Mapping[str, Any]) -> None:
        """UndoRecordError unless `undo` is this driver's record (`check_driver`) of
        the shape its `undo_for` makes."""
        ...

    def targets(self) -> list[str]:
        """Host names this driver logs in to (for the credential check)."""
        ...

    def read_farm(self) -> Json:
        """{"view": FarmSpec.view()-shaped dict or None, ...driver state for undo}."""
        ...

    def undo_for(self, current: Json) -> Json:
        """What revert needs to put back exactly `current` (plain JSON)."""
        ...

    def apply_farm(self, desired: FarmSpec, current: Json) -> Json:
        """Install `desired` (checked before any reload); evidence."""
        ...

    def revert(self, undo: Json) -> Json:
        """Put back what `undo` records (config byte-identical, service state as before)."""
        ...

    def verify_reverted(self, undo: Json) -> Json:
        """Read back: the previous config and service state, the VIP silent if it was."""
        ...

    def set_member(self, name: str, state: AdminState) -> None:
        """Set a member's admin state (ready, drain, maint)."""
        ...

    def stats(self) -> dict[str, MemberStats]:
        """Every member as the LB sees it, by name."""
        ...

    def events(self, since: float) -> list[dict[str, Any]]:
        """Member state changes since `since` (epoch seconds), oldest first:
        {"ts", "server", "kind" ("server-up"|"server-down"|"admin-state"...), "reason"}."""
        ...


#: the load-balancer drivers by `load_balancer.driver.kind`: each module of
#: providers/lb/ that holds one adds it (`DRIVERS.add(kind, Settings, Driver,
#: capabilities=fixed(Driver.capabilities))`)
DRIVERS: Registry[[LbSite, Ports], LbDriver, Capabilities] = Registry(
    "load-balancer driver", "ocsscale.providers.lb"
)
