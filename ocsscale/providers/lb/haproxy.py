"""HAProxy (Debian's) as a pool's load balancer, on a Linux LB host.

Settings (`load_balancer.driver: {kind: haproxy, ...}`): the configuration
file, the service and how it is controlled, the runtime API socket, and the
server-state file that keeps drain/maint across reloads.
"""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from ...config.strict import Strict
from .engine import check_abs_path, check_service, check_service_control


class HaproxySettings(Strict):
    kind: Literal["haproxy"]
    config_path: str = "/etc/haproxy/haproxy.cfg"
    service: str = "haproxy"
    service_control: str = "systemctl {action} {service}"
    runtime_socket: str = "/run/haproxy/admin.sock"
    state_file: str = "/var/lib/haproxy/server-state"
    command: str = "haproxy"
    vip_interface: str | None = None

    @field_validator("service")
    @classmethod
    def _service(cls, v: str) -> str:
        return check_service(v)

    @field_validator("service_control")
    @classmethod
    def _control(cls, v: str) -> str:
        return check_service_control(v)

    @field_validator("config_path", "runtime_socket", "state_file")
    @classmethod
    def _paths(cls, v: str) -> str:
        return check_abs_path(v)
