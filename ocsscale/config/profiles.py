"""Profiles: what makes a service special (ports, checks, services, certificates).

A profile is a YAML data file: the shipped ones are in `profiles/`, and a pool
file may name its own by path. It is validated like the pool file, so its
errors also name file:line:col.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, computed_field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..errors import ConfigError, ConfigIssue, UsageError
from ..resources import resource_path
from ..yamlpos import YamlDocument, load_yaml
from .model import Mode, OsKind, Topology
from .strict import Strict
from .validation import validate_document

Port = int
SanToken = Literal["pool-fqdn", "fe-fqdn", "sip.<domain>"]


class ProfileNotFound(UsageError):
    """The pool file names a profile that is neither shipped nor a readable file."""

    def __init__(self, name: str, available: list[str]) -> None:
        super().__init__(
            f"unknown profile '{name}': shipped profiles are {', '.join(available) or 'none'}; "
            "or give the path to a profile file"
        )
        self.name = name


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise PydanticCustomError("profile.port", "a port is between 1 and 65535")
    return value


class Services(Strict):
    """Services to restart after a hosts-file pin, so they resolve the pool name anew.

    On Windows, `windows` names services and `windows_display_names` finds more by
    display name (PowerShell -like patterns, e.g. `Office Communications Server*`), so
    the services a front end has are found on it rather than listed here."""

    windows: list[str] = Field(default_factory=list)
    windows_display_names: list[str] = Field(default_factory=list)
    linux: list[str] = Field(default_factory=list)

    def for_os(self, os: OsKind) -> list[str]:
        return list(self.windows if os == "windows" else self.linux)


def _default_san() -> list[SanToken]:
    return ["fe-fqdn", "sip.<domain>"]


class CertificateRules(Strict):
    subject: Literal["pool-fqdn"] = "pool-fqdn"
    san: list[SanToken] = Field(default_factory=_default_san)
    wildcard: bool = False
    eku: Literal["serverAuth"] = "serverAuth"


class ProfilePort(Strict):
    """One port of the farm. `required: false` marks a port a pool may well not
    have (a role that is off by default): its probes inform instead of failing.
    A bare number in the profile is a required port."""

    port: Port
    required: bool = True
    #: why the port may be missing, shown with its findings
    note: str = ""

    @model_validator(mode="before")
    @classmethod
    def _bare_number(cls, data: object) -> object:
        if isinstance(data, int) and not isinstance(data, bool):
            return {"port": _port(data)}  # checked here, so the error names ports[i]
        return data

    @field_validator("port")
    @classmethod
    def _range(cls, v: int) -> int:
        return _port(v)


class SipPorts(Strict):
    tls: Port | None = None
    tcp: Port | None = None


class Profile(Strict):
    version: int = 1
    name: str
    description: str
    #: the YAML's `ports`: every port the farm carries, each required or not
    port_list: list[ProfilePort] = Field(alias="ports", min_length=1, exclude=True)
    check_ports: list[Port] = Field(min_length=1)
    #: every port that is not a check port is taken out with its server when a check fails
    others_follow_checks: bool = True
    idle_timeout: int = Field(ge=1)  # seconds
    balance: Literal["wlc"] = "wlc"
    snat_connections_per_address: int = Field(65000, ge=1)
    supported_topologies: list[Topology] = Field(min_length=1)
    supported_modes: list[Mode] = Field(min_length=1)
    tls_ports: list[Port] = Field(default_factory=list)
    sip_ports: SipPorts = Field(default_factory=SipPorts)
    https_ports: list[Port] = Field(default_factory=list)
    services: Services = Field(default_factory=Services)
    #: the services behind each check port (what the failover drill stops)
    check_services: dict[Port, Services] = Field(default_factory=dict)
    certificate: CertificateRules = Field(default_factory=CertificateRules)
    _source: str = PrivateAttr("")  # the file it was read from

    @field_validator("check_ports", "tls_ports", "https_ports")
    @classmethod
    def _ports(cls, v: list[int]) -> list[int]:
        for port in v:
            _port(port)
        _no_duplicates(v)
        return v

    @field_validator("port_list")
    @classmethod
    def _port_list(cls, v: list[ProfilePort]) -> list[ProfilePort]:
        _no_duplicates([p.port for p in v])
        return v

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ports(self) -> list[int]:
        """Every port the farm carries, in the profile's order (required or not)."""
        return [p.port for p in self.port_list]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def required_ports(self) -> list[int]:
        """The ports every front end must answer on (unless the pool file says otherwise)."""
        return [p.port for p in self.port_list if p.required]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def optional_ports(self) -> list[int]:
        """Ports a pool may not have: a closed one is reported, never a failure."""
        return [p.port for p in self.port_list if not p.required]

    def port_note(self, port: int) -> str:
        return next((p.note for p in self.port_list if p.port == port), "")

    @property
    def source(self) -> str:
        return self._source

    def following_ports(self) -> list[int]:
        """Ports without a check of their own (they follow the check ports)."""
        return [p for p in self.ports if p not in self.check_ports]


def port_requirement(pool: Any, profile: Profile, port: int) -> str:
    """`required`, `optional` or `absent`: what the pool file's `pool.ports` says
    of `port` (a Pool), else what the profile says (`required: true|false`)."""
    chosen = pool.pool.ports.get(port)
    if chosen is not None:
        return str(chosen)
    return "required" if port in profile.required_ports else "optional"


def _no_duplicates(ports: list[int]) -> None:
    if len(set(ports)) != len(ports):
        raise PydanticCustomError("profile.port.duplicate", "each port is listed once")


def profiles_dir() -> Path:
    return resource_path("profiles")


def _looks_like_path(name: str) -> bool:
    return "/" in name or "\\" in name or name.endswith((".yaml", ".yml"))


def shipped_names() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.yaml"))


def profile_file(name_or_path: str, base_dir: Path | None = None) -> Path:
    """The file a profile reference points at (no reading yet)."""
    if _looks_like_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise ProfileNotFound(name_or_path, shipped_names())
        return path
    path = profiles_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ProfileNotFound(name_or_path, shipped_names())
    return path


def load_profile(name_or_path: str, base_dir: Path | None = None) -> Profile:
    """A shipped profile by name, or a profile file (relative to `base_dir`)."""
    path = profile_file(name_or_path, base_dir)
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError(
            [ConfigIssue(doc.file, 1, 1, "", "yaml.not-mapping", "a profile is a YAML mapping")]
        )
    profile, issues = validate_document(Profile, doc)
    if profile is not None:
        issues += _port_subset_issues(profile, doc)
        if not _looks_like_path(name_or_path) and profile.name != name_or_path:
            issues.append(
                doc.issue(
                    ("name",),
                    "profile.name",
                    f"a shipped profile's name matches its file name ({name_or_path})",
                )
            )
    if issues or profile is None:
        raise ConfigError(issues)
    profile._source = str(path)
    return profile


def _port_subset_issues(profile: Profile, doc: YamlDocument) -> list[ConfigIssue]:
    """Every port a profile singles out must be one of its ports."""
    ports = set(profile.ports)
    sip = profile.sip_ports
    named: dict[tuple[str, ...], list[int]] = {
        ("check_ports",): profile.check_ports,
        ("check_services",): list(profile.check_services),
        ("tls_ports",): profile.tls_ports,
        ("https_ports",): profile.https_ports,
        ("sip_ports", "tls"): [sip.tls] if sip.tls is not None else [],
        ("sip_ports", "tcp"): [sip.tcp] if sip.tcp is not None else [],
    }
    issues = []
    for index, entry in enumerate(profile.port_list):
        if entry.port in profile.check_ports and not entry.required:
            # a health check on a port that may not listen takes every server out
            issues.append(
                doc.issue(
                    ("ports", index),
                    "profile.port.optional-check",
                    f"{entry.port} is a check port: it must be required",
                )
            )
    for path, listed in named.items():
        stray = sorted(set(listed) - ports)
        if stray:
            issues.append(
                doc.issue(
                    path,
                    "profile.port.not-in-ports",
                    f"{'.'.join(path)} names {', '.join(map(str, stray))}, which are not in ports",
                )
            )
    return issues


def list_profiles() -> list[Profile]:
    """Every shipped profile, by name."""
    return [load_profile(name) for name in shipped_names()]
