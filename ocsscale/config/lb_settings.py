"""`load_balancer.driver` in the pool file: one settings model per LB driver, by `kind`.

The drivers (providers/lb/) are built from these and import them from here; the
pool-file model never imports a driver. A new driver's settings go here: a
`NameSettings` with `kind: Literal["name"]`, added to `DriverSettings` and
`DRIVER_KINDS`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from .strict import Strict

_SERVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._-]{0,63}\Z")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\Z")


#: in a driver's paths and service_control: the LB host's name, for a pair whose
#: two hosts keep their files in different places (the lab's share one filesystem)
HOST_PLACEHOLDER = "{host}"


def check_service_control(value: str) -> str:
    if "{action}" not in value:
        raise PydanticCustomError(
            "lb.driver.service-control",
            "service_control must contain {{action}} (and may contain {{service}}), "
            "e.g. 'systemctl {{action}} {{service}}'",
        )
    try:
        value.format(action="start", service="x", host="h")
    except (KeyError, IndexError, ValueError):
        raise PydanticCustomError(
            "lb.driver.service-control",
            "service_control may only use {{action}}, {{service}} and {{host}} as placeholders",
        ) from None
    return value


S = TypeVar("S", bound=BaseModel)


def for_host(settings: S, host: str) -> S:
    """`settings` with `{host}` in every text value replaced by `host` (the LB host's
    name, as the pool file writes it: names are letters, digits, '.', '_', '-')."""
    changed = {
        name: value.replace(HOST_PLACEHOLDER, host)
        for name in type(settings).model_fields
        if isinstance(value := getattr(settings, name), str) and HOST_PLACEHOLDER in value
    }
    return settings.model_copy(update=changed) if changed else settings


def check_service(value: str) -> str:
    if not _SERVICE_RE.match(value):
        raise PydanticCustomError(
            "lb.driver.service", "a service name uses letters, digits, '@', '.', '_' and '-'"
        )
    return value


def check_abs_path(value: str) -> str:
    if not value.startswith("/") or "\0" in value or "\n" in value:
        raise PydanticCustomError("lb.driver.path", "an absolute path on the LB host is required")
    return value


class ServiceSettings(Strict):
    """A service on a Linux host and how it is controlled (systemctl by default)."""

    service: str
    service_control: str = "systemctl {action} {service}"

    @field_validator("service")
    @classmethod
    def _service(cls, v: str) -> str:
        return check_service(v)

    @field_validator("service_control")
    @classmethod
    def _control(cls, v: str) -> str:
        return check_service_control(v)


class LinuxLbSettings(ServiceSettings):
    """What the settings of every driver on a Linux LB host share: the service that
    runs the load balancer, how it is controlled, its command, and the VIP's interface
    (default: the one whose network holds the VIP)."""

    command: str
    vip_interface: str | None = None


class EngineSettings(LinuxLbSettings):
    """The bundled engine (providers/lb/engine.py)."""

    kind: Literal["engine"]
    farm_path: str = "/etc/ocsscale/lb/farm.yaml"
    service: str = "ocsscale-lb"
    #: the systemd unit written on the LB host; null when the service is defined
    #: already (the lab's service runner, or a unit the site manages itself)
    unit_path: str | None = "/etc/systemd/system/ocsscale-lb.service"
    command: str = "ocsscale"  # the ocsscale command on the LB host
    admin_socket: str = "/run/ocsscale/lb.sock"
    workers: int = Field(1, ge=1, le=64)

    @field_validator("farm_path", "unit_path", "admin_socket")
    @classmethod
    def _paths(cls, v: str | None) -> str | None:
        if v is not None:
            check_abs_path(v)
        if v is not None and len(v.encode()) > 100 and v.endswith(".sock"):
            raise PydanticCustomError("lb.driver.path", "a Unix socket path is at most 100 bytes")
        return v


class HaproxySettings(LinuxLbSettings):
    """HAProxy (providers/lb/haproxy.py)."""

    kind: Literal["haproxy"]
    config_path: str = "/etc/haproxy/haproxy.cfg"
    service: str = "haproxy"
    runtime_socket: str = "/run/haproxy/admin.sock"
    state_file: str = "/var/lib/haproxy/server-state"
    command: str = "haproxy"
    #: the workers drop root for this user and group (Debian's package creates them)
    user: str | None = "haproxy"
    group: str | None = "haproxy"

    @field_validator("config_path", "runtime_socket", "state_file")
    @classmethod
    def _paths(cls, v: str) -> str:
        return check_abs_path(v)

    @field_validator("user", "group")
    @classmethod
    def _account(cls, v: str | None) -> str | None:
        if v is not None and not _USER_RE.match(v):
            raise PydanticCustomError(
                "lb.driver.account", "a user or group name: lower-case letters, digits, _ and -"
            )
        return v


class KeepalivedSettings(ServiceSettings):
    """keepalived on each host of a load-balancer pair (`load_balancer.pair.keepalived`):
    the file the driver writes, its track script, the service and how it is controlled
    (paths and service_control may hold `{host}`)."""

    config_path: str = "/etc/keepalived/keepalived.conf"
    track_script: str = "/etc/keepalived/ocsscale-track.sh"
    service: str = "keepalived"

    @field_validator("config_path", "track_script")
    @classmethod
    def _paths(cls, v: str) -> str:
        return check_abs_path(v)


#: the appliances the manual driver has checklists for: one data file each,
#: templates/lb-vendors/<vendor>.yaml (read by providers/lb/vendors.py)
Vendor = Literal["webmux", "f5", "kemp", "netscaler", "generic"]
VENDORS: tuple[str, ...] = ("webmux", "f5", "kemp", "netscaler", "generic")


def vendor_choice(value: Any) -> str | None:
    """The vendor `value` names, case-insensitive ("WebMux" is webmux); None if none."""
    if not isinstance(value, str):
        return None
    name = value.strip().lower()
    return name if name in VENDORS else None


class ManualSettings(Strict):
    """Any appliance, by hand (providers/lb/manual.py)."""

    kind: Literal["manual"]
    #: whose words the checklists speak (templates/lb-vendors/<vendor>.yaml)
    vendor: Vendor = "webmux"

    @field_validator("vendor", mode="before")
    @classmethod
    def _vendor(cls, v: Any) -> Any:
        # "WebMux", the old default's spelling, and "F5" are the same choices
        choice = vendor_choice(v)
        if choice is None:
            raise PydanticCustomError(
                "lb.vendor.unknown",
                "not a load-balancer vendor ocsscale has checklists for: one of {known}",
                {"known": ", ".join(VENDORS)},
            )
        return choice


DriverSettings = Annotated[
    EngineSettings | HaproxySettings | ManualSettings, Field(discriminator="kind")
]
DRIVER_KINDS = ("engine", "haproxy", "manual")


def driver_from_name(value: Any) -> Any:
    """`driver: engine` is short for `driver: {kind: engine}` (every default)."""
    if isinstance(value, str) and value in DRIVER_KINDS:
        return {"kind": value}
    return value
