"""A host's IPv4 default gateways, read back (the routing step behind an appliance).

Linux: `ip -4 route show default`; Windows: every IP-enabled adapter's
DefaultIPGateway (Win32_NetworkAdapterConfiguration, the default_gateways script
of the WinRM transport). Fail closed: a line or a value that is not understood
raises TransportError instead of being skipped, so a gateway nobody could read is
never taken for the right one. No default route at all is an empty list.
"""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address
from typing import Any

from ..errors import TransportError
from .commands import ShCommand

MAX_GATEWAYS = 64  # more is no host's routing table, but a runaway answer


def _ipv4(host: str, text: str) -> str:
    try:
        return str(IPv4Address(text))
    except ValueError:
        raise TransportError(f"{host}: unreadable default route (not an IPv4 gateway)") from None


def parse_ip_route(host: str, output: str) -> list[str]:
    """The gateways of `ip -4 route show default`: `default via GW dev IF ...`, or a
    multipath route's `nexthop via GW dev IF ...` lines. A default route with no
    gateway (`default dev ppp0`) or any other line is unreadable."""
    found: list[str] = []
    for line in output.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "default" and "via" not in fields and "dev" not in fields:
            continue  # the head line of a multipath route: its nexthops follow
        if fields[0] not in ("default", "nexthop") or len(fields) < 3 or fields[1] != "via":
            raise TransportError(
                f"{host}: unreadable default route from `ip -4 route show default` "
                "(expected `default via ADDRESS ...`)"
            )
        found.append(_ipv4(host, fields[2]))
        if len(found) > MAX_GATEWAYS:
            raise TransportError(f"{host}: more than {MAX_GATEWAYS} default gateways")
    return list(dict.fromkeys(found))


def parse_windows(host: str, result: dict[str, Any]) -> list[str]:
    """The IPv4 gateways of the default_gateways script's answer; IPv6 ones are left
    out (they are not the IPv4 default route), anything else is unreadable."""
    values = result.get("gateways")
    if values is None:
        values = []
    if isinstance(values, str):  # PowerShell writes a one-element array as its element
        values = [values]
    if not isinstance(values, list) or len(values) > MAX_GATEWAYS:
        raise TransportError(f"{host}: unreadable answer listing the default gateways")
    found: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise TransportError(f"{host}: unreadable answer listing the default gateways")
        try:
            parsed = ip_address(value.strip())
        except ValueError:
            raise TransportError(f"{host}: unreadable default gateway in WMI's answer") from None
        if isinstance(parsed, IPv4Address):
            found.append(str(parsed))
    return list(dict.fromkeys(found))


def default_gateways(host: Any) -> list[str]:
    """The IPv4 default gateways of a connected Host (Linux or Windows)."""
    if host.os == "windows":
        return list(host.default_gateways())
    result = host.run(ShCommand.of("ip", "-4", "route", "show", "default"), timeout=30.0)
    return parse_ip_route(host.name, result.stdout)
