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

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

OsKind = Literal["linux", "windows"]
Topology = Literal["one-armed", "two-armed-routed", "two-armed-transparent"]
Mode = Literal["full-proxy", "dnat-only", "out-of-path"]
TOPOLOGIES: tuple[str, ...] = ("one-armed", "two-armed-routed", "two-armed-transparent")
MODES: tuple[str, ...] = ("full-proxy", "dnat-only", "out-of-path")
DEFAULT_SERVICE_COMMAND = "systemctl restart {service}"

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_FQDN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})+$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def check_fqdn(value: str, what: str = "name") -> str:
    name = value.rstrip(".")
    if not _FQDN_RE.match(name):
        raise PydanticCustomError(
            "name.fqdn",
            "{what} must be a fully qualified domain name such as host.contoso.com",
            {"what": what},
        )
    return name


def _check_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise PydanticCustomError(
            "name.invalid", "names use letters, digits, '.', '_' and '-' (at most 63)"
        )
    return value


class SecretRef(Strict):
    """Where a secret lives: `{env: NAME}` or `{file: PATH}`, never the secret itself."""

    env: str | None = None
    file: str | None = None

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


class Credential(Strict):
    username: str
    password: SecretRef | None = None
    key_file: str | None = None
    passphrase: SecretRef | None = None


class SshTransport(Strict):
    kind: Literal["ssh"]
    credentials: str
    port: int = Field(22, ge=1, le=65535)
    known_hosts: str = "~/.ssh/known_hosts"
    #: host keys are never added on first sight unless the pool file says so
    trust_unknown_host_keys: bool = False
    service_command: str = DEFAULT_SERVICE_COMMAND
    hosts_file: str | None = None  # overrides the OS default (/etc/hosts)


class WinRmTransport(Strict):
    kind: Literal["winrm"]
    credentials: str
    port: int = Field(5986, ge=1, le=65535)
    scheme: Literal["https", "http"] = "https"
    auth: Literal["ntlm", "kerberos", "basic", "credssp"] = "ntlm"
    ca_bundle: str | None = None
    verify_tls: bool = True
    hosts_file: str | None = None  # overrides C:\Windows\System32\drivers\etc\hosts

    @model_validator(mode="after")
    def _http_port(self) -> WinRmTransport:
        # An unset port follows the scheme (WinRM listens on 5985 for HTTP).
        if self.scheme == "http" and "port" not in self.model_fields_set:
            self.port = 5985
        return self


class LocalTransport(Strict):
    kind: Literal["local"]
    hosts_file: str | None = None
    service_command: str = DEFAULT_SERVICE_COMMAND


Transport = Annotated[SshTransport | WinRmTransport | LocalTransport, Field(discriminator="kind")]
_OS_BY_TRANSPORT: dict[str, OsKind] = {"winrm": "windows", "ssh": "linux", "local": "linux"}


class HostSpec(Strict):
    name: str
    fqdn: str | None = None
    address: IPv4Address
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

    fqdn: str  # type: ignore[assignment]


class FrontEnd(ServerSpec):
    weight: int = 1

    @field_validator("weight")
    @classmethod
    def _weight(cls, v: int) -> int:
        if v < 0:
            raise PydanticCustomError("fe.weight.negative", "weight must be 0 or more")
        return v


class PoolNames(Strict):
    fqdn: str
    sip_domain: str
    # The CA (PEM) that issued the front ends' certificates; probes verify
    # against it. None: the system's trust store.
    ca_bundle: str | None = None

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
    address: IPv4Address
    port: int = Field(135, ge=1, le=65535)


def _interface(value: Any) -> Any:
    if isinstance(value, str) and "/" not in value:
        raise PydanticCustomError(
            "lb.address.prefix",
            "write the address with its network prefix, e.g. {value}/24: "
            "the topology rules compare networks",
            {"value": value},
        )
    return value


class LoadBalancer(Strict):
    driver: Literal["engine", "haproxy", "manual"]
    topology: Topology
    mode: Mode = "full-proxy"
    vip: IPv4Interface
    backend_address: IPv4Interface | None = None
    snat_addresses: list[IPv4Address] = Field(default_factory=list)
    expected_peak_connections: int = Field(ge=1)
    host: HostSpec | None = None

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
    ttl: int = Field(3600, ge=0)  # the record's TTL after cutover
    cutover_ttl: int = Field(60, ge=0)  # lowered ahead of cutover
    servers: list[IPv4Address] = Field(default_factory=list)
    port: int = Field(53, ge=1, le=65535)
    timeout: float = Field(10.0, gt=0, le=300)  # seconds, per DNS query or update

    @field_validator("zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return check_fqdn(v, "the zone")


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


Dns = Annotated[Rfc2136Dns | WindowsDns | ManualDns, Field(discriminator="provider")]


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

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        if v != 1:
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
        dns_host = getattr(self.dns, "host", None)  # the Windows DNS server
        if dns_host is not None:
            hosts.append((("dns", "host"), dns_host))
        return hosts

    def host(self, name: str) -> HostSpec:
        """The host called `name` (names are unique: rules.py checks it)."""
        for _, spec in self.all_hosts():
            if spec.name == name:
                return spec
        raise KeyError(name)
