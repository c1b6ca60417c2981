"""Helpers that keep the per-connection path cheap: sockets without enum look-ups,
and coroutines run without a Task.

Both event loops take a connection's transport from a coroutine
(`connect_accepted_socket`, `create_connection(sock=...)`) that does its work at
once and then only waits for `connection_made`. A Task per connection for that
wait (creation, context copy, registration in the loop's task set, a first
`call_soon`) cost more than the rest of the engine's own Python work per
connection; `drive` steps the coroutine from its futures' callbacks instead.

`socket.socket.family` and `.type` are properties that build an enum member on
every read, and both loops read them several times per socket. The classes here
answer with plain ints; they are real `socket.socket`s otherwise (both loops rely
on that to detach or close the object with its transport).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any


class _Tcp4(socket.socket):
    __slots__ = ()
    family = socket.AF_INET  # type: ignore[assignment]
    type = socket.SOCK_STREAM  # type: ignore[assignment]


class _Tcp6(socket.socket):
    __slots__ = ()
    family = socket.AF_INET6  # type: ignore[assignment]
    type = socket.SOCK_STREAM  # type: ignore[assignment]


_BY_FAMILY: dict[int, type[socket.socket]] = {socket.AF_INET: _Tcp4, socket.AF_INET6: _Tcp6}
# Non-blocking from the start (no ioctl after socket()); proto TCP so that plain
# asyncio's transports set TCP_NODELAY themselves, as uvloop's always do.
_NEW_FLAGS = socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC


def tcp_socket(family: int) -> socket.socket:
    """A new non-blocking TCP socket of `family`."""
    return _BY_FAMILY[family](family, _NEW_FLAGS, socket.IPPROTO_TCP)


def wrap_accepted(family: int, fd: int) -> socket.socket:
    """The socket object for a descriptor accept() returned (left blocking: both
    loops make it non-blocking when they take it over). A Unix socket (the admin
    API) gets a plain socket object."""
    cls = _BY_FAMILY.get(family)
    if cls is None:
        return socket.socket(family, socket.SOCK_STREAM, 0, fd)
    return cls(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fd)


class _Driver:
    """Steps one coroutine from its futures' done-callbacks. A class and not a
    closure that names itself: that would be a reference cycle per connection,
    left for the cyclic garbage collector, which then cost more than the Task."""

    __slots__ = ("loop", "coro", "on_error")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any],
        on_error: Callable[[Exception], None],
    ) -> None:
        self.loop = loop
        self.coro = coro
        self.on_error = on_error

    def step(self, _fut: object = None) -> None:
        try:
            fut = self.coro.send(None)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            self.on_error(exc)
            return
        if fut is None:  # a bare yield (asyncio.sleep(0)): just go round the loop
            self.loop.call_soon(self.step)
        else:
            fut._asyncio_future_blocking = False  # what a Task does on taking it
            fut.add_done_callback(self.step)


def drive(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any],
    on_error: Callable[[Exception], None],
) -> None:
    """Run `coro` to its end without a Task: each future it waits for resumes it
    from its done-callback. Its result is dropped; an exception goes to
    `on_error`. There is nothing to cancel: the engine never cancels these waits
    (a session that ends closes its transports, which ends the coroutine)."""
    _Driver(loop, coro, on_error).step()
