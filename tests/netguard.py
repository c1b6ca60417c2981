"""No test sends a packet outside loopback and the lab's range (198.18.0.0/15).

Installed for the whole test session (tests/conftest.py): a connect or a
datagram from this process to any other address raises at once, before a
packet leaves, and the test fails naming the address. Example pool files
hold 10.x addresses that are planned, never contacted; a code path that
would contact one (a lease on an example's LB host, say) fails here instead
of sending it. Subprocesses are not covered: the lab runs them inside its
namespaces, behind the blackhole route of the machine's own namespace.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

ALLOWED = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
    ipaddress.ip_network("198.18.0.0/15"),
)


class ForbiddenAddress(AssertionError):
    pass


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
        return  # Unix sockets, netlink: no packet leaves the machine
    host = address[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return  # a name: connect() resolves it through getaddrinfo, checked below
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not any(ip in net for net in ALLOWED):
        raise ForbiddenAddress(
            f"a test tried to send a packet to {ip}: only loopback and 198.18.0.0/15"
        )


def install() -> None:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto

    def connect(self: socket.socket, address: Any) -> None:
        _check(self, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(self, address)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        _check(self, args[-1])
        return real_sendto(self, data, *args)  # type: ignore[call-overload]

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[method-assign]
