"""The farm model: what one engine serves, validated strictly (unknown keys are errors)."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

PortNumber = Annotated[int, Field(ge=1, le=65535)]
WEEK = 86400 * 7
# Durations have floors: below them the engine would spin (an idle sweep every
# nanosecond, say) rather than do anything useful.
CheckSeconds = Annotated[float, Field(ge=0.01, le=WEEK, allow_inf_nan=False)]
ConnectSeconds = CheckSeconds
IdleSeconds = Annotated[float, Field(ge=0.5, le=WEEK, allow_inf_nan=False)]
HalfCloseSeconds = Annotated[float, Field(ge=0.1, le=WEEK, allow_inf_nan=False)]
MaxConn = Annotated[int, Field(ge=1, le=10_000_000)]

# Defaults chosen so a refusing check port is out in < 1.0 s (inter + fastinter,
# 0.35 s) and a blackholed one in < 2.0 s (inter + 2 x timeout + fastinter, 1.35 s),
# while one lost check never takes a server out: rounds are scheduled from the end
# of the previous one, so one lost check is one failed round (see README.md).
DEFAULT_INTER = 0.25
DEFAULT_FASTINTER = 0.1
DEFAULT_DOWNINTER = 1.0
DEFAULT_FALL = 2
DEFAULT_RISE = 2
DEFAULT_CHECK_TIMEOUT = 0.5


class _Strict(BaseModel):
    # strict: `weight: true` is not 1 and `workers: "2"` is not 2.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _ip(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("not an IP address") from None
    why = unusable(address)
    if why is not None:
        raise ValueError(f"{address} is {why}: give one address of one machine")
    return str(address)


def unusable(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why `address` cannot be a VIP, a server or a SNAT source, or None. The
    wildcard would listen on (or leave from) every address of the machine, which
    `check` cannot see as wrong: it binds."""
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:0.0.0.0 is 0.0.0.0
    if mapped is not None:
        address = mapped
    if address.is_unspecified:
        return "the wildcard address (any address)"
    if address == ipaddress.IPv4Address("255.255.255.255"):
        return "the broadcast address"
    if address.is_multicast:
        return "a multicast address (a group, not a machine)"
    return None


# An address in its canonical text, checked item by item (errors name `vip[1]`).
IpText = Annotated[str, AfterValidator(_ip)]


class PortMap(_Strict):
    """A listen port on every VIP and the server port it forwards to."""

    port: PortNumber
    backend_port: PortNumber | None = None
    # Sessions on this port (over all VIPs) at once; more wait in the listen queue.
    maxconn: MaxConn | None = None

    @property
    def target(self) -> int:
        return self.backend_port or self.port


class Server(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    address: IpText
    weight: Annotated[int, Field(ge=0, le=256)] = 1
    state: Literal["ready", "drain", "maint"] = "ready"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v):
            raise ValueError("server names use letters, digits, '.', '_' and '-' only")
        return v


class Health(_Strict):
    ports: list[PortNumber] = Field(default_factory=list)
    kind: Literal["tcp", "tls", "https", "sip-options"] = "tcp"
    inter: CheckSeconds = DEFAULT_INTER
    fastinter: CheckSeconds = DEFAULT_FASTINTER
    downinter: CheckSeconds = DEFAULT_DOWNINTER
    fall: Annotated[int, Field(ge=1, le=100)] = DEFAULT_FALL
    rise: Annotated[int, Field(ge=1, le=100)] = DEFAULT_RISE
    timeout: CheckSeconds = DEFAULT_CHECK_TIMEOUT

    @field_validator("ports")
    @classmethod
    def _unique(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("health ports must be unique")
        return v


class Snat(_Strict):
    addresses: list[IpText] = Field(default_factory=list)

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("SNAT addresses must be unique")
        return v


class Timeouts(_Strict):
    idle: IdleSeconds = 1800.0
    connect: ConnectSeconds = 5.0
    half_close: HalfCloseSeconds = 30.0
    # At SIGTERM: how long established sessions may still run (HAProxy's
    # hard-stop-after); what is left then is reset. 0 = at once.
    hard_stop_after: Annotated[float, Field(ge=0, le=WEEK, allow_inf_nan=False)] = 30.0


# sockaddr_un holds 108 bytes with the terminating NUL.
MAX_SOCKET_PATH = 107


class Admin(_Strict):
    socket: str | None = None

    @field_validator("socket")
    @classmethod
    def _socket(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if "\0" in v:
            raise ValueError("a socket path cannot hold a NUL byte")
        if not v or v.endswith("/"):
            raise ValueError("a socket path names a file, not a directory")
        if len(v.encode()) > MAX_SOCKET_PATH:
            raise ValueError(f"a Unix socket path has at most {MAX_SOCKET_PATH} bytes")
        return v


class Farm(_Strict):
    farm: Annotated[str, Field(min_length=1, max_length=64)]
    vip: Annotated[list[IpText], Field(min_length=1)]
    ports: Annotated[list[PortMap], Field(min_length=1)]
    balance: Literal["wlc"] = "wlc"
    servers: list[Server] = Field(default_factory=list)
    health: Health = Field(default_factory=Health)
    snat: Snat = Field(default_factory=Snat)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    admin: Admin = Field(default_factory=Admin)
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    # Sessions per process at once (HAProxy's global maxconn); by default what
    # RLIMIT_NOFILE allows after a reserve (maxconn.py). More wait in the queue.
    maxconn: MaxConn | None = None

    @field_validator("farm")
    @classmethod
    def _farm_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", v):
            raise ValueError("farm names use letters, digits, '.', '_' and '-' only")
        return v

    @field_validator("vip")
    @classmethod
    def _vips(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("VIP addresses must be unique")
        return v

    @field_validator("ports", mode="before")
    @classmethod
    def _port_shorthand(cls, v: object) -> object:
        # `- 5061` is shorthand for `- {port: 5061}`.
        if not isinstance(v, list):
            return v
        for i, item in enumerate(v):
            if not isinstance(item, int | dict) or isinstance(item, bool):
                raise ValueError(f"item {i}: a port is a number or {{port, backend_port, maxconn}}")
        return [{"port": p} if isinstance(p, int) else p for p in v]

    @field_validator("ports")
    @classmethod
    def _ports(cls, v: list[PortMap]) -> list[PortMap]:
        dupe = _first_duplicate([p.port for p in v])
        if dupe is not None:
            raise ValueError(f"listen port {dupe} appears more than once")
        return v

    @field_validator("servers")
    @classmethod
    def _unique_servers(cls, v: list[Server]) -> list[Server]:
        dupe = _first_duplicate([s.name for s in v])
        if dupe is not None:
            raise ValueError(f"server name {dupe!r} appears more than once")
        dupe = _first_duplicate([s.address for s in v])
        if dupe is not None:
            names = " and ".join(s.name for s in v if s.address == dupe)
            raise ValueError(f"servers {names} have the same address: give each server once")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> Farm:
        families = {ipaddress.ip_address(s.address).version for s in self.servers}
        snat_families = {ipaddress.ip_address(a).version for a in self.snat.addresses}
        if self.snat.addresses and families - snat_families:
            raise ValueError("snat.addresses has no address of the same IP version as every server")
        return self

    @property
    def admin_socket(self) -> str:
        return self.admin.socket or f"/run/ocsscale/lb-{self.farm}.sock"


def _first_duplicate(values: list[Any]) -> Any:
    """The smallest value that appears more than once (stable error texts), or None."""
    dupes = sorted({v for v in values if values.count(v) > 1})
    return dupes[0] if dupes else None
