"""The pool file as typed models (the schema contract is examples/one-armed.yaml).

Only the shape of each value is checked here; rules that relate values to each
other or to the profile live in rules.py. Every model forbids unknown keys, so
a misspelt key is an error with its position instead of a silently ignored
setting. Validators raise `PydanticCustomError` whose type is our rule id;
validation.py turns those into ConfigIssues.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Interface
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .lb_settings import DriverSettings, KeepalivedSettings, driver_from_name
from .strict import Strict

OsKind = Literal["linux", "windows"]
PortRequirement = Literal["required", "optional", "absent"]
Topology = Literal["one-armed", "two-armed-routed", "two-armed-transparent"]
Mode = Literal["full-proxy", "dnat-only", "out-of-path"]
TOPOLOGIES: tuple[str, ...] = ("one-armed", "two-armed-routed", "two-armed-transparent")
MODES: tuple[str, ...] = ("full-proxy", "dnat-only", "out-of-path")
DEFAULT_SERVICE_COMMAND = "systemctl restart {service}"

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_FQDN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})+$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_TTL = 2**31 - 1  # RFC 2181 section 8
MAX_WEIGHT = 256  # as HAProxy and the bundled engine
MAX_PEAK_CONNECTIONS = 100_000_000


# Strict scalars. YAML reads `true`, `1e29` or `"2"` as a bool, a float or text, and
# pydantic would take them as 1, 10**29 and 2 (and `true` as the address 0.0.0.1):
# numbers must be written as whole numbers and addresses as text, within real ranges.
# The messages never quote the value (it may be a secret written in the wrong place).


def _whole_number(low: int, high: int, what: str, rule: str) -> BeforeValidator:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PydanticCustomError(
                "value.not-a-number",
                "{what} is a whole number written without quotes (not true/false, "
                "a fraction or text)",
                {"what": what},
            )
        if not low <= value <= high:
            raise PydanticCustomError(
                rule,
                "{what} must be from {low} to {high}",
                {"what": what, "low": low, "high": high},
            )
        return value

    return BeforeValidator(check)


def _address_text(value: Any) -> Any:
    if not isinstance(value, str | IPv4Address):
        raise PydanticCustomError(
            "address.not-text", "an IPv4 address is written as text, e.g. 10.0.1.41"
        )
    return value


_BROADCAST = IPv4Address("255.255.255.255")


def _one_machine(address: IPv4Address) -> IPv4Address:
    """The address of one machine: not the wildcard, the broadcast or a multicast group
    (the LB would listen on every address, or the tool would talk to no one host)."""
    if address.is_unspecified:
        raise PydanticCustomError(
            "address.wildcard", "0.0.0.0 means any address: give the address of one machine"
        )
    if address == _BROADCAST:
        raise PydanticCustomError(
            "address.broadcast", "255.255.255.255 is the broadcast address, not one machine's"
        )
    if address.is_multicast:
        raise PydanticCustomError(
            "address.multicast",
            "a multicast address (224.0.0.0/4) names a group, not one machine",
        )
    return address


def _one_machine_on_its_network(interface: IPv4Interface) -> IPv4Interface:
    _one_machine(interface.ip)
    net = interface.network
    # /31 and /32 have no broadcast address (RFC 3021)
    if net.prefixlen <= 30 and interface.ip == net.broadcast_address:
        raise PydanticCustomError(
            "address.broadcast",
            "{ip} is the broadcast address of {net}, not one machine's",
            {"ip": str(interface.ip), "net": str(net)},
        )
    return interface


def _path_text(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            raise PydanticCustomError("path.empty", "an empty path: name a file")
        if "\0" in value:
            raise PydanticCustomError("path.nul", "a path cannot hold a NUL character")
    return value


Port = Annotated[int, _whole_number(1, 65535, "a port", "value.port-range")]
Ttl = Annotated[int, _whole_number(0, MAX_TTL, "a TTL (seconds)", "dns.ttl.range")]
Weight = Annotated[int, _whole_number(0, MAX_WEIGHT, "a weight", "fe.weight.range")]
WatchSeconds = Annotated[
    int, _whole_number(1, 86400, "a watch window or interval (seconds)", "dns.watch.range")
]
PropagationSeconds = Annotated[
    int, _whole_number(1, 86400, "a propagation deadline (seconds)", "dns.propagation.range")
]
WatchFailures = Annotated[
    int, _whole_number(0, 100000, "the watch's failure budget", "dns.watch.range")
]
PeakConnections = Annotated[
    int,
    _whole_number(
        1, MAX_PEAK_CONNECTIONS, "the expected peak connections", "lb.peak-connections.range"
    ),
]
Address = Annotated[IPv4Address, BeforeValidator(_address_text), AfterValidator(_one_machine)]
FilePath = Annotated[str, BeforeValidator(_path_text)]


def check_fqdn(value: str, what: str = "name") -> str:
    name = value.rstrip(".")
    if not _FQDN_RE.match(name):
        raise PydanticCustomError(
            "name.fqdn",
            "{what} must be a fully qualified domain name such as host.contoso.com",
            {"what": what},
        )
    return name


_SERVICE_LABEL_RE = re.compile(r"^_[A-Za-z0-9-]{1,62}\Z")


def _check_record_name(value: str) -> str:
    """An FQDN, or an SRV owner name: service labels (`_sip._tls.`) before one."""
    labels = value.rstrip(".").split(".")
    while len(labels) > 2 and _SERVICE_LABEL_RE.match(labels[0]):
        labels = labels[1:]
    check_fqdn(".".join(labels), "a DNS name")
    return value.rstrip(".")


def check_server_ref(value: Any) -> str:
    """A name server as the pool file names it: an IPv4 address or an FQDN."""
    if not isinstance(value, str):
        raise PydanticCustomError(
            "dns.server.ref", "a name server is written as text: an IPv4 address or an FQDN"
        )
    text = value.strip().rstrip(".").lower()
    try:
        return str(_one_machine(IPv4Address(text)))
    except ValueError:
        return check_fqdn(text, "a name server")


def _check_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise PydanticCustomError(
            "name.invalid", "names use letters, digits, '.', '_' and '-' (at most 63)"
        )
    return value


class SecretRef(Strict):
    """Where a secret lives: `{env: NAME}` or `{file: PATH}`, never the secret itself."""

    env: str | None = None
    file: FilePath | None = None

    @field_validator("env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_RE.match(v):
            raise PydanticCustomError(
                "secret.env-name",
                "an environment variable name is letters, digits and '_', "
                "not starting with a digit (the name given is not shown)",
            )
        return v

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            # The value is deliberately not part of the message: it may be the secret.
            raise PydanticCustomError(
                "secret.inline",
                "secrets are never written in the pool file: use {env: VARIABLE} "
                "or {file: PATH} (the value given here is not shown)",
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise PydanticCustomError(
                "secret.reference", "a secret reference names exactly one of env or file"
            )
        return self

    def describe(self) -> str:
        """Safe to print: where the secret comes from, not what it is."""
        return f"env:{self.env}" if self.env is not None else f"file:{self.file}"


def env_references(value: Any) -> set[str]:
    """The environment variables every secret reference in `value` (a model, or
    lists and mappings of them) names."""
    if isinstance(value, SecretRef):
        return {value.env} if value.env is not None else set()
    if isinstance(value, BaseModel):
        value = [getattr(value, name) for name in type(value).model_fields]
    elif isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return set().union(*(env_references(item) for item in value))
    return set()


class Credential(Strict):
    username: str = Field(min_length=1)
    password: SecretRef | None = None
    key_file: FilePath | None = None
    passphrase: SecretRef | None = None


class SshTransport(Strict):
    kind: Literal["ssh"]
    credentials: str
    port: Port = 22
    known_hosts: FilePath = "~/.ssh/known_hosts"
    #: host keys are never added on first sight unless the pool file says so
    trust_unknown_host_keys: bool = False
    service_command: str = DEFAULT_SERVICE_COMMAND
    #: start/stop/enable/disable one service ({action}, {service}): the failover drill
    #: and decommission; default: `systemctl {action} {service}` when restarts use systemctl
    service_control: str | None = None
    hosts_file: FilePath | None = None  # overrides the OS default (/etc/hosts)


#: how the WinRM endpoint is named: by the host's FQDN (what a Windows certificate
#: names, and what Kerberos needs) or by its address
ConnectTo = Literal["fqdn", "address"]


class WinRmTransport(Strict):
    kind: Literal["winrm"]
    credentials: str
    port: Port = 5986
    scheme: Literal["https", "http"] = "https"
    auth: Literal["ntlm", "kerberos", "basic", "credssp"] = "ntlm"
    ca_bundle: FilePath | None = None
    verify_tls: bool = True
    #: overrides the path Windows keeps in the registry (Tcpip DataBasePath + \hosts)
    hosts_file: FilePath | None = None
    #: None: as the pool file's `winrm.connect_to` says (default fqdn)
    connect_to: ConnectTo | None = None

    @model_validator(mode="after")
    def _http_port(self) -> WinRmTransport:
        # An unset port follows the scheme (WinRM listens on 5985 for HTTP).
        if self.scheme == "http" and "port" not in self.model_fields_set:
            self.port = 5985
        return self


class WinRmSettings(Strict):
    """`winrm:` in the pool file: defaults for every WinRM host (its transport may
    say otherwise)."""

    connect_to: ConnectTo = "fqdn"


class LocalTransport(Strict):
    kind: Literal["local"]
    service_control: str | None = None
    hosts_file: FilePath | None = None
    service_command: str = DEFAULT_SERVICE_COMMAND


Transport = Annotated[SshTransport | WinRmTransport | LocalTransport, Field(discriminator="kind")]
_OS_BY_TRANSPORT: dict[str, OsKind] = {"winrm": "windows", "ssh": "linux", "local": "linux"}


class HostSpec(Strict):
    name: str
    fqdn: str | None = None
    address: Address
    os: OsKind = "linux"  # when omitted: windows for winrm, linux otherwise
    transport: Transport

    @model_validator(mode="before")
    @classmethod
    def _os_from_transport(cls, data: Any) -> Any:
        if isinstance(data, dict) and "os" not in data:
            transport = data.get("transport")
            kind = transport.get("kind") if isinstance(transport, dict) else None
            if kind in _OS_BY_TRANSPORT:
                data = {**data, "os": _OS_BY_TRANSPORT[kind]}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v)

    @field_validator("fqdn")
    @classmethod
    def _fqdn(cls, v: str | None) -> str | None:
        return None if v is None else check_fqdn(v, "fqdn")

    @property
    def credentials(self) -> str | None:
        """The credential name this host's transport uses (None for local)."""
        return getattr(self.transport, "credentials", None)


class ServerSpec(HostSpec):
    """A server that clients reach by name: its FQDN is required (certificates, DNS)."""

    fqdn: str
    #: this server speaks only TLS 1.0 and/or has a SHA-1 certificate (Windows Server
    #: 2003/2008): the probes accept both for it alone. None: as `pool.legacy_tls` says.
    legacy_tls: bool | None = None


class FrontEnd(ServerSpec):
    weight: Weight = 1


class PoolNames(Strict):
    fqdn: str
    sip_domain: str
    # The CA (PEM) that issued the front ends' certificates; probes verify
    # against it. None: the system's trust store.
    ca_bundle: FilePath | None = None
    #: every pool server (legacy FE, front ends) speaks only TLS 1.0 and/or has a
    #: SHA-1 certificate, which OpenSSL 3 refuses by default; a server's own
    #: `legacy_tls` overrides this
    legacy_tls: bool = False
    #: profile ports this pool treats otherwise than the profile: `required` (a
    #: closed one fails the run), `optional` (reported, never a failure) or
    #: `absent` (not probed at all; the farm still carries it)
    ports: dict[int, PortRequirement] = Field(default_factory=dict)

    @field_validator("fqdn")
    @classmethod
    def _fqdn(cls, v: str) -> str:
        return check_fqdn(v, "the pool FQDN")

    @field_validator("sip_domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        return check_fqdn(v, "the SIP domain")


class Directory(Strict):
    name: str
    fqdn: str | None = None
    address: Address
    port: Port = 135


def _interface(value: Any) -> Any:
    if not isinstance(value, str | IPv4Interface):
        raise PydanticCustomError(
            "address.not-text", "an address with its prefix is written as text, e.g. 10.0.0.40/24"
        )
    if isinstance(value, str) and "/" not in value:
        raise PydanticCustomError(
            "lb.address.prefix",
            "write the address with its network prefix, e.g. {value}/24: "
            "the topology rules compare networks",
            {"value": value},
        )
    return value


class FailoverDrill(Strict):
    """How the failover drill cuts and restores a front end's link. Shell commands run
    on the admin machine ({name} and {address} are the FE's, quoted); never over the
    connection the tool uses to reach that FE. Unset: the operator pulls the cable."""

    link_down_command: str | None = None
    link_up_command: str | None = None
    #: how long the LB may take to take a member out, or bring it back (seconds)
    detect_timeout: float = Field(30.0, gt=0, le=600)
    #: behind an appliance whose own view cannot be read (manual driver): this many
    #: requests in a row through the VIP, each answered by another front end, show
    #: that it has taken the member out (unless the operator says so first)
    detect_successes: int = Field(20, ge=3, le=1000)


def _check_seconds(what: str) -> BeforeValidator:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PydanticCustomError(
                "value.not-a-number",
                "{what} is a number of seconds written without quotes (e.g. 0.4)",
                {"what": what},
            )
        if not CHECK_SECONDS[0] <= value <= CHECK_SECONDS[1]:  # NaN fails this too
            raise PydanticCustomError(
                "lb.checks.range",
                "{what} must be from {low} to {high} seconds",
                {"what": what, "low": CHECK_SECONDS[0], "high": CHECK_SECONDS[1]},
            )
        # whole milliseconds: HAProxy's unit, so what is read back equals what was asked
        return round(float(value), 3)

    return BeforeValidator(check)


#: a check interval or timeout: below 0.1 s the checks alone would open dozens of
#: connections a second to each front end; above 60 s a dead one serves for minutes
CHECK_SECONDS = (0.1, 60.0)
CheckSeconds = Annotated[float, _check_seconds("a check interval or timeout")]
CheckCount = Annotated[int, _whole_number(1, 20, "a check count (fall, rise)", "lb.checks.range")]


class LbChecks(Strict):
    """How the load balancer checks each member (issue 20), for every driver.

    `interval`: seconds from the end of one check to the start of the next (as in
    HAProxy and the engine); `timeout`: seconds a check may take to connect, at
    most the interval; `fall` failed checks in a row take a member out, `rise`
    good ones bring it back. A member whose service stops (its ports refuse) is
    out within fall x interval, one whose link is cut (its ports are silent)
    within fall x (interval + timeout): 1.0 s and 1.6 s at the defaults, under
    the 2 s the failover drill is held to, and `fall: 2` keeps a member in when
    one check is lost. 0.3 s to connect is hundreds of round trips on a LAN."""

    interval: CheckSeconds = 0.5
    timeout: CheckSeconds = 0.3
    fall: CheckCount = 2
    rise: CheckCount = 2

    def out_within(self) -> float:
        """The longest a member whose link is cut stays in the farm (seconds)."""
        return round(self.fall * (self.interval + self.timeout), 3)

    def back_within(self) -> float:
        """The longest a member that answers again stays out (seconds)."""
        return round(self.rise * (self.interval + self.timeout), 3)


RouterId = Annotated[int, _whole_number(1, 255, "a VRRP router id", "lb.pair.router-id.range")]
AdvertSeconds = Annotated[
    int, _whole_number(1, 255, "the VRRP advertisement interval (seconds)", "lb.pair.advert.range")
]


FixedAddress = Annotated[
    IPv4Interface, BeforeValidator(_interface), AfterValidator(_one_machine_on_its_network)
]


class LbPairHost(HostSpec):
    """One host of a load-balancer pair: `address` is how the tool reaches it,
    `addresses` the host's own fixed addresses (with their prefixes) on the networks
    the topology needs. The floating addresses (VIP, backend_address, SNAT) are
    keepalived's and are never among them."""

    addresses: list[FixedAddress] = Field(min_length=1, max_length=8)


class LbPair(Strict):
    """Two LB hosts with the VIP floating between them over VRRP (keepalived)."""

    hosts: list[LbPairHost] = Field(min_length=2, max_length=2)
    #: the host that holds the VIP when both are up
    preferred: str
    #: the preferred host takes the VIP back when it returns
    preempt: bool = True
    router_id: RouterId
    #: VRRP's shared secret by reference; required (rules.py says so, with its rule id)
    secret: SecretRef | None = None
    advert_interval: AdvertSeconds = 1
    keepalived: KeepalivedSettings = Field(default_factory=KeepalivedSettings)
    #: the LB drill cuts and restores the active host's link with these (run on the
    #: admin machine, {name} and {address} the LB host's, quoted), as
    #: load_balancer.failover's for a front end; unset: the operator pulls the cable
    link_down_command: str | None = None
    link_up_command: str | None = None

    @field_validator("preempt", mode="before")
    @classmethod
    def _bool(cls, v: Any) -> Any:
        if not isinstance(v, bool):
            raise PydanticCustomError(
                "value.not-a-bool", "preempt is true or false, written without quotes"
            )
        return v

    def host(self, name: str) -> LbPairHost | None:
        return next((h for h in self.hosts if h.name == name), None)

    def peer_of(self, name: str) -> LbPairHost:
        """The other host of the pair."""
        return next(h for h in self.hosts if h.name != name)


class LoadBalancer(Strict):
    #: `driver: engine` is short for `driver: {kind: engine}` with its defaults
    driver: DriverSettings
    topology: Topology
    mode: Mode = "full-proxy"
    vip: IPv4Interface
    backend_address: IPv4Interface | None = None
    snat_addresses: list[Address] = Field(default_factory=list)
    expected_peak_connections: PeakConnections
    host: HostSpec | None = None
    #: two LB hosts and the VRRP that floats the VIP between them (then no `host`)
    pair: LbPair | None = None
    failover: FailoverDrill = Field(default_factory=FailoverDrill)
    checks: LbChecks = Field(default_factory=LbChecks)

    @field_validator("driver", mode="before")
    @classmethod
    def _driver(cls, v: Any) -> Any:
        return driver_from_name(v)

    @field_validator("topology", mode="before")
    @classmethod
    def _topology(cls, v: Any) -> Any:
        if isinstance(v, str) and v not in TOPOLOGIES:
            raise PydanticCustomError(
                "lb.topology.unknown",
                "unknown topology '{value}': the walkthrough supports only {known}",
                {"value": v, "known": ", ".join(TOPOLOGIES)},
            )
        return v

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, v: Any) -> Any:
        if isinstance(v, str) and v not in MODES:
            raise PydanticCustomError(
                "lb.mode.unknown",
                "unknown mode '{value}': one of {known}",
                {"value": v, "known": ", ".join(MODES)},
            )
        return v

    @field_validator("vip", "backend_address", mode="before")
    @classmethod
    def _with_prefix(cls, v: Any) -> Any:
        return _interface(v)

    @field_validator("vip", "backend_address")
    @classmethod
    def _one_address(cls, v: IPv4Interface | None) -> IPv4Interface | None:
        return None if v is None else _one_machine_on_its_network(v)

    def lb_hosts(self) -> list[HostSpec]:
        """The LB hosts the tool logs in to: `host`, or the pair's two."""
        if self.pair is not None:
            return list(self.pair.hosts)
        return [] if self.host is None else [self.host]

    def floating(self) -> list[IPv4Address]:
        """The addresses that move with the VIP (the pair's keepalived holds them)."""
        found = [self.vip.ip]
        if self.backend_address is not None:
            found.append(self.backend_address.ip)
        found += [a for a in self.snat_addresses if a not in found]
        return found


class Tsig(Strict):
    name: str
    # hmac-md5 only when the pool file names it: it is the default of nothing here.
    algorithm: Literal[
        "hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"
    ] = "hmac-sha256"
    secret: SecretRef


DNS_PROVIDERS: tuple[str, ...] = ("rfc2136", "windows", "manual")


class _DnsCommon(Strict):
    """What every DNS provider shares. `servers`/`port`: the authoritative servers
    asked over DNS (lookups, the NS set at verify); rfc2136 also updates the first."""

    zone: str
    ttl: Ttl = 3600  # the record's TTL after cutover
    cutover_ttl: Ttl = 60  # lowered ahead of cutover
    servers: list[Address] = Field(default_factory=list)
    port: Port = 53
    timeout: float = Field(10.0, gt=0, le=300)  # seconds, per DNS query or update
    #: names besides the pool name and sip.<domain> that may resolve to the legacy
    #: FE (a web farm name): the cutover inventory shows them without stopping
    names: list[str] = Field(default_factory=list)
    #: names the inventory found pointing at the legacy FE (a CNAME, an unlisted
    #: A record) that the operator has looked at: the cutover goes on
    acknowledge: list[str] = Field(default_factory=list)
    #: names the cutover leaves where they are although they point at the legacy FE
    #: (sip.<domain>, a name of `names`, a SIP SRV record); every other one moves
    #: with the pool name (config/dnsnames.py)
    keep: list[str] = Field(default_factory=list, max_length=64)
    #: the target a SIP SRV record aiming at the legacy FE is given (default the pool FQDN)
    srv_target: str | None = None
    #: the cutover's watch window: probes every `watch_interval` seconds for
    #: `watch_window` seconds; more than `watch_failures` failed probes revert it
    watch_window: WatchSeconds = 300
    watch_interval: WatchSeconds = 10
    watch_failures: WatchFailures = 0
    #: the servers that must answer a change (dns.verify, lower-ttl, raise-ttl):
    #: the zone's NS set by default; `verify_exclude` leaves some out (shown in
    #: the evidence); `propagation_timeout` bounds the wait for them (seconds;
    #: default 30 with serials compared, 300 on an AD-integrated zone)
    verify_servers: list[str] = Field(default_factory=list, max_length=64)
    verify_exclude: list[str] = Field(default_factory=list, max_length=64)
    propagation_timeout: PropagationSeconds | None = None

    @field_validator("verify_servers", "verify_exclude", mode="before")
    @classmethod
    def _server_refs(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [check_server_ref(item) for item in v]
        return v

    @field_validator("zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return check_fqdn(v, "the zone")

    @field_validator("names", "acknowledge")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        return [check_fqdn(name, "a DNS name") for name in v]

    @field_validator("keep")
    @classmethod
    def _kept(cls, v: list[str]) -> list[str]:
        return [_check_record_name(name) for name in v]

    @field_validator("srv_target")
    @classmethod
    def _srv_target(cls, v: str | None) -> str | None:
        return None if v is None else check_fqdn(v, "the SRV target")


class Rfc2136Dns(_DnsCommon):
    """TSIG-signed dynamic updates (RFC 2136) to the first of `servers`."""

    provider: Literal["rfc2136"]
    tsig: Tsig | None = None  # required: rules.py says so, with its rule id


class WindowsDns(_DnsCommon):
    """A Windows DNS server driven over WinRM (AD-integrated zones take only
    secure updates, which TSIG cannot sign). `servers` defaults to the host."""

    provider: Literal["windows"]
    host: HostSpec
    tool: Literal["auto", "dnscmd", "dnsserver-module"] = "auto"

    @field_validator("host")
    @classmethod
    def _winrm(cls, v: HostSpec) -> HostSpec:
        if v.transport.kind != "winrm" or v.os != "windows":
            raise PydanticCustomError(
                "dns.windows.transport",
                "the Windows DNS server is driven over WinRM: give it a winrm transport",
            )
        return v


class ManualDns(_DnsCommon):
    """The operator makes the change; the tool prints it and verifies over DNS."""

    provider: Literal["manual"]
    #: the zone is AD-integrated: every DC keeps its own SOA serial, so verify asks
    #: each server for the new value and compares no serials (as `windows` does)
    ad_integrated: bool = False

    @field_validator("ad_integrated", mode="before")
    @classmethod
    def _bool(cls, v: Any) -> Any:
        if not isinstance(v, bool):
            raise PydanticCustomError(
                "value.not-a-bool", "ad_integrated is true or false, written without quotes"
            )
        return v


Dns = Annotated[Rfc2136Dns | WindowsDns | ManualDns, Field(discriminator="provider")]


DEFAULT_LEASE_DIR = "/var/lib/ocsscale/leases"


class LeaseSettings(Strict):
    """Where the one-run-per-pool lease lives (runner/lease.py): a directory on a
    Linux host every copy of the pool file reaches. `host` is a host of the pool
    file or `admin` (this machine: a directory shared by every admin machine);
    unset, the LB host of the engine and haproxy drivers (none for manual)."""

    host: str | None = None
    dir: str = DEFAULT_LEASE_DIR

    @field_validator("host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        return None if v is None else _check_name(v)

    @field_validator("dir")
    @classmethod
    def _dir(cls, v: str) -> str:
        if not v.startswith("/") or len(v) > 512 or any(ord(c) < 32 or ord(c) == 127 for c in v):
            raise PydanticCustomError(
                "run.lease.dir",
                "the lease directory is an absolute path on its host (at most 512 "
                "characters, no control characters)",
            )
        return v.rstrip("/") or "/"


class RunSettings(Strict):
    """How a run goes about its steps (not what it changes)."""

    #: steps of one playbook entry on different hosts run side by side, at most
    #: this many at once (`run --forks` overrides); 1 runs every step in turn
    forks: int = Field(16, ge=1, le=64)
    #: where the lease that keeps a second copy of this pool file from running
    #: against the same hosts lives
    lease: LeaseSettings = Field(default_factory=LeaseSettings)


CUTOVER_RESTARTS: tuple[str, ...] = ("drained", "flush-only")
DECOMMISSION_TIMEOUTS: tuple[str, ...] = ("stop", "fail")
MAX_PEERS = 256

DrainSeconds = Annotated[int, _whole_number(1, 3600, "a drain timeout (seconds)", "drain.range")]
LegacyDrainSeconds = Annotated[
    int, _whole_number(1, 86400, "a drain timeout (seconds)", "drain.range")
]


class CutoverSettings(Strict):
    """How the cutover restarts the front ends once the pool name has moved.

    `drained`: each FE drained at the LB, at most `drain_timeout` seconds, then
    restarted anyway (the sessions still open are cut, counted and journaled).
    `flush-only`: no restart and no drain: the FEs' DNS caches are flushed (the
    step before) and their services pick up the VIP when they next resolve."""

    fe_restart: Literal["drained", "flush-only"] = "drained"
    drain_timeout: DrainSeconds = 120


class DecommissionSettings(Strict):
    """How decommission drains the legacy FE. `peers`: servers that stay connected
    to it and are not clients (Edge, Director, Mediation, CWA, Exchange UM), as
    addresses, names of hosts of this file, or names in the zone (looked up on its
    servers at the drain); the pool's FEs and the LB's addresses are peers anyway.
    At `drain_timeout` seconds `on_timeout` decides: `stop` goes on and records the
    client sessions it cuts, `fail` stops the phase before anything changed."""

    drain_timeout: LegacyDrainSeconds = 600
    on_timeout: Literal["stop", "fail"] = "stop"
    peers: list[str] = Field(default_factory=list, max_length=MAX_PEERS)

    @field_validator("peers")
    @classmethod
    def _peers(cls, v: list[str]) -> list[str]:
        out = []
        for peer in v:
            try:
                address = IPv4Address(peer)
            except ValueError:  # a name: of a host of this file, or one in the zone
                out.append(peer if _NAME_RE.match(peer) else check_fqdn(peer, "a peer"))
            else:
                out.append(str(_one_machine(address)))
        return out


class Pool(Strict):
    version: int
    pool: PoolNames
    profile: str
    legacy_fe: ServerSpec
    front_ends: list[FrontEnd]
    test_clients: list[HostSpec]
    directory: Directory
    load_balancer: LoadBalancer
    dns: Dns
    credentials: dict[str, Credential] = Field(default_factory=dict)
    run: RunSettings = Field(default_factory=RunSettings)
    cutover: CutoverSettings = Field(default_factory=CutoverSettings)
    decommission: DecommissionSettings = Field(default_factory=DecommissionSettings)
    winrm: WinRmSettings = Field(default_factory=WinRmSettings)

    @model_validator(mode="after")
    def _winrm_connect_to(self) -> Pool:
        # resolved here, once, so every WinRM transport (and the journal's copy of it)
        # says how it connects
        for _, spec in self.all_hosts():
            transport = spec.transport
            if isinstance(transport, WinRmTransport) and transport.connect_to is None:
                transport.connect_to = self.winrm.connect_to
        return self

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int) or v != 1:
            raise PydanticCustomError(
                "version.unsupported", "this ocsscale reads pool files of version 1"
            )
        return v

    def all_hosts(self) -> list[tuple[tuple[str | int, ...], HostSpec]]:
        """Every host the tool may act on, with its path in the document."""
        hosts: list[tuple[tuple[str | int, ...], HostSpec]] = [(("legacy_fe",), self.legacy_fe)]
        hosts += [(("front_ends", i), fe) for i, fe in enumerate(self.front_ends)]
        hosts += [(("test_clients", i), c) for i, c in enumerate(self.test_clients)]
        if self.load_balancer.host is not None:
            hosts.append((("load_balancer", "host"), self.load_balancer.host))
        if self.load_balancer.pair is not None:
            hosts += [
                (("load_balancer", "pair", "hosts", i), h)
                for i, h in enumerate(self.load_balancer.pair.hosts)
            ]
        dns_host = getattr(self.dns, "host", None)  # the Windows DNS server
        if dns_host is not None:
            hosts.append((("dns", "host"), dns_host))
        return hosts

    def address_of(self, name: str) -> IPv4Address | None:
        """The address of the host (or directory server) this file calls `name` (its
        name or FQDN, any case), or None."""
        named: list[Any] = [spec for _, spec in self.all_hosts()] + [self.directory]
        wanted = name.lower().rstrip(".")
        for spec in named:
            if wanted in (spec.name.lower(), (spec.fqdn or "").lower()):
                return IPv4Address(spec.address)
        return None

    def legacy_tls_servers(self) -> list[ServerSpec]:
        """The pool servers whose TLS probes accept TLS 1.0 and SHA-1 (see legacy_tls)."""
        servers: list[ServerSpec] = [self.legacy_fe, *self.front_ends]
        default = self.pool.legacy_tls
        return [s for s in servers if (default if s.legacy_tls is None else s.legacy_tls)]

    def host(self, name: str) -> HostSpec:
        """The host called `name` (names are unique: rules.py checks it)."""
        for _, spec in self.all_hosts():
            if spec.name == name:
                return spec
        raise KeyError(name)
