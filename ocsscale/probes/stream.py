"""Byte streams the probes talk over, and the default connector.

A probe never opens a socket itself: it calls a ``connect(host, port, timeout)``
callable that returns a :class:`Stream`. From the admin host that is a plain
socket (:func:`socket_connector`); from a remote host it can be an SSH
``direct-tcpip`` channel opened by that host (a paramiko ``Channel`` already has
the four methods). Because of that, TLS is layered on top of the stream with
memory BIOs (see :mod:`ocsscale.probes.tlsclient`), never with ``wrap_socket``.

Connectors signal an expected failure (refused, unreachable, timed out) by
raising :class:`OSError` or a subclass; :class:`ConnectError` is there for
connectors that need to wrap a library error of their own.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

try:  # paramiko is a dependency, but a probe must not need it to be importable
    from paramiko import ChannelException as _ChannelException
    from paramiko import SSHException as _SSHException
except ImportError:  # pragma: no cover - paramiko is installed with ocsscale
    _SSHException = None
    _ChannelException = None


@runtime_checkable
class Stream(Protocol):
    """The four calls a probe makes on a connected byte stream."""

    def sendall(self, data: bytes) -> None: ...

    def recv(self, n: int) -> bytes: ...

    def close(self) -> None: ...

    def settimeout(self, timeout: float | None) -> None: ...


Connector = Callable[[str, int, float], Stream]
"""``connect(host, port, timeout) -> Stream``; raises OSError when it cannot."""


class ConnectError(OSError):
    """A connector could not open the stream (for connectors that wrap other errors)."""


def expected_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the network said no" rather than "the code is wrong"."""
    errors: tuple[type[BaseException], ...] = (OSError, EOFError)
    if _SSHException is not None:
        errors += (_SSHException,)
    return errors


def describe_ssh_error(exc: BaseException) -> str | None:
    """A short reason for a paramiko error, or None if ``exc`` is not one."""
    if _ChannelException is not None and isinstance(exc, _ChannelException):
        return f"the remote host could not open the connection ({exc.text})"
    if _SSHException is not None and isinstance(exc, _SSHException):
        return f"SSH error: {exc}"
    return None


def make_socket_connector(source_address: str | None = None) -> Connector:
    """A connector that opens a plain TCP socket, optionally from a given source address."""

    def connect(host: str, port: int, timeout: float) -> Stream:
        source = (source_address, 0) if source_address else None
        sock = socket.create_connection((host, port), timeout=timeout, source_address=source)
        # Probes send small requests and wait for the answer: Nagle only adds delay.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    return connect


socket_connector: Connector = make_socket_connector()
"""The default connector: a plain TCP socket from this host."""


class Deadline:
    """One time budget for a whole probe, shared by every blocking call in it."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return left


def peer_address(stream: Stream) -> str | None:
    """The remote address of a socket stream, when the stream can tell."""
    getpeername = getattr(stream, "getpeername", None)
    if getpeername is None:
        return None
    try:
        peer = getpeername()
    except (OSError, TypeError, ValueError):
        return None
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return None


def local_address(stream: Stream) -> tuple[str, int] | None:
    """The local address and port of a socket stream, when the stream can tell."""
    getsockname = getattr(stream, "getsockname", None)
    if getsockname is None:
        return None
    try:
        local = getsockname()
    except (OSError, TypeError, ValueError):
        return None
    if isinstance(local, tuple) and len(local) >= 2:
        return str(local[0]), int(local[1])
    return None


def recv_until(
    stream: Stream, deadline: Deadline, marker: bytes, limit: int, buffer: bytes = b""
) -> tuple[bytes, bytes]:
    """Read until ``marker``; returns (head including marker, bytes read past it).

    Raises EOFError if the peer closes first and ValueError past ``limit`` bytes.
    """
    data = buffer
    while marker not in data:
        if len(data) > limit:
            raise ValueError(f"no end of header within {limit} bytes")
        stream.settimeout(deadline.remaining())
        chunk = stream.recv(4096)
        if not chunk:
            raise EOFError("connection closed by the server before a complete answer")
        data += chunk
    end = data.index(marker) + len(marker)
    return data[:end], data[end:]


def recv_exactly(stream: Stream, deadline: Deadline, count: int, buffer: bytes = b"") -> bytes:
    """Read until ``count`` bytes are buffered (``buffer`` holds any already read)."""
    data = buffer
    while len(data) < count:
        stream.settimeout(deadline.remaining())
        chunk = stream.recv(min(65536, count - len(data)))
        if not chunk:
            raise EOFError("connection closed by the server in the middle of an answer")
        data += chunk
    return data


def close_quietly(stream: Stream | None) -> None:
    if stream is None:
        return
    # Closing must never mask the probe's result, whatever the stream raises.
    with contextlib.suppress(Exception):
        stream.close()
