"""Source addresses for server-side connections.

Each server connection binds a SNAT address with IP_BIND_ADDRESS_NO_PORT, which
defers the choice of source port to connect(). The kernel then only needs the
4-tuple to be unique, so the limit is about 28k-64k connections per (SNAT
address, server address:port) rather than per SNAT address, and each added
address lifts it. When the kernel has no port left for a pair, connect() fails
with EADDRNOTAVAIL at once and the next address is tried.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import struct
from typing import Any

from .fastpath import tcp_socket

# Linux value; the socket module does not export it on every build.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


class SnatExhausted(Exception):
    """No SNAT address has a free source port towards this server address:port."""


class SnatPool:
    def __init__(self, addresses: list[str]) -> None:
        self._by_version: dict[int, list[str]] = {}
        self.addresses = list(addresses)
        self._cursor = 0
        # Active server-side connections per SNAT address: the "ports in use".
        self.in_use: dict[str, int] = {a: 0 for a in addresses}
        self.exhausted = 0

    @property
    def addresses(self) -> list[str]:
        return self._addresses

    @addresses.setter
    def addresses(self, addresses: list[str]) -> None:
        # Sorted by family once here, not parsed again for every connection.
        self._addresses = addresses
        self._by_version = {4: [], 6: []}
        for a in addresses:
            self._by_version[ipaddress.ip_address(a).version].append(a)

    def _usable(self, server_address: str) -> list[str]:
        return self._by_version[6 if ":" in server_address else 4]

    def candidates(self, server_address: str) -> list[str | None]:
        """Addresses to try, in order, for a connection to `server_address`.

        The starting address rotates so connections spread over the pool; `None`
        means "no SNAT address configured, let the kernel choose the source".
        """
        usable = self._usable(server_address)
        if not usable:
            return [None]
        if len(usable) == 1:
            return [usable[0]]
        self._cursor = (self._cursor + 1) % len(usable)
        return usable[self._cursor :] + usable[: self._cursor]

    def first(self, server_address: str) -> str | None:
        """The fixed source for health checks: the first address of the right family."""
        usable = self._usable(server_address)
        return usable[0] if usable else None

    def take(self, address: str | None) -> None:
        if address is not None:
            self.in_use[address] = self.in_use.get(address, 0) + 1

    def give_back(self, address: str | None) -> None:
        if address is not None:
            self.in_use[address] -= 1

    def as_dict(self) -> dict[str, Any]:
        return {"addresses": self.addresses, "in_use": dict(self.in_use)}


def make_upstream_socket(server_address: str, source: str | None) -> socket.socket:
    """A non-blocking TCP socket towards `server_address`, bound to the SNAT
    address `source` (port chosen at connect()). No TCP_NODELAY here: both event
    loops set it on every TCP transport they make (see fastpath.tcp_socket)."""
    sock = tcp_socket(socket.AF_INET6 if ":" in server_address else socket.AF_INET)
    if source is None:
        return sock
    try:
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        except OSError:
            if sock.family == socket.AF_INET:
                raise
            # Older kernels lack it for IPv6: the port is then taken at bind().
        sock.bind((source, 0))
    except BaseException:
        sock.close()
        raise
    return sock


async def connect_socket(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    address: tuple[str, int],
) -> None:
    """Connect the non-blocking `sock` to a numeric `address` (health checks; the
    data path does the same from callbacks, proxy.Session._dial).

    Not loop.sock_connect: uvloop's resolves the address with type=0, which misses
    its numeric fast path and sends every connect through getaddrinfo on libuv's
    thread pool (a thread hand-off per connect)."""
    err = sock.connect_ex(address)
    if err == 0:
        return
    if err != errno.EINPROGRESS:
        raise OSError(err, os.strerror(err))
    if kernel_connected(sock):
        # Nearby servers (loopback, same host) often finish the handshake inside
        # connect() itself: no writer, future and loop round trip needed then.
        return
    writable = loop.create_future()
    fd = sock.fileno()
    loop.add_writer(fd, _wake, writable)
    try:
        await writable
    finally:
        loop.remove_writer(fd)
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def is_exhaustion(err: OSError) -> bool:
    return err.errno in (errno.EADDRNOTAVAIL, errno.EADDRINUSE)


def kernel_connected(sock: socket.socket) -> bool:
    """True once the kernel finished the handshake, whether or not this process
    has been scheduled to notice yet (getpeername fails in SYN-SENT)."""
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


_TCP_INFO_SIZE = 104  # through tcpi_total_retrans (Linux 2.6.x layout, still the prefix)
_TCPI_RTT = 68
_TCPI_TOTAL_RETRANS = 100


def handshake_seconds(sock: socket.socket) -> float | None:
    """How long the server took to answer our SYN, from the kernel's own RTT sample;
    None when not connected, when the SYN had to be sent again (then the kernel has
    no sample: Karn's rule) or when TCP_INFO is unavailable."""
    if not kernel_connected(sock):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    except (OSError, AttributeError):
        return None
    if len(info) < _TCP_INFO_SIZE or struct.unpack_from("I", info, _TCPI_TOTAL_RETRANS)[0]:
        return None
    return struct.unpack_from("I", info, _TCPI_RTT)[0] / 1e6
