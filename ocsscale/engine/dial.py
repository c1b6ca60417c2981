"""The session's server connect, from callbacks (a mixin of proxy.Session).

connect() to a nearby server usually finishes the handshake inside the call, and
then the session goes on at once: no Task, writer, timer or loop round trip.
Otherwise the socket waits for writability, and only then is the connect
deadline (`timeouts.connect`) armed; it covers every try of the session's
connect: the next SNAT address when one has no port left, and one other server
when the first refuses (HAProxy's `option redispatch`).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from typing import TYPE_CHECKING

from .accept import OUT_OF_RESOURCES
from .events import log
from .fastpath import drive
from .snat import is_exhaustion, kernel_connected, make_upstream_socket

if TYPE_CHECKING:
    from .balancer import ServerRuntime
    from .proxy import Route, UpstreamSide
    from .server import Engine


class Dialing:
    """A server connect that has to wait for the handshake (the slow path), with
    the connect deadline that covers every try of this session's connect."""

    __slots__ = ("sock", "source", "rest", "server", "redispatched", "deadline")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.source: str | None = None
        self.rest: list[str | None] = []
        self.redispatched = False
        self.deadline: asyncio.TimerHandle | None = None


class ServerConnect:
    """The server side of a Session's set-up; its state lives in Session's slots."""

    __slots__ = ()
    engine: Engine
    route: Route
    server: ServerRuntime | None
    source: str | None
    target: int
    done: bool
    dialing: Dialing | None

    def finish(self, abort: bool) -> None:
        raise NotImplementedError

    def _upstream_side(self) -> UpstreamSide:
        raise NotImplementedError

    def _dial(
        self, server: ServerRuntime, redispatched: bool, rest: list[str | None] | None
    ) -> None:
        """Connect to `server`, trying each SNAT address in turn (`rest`: the ones
        left after an address ran out of ports)."""
        candidates = self.engine.snat.candidates(server.address) if rest is None else rest
        address = (server.address, self.target)
        for i, source in enumerate(candidates):
            try:
                sock = make_upstream_socket(server.address, source)
            except OSError as err:
                self._failed(server, redispatched, err)
                return
            err = sock.connect_ex(address)
            # Nearby servers (loopback, same host) often finish the handshake inside
            # connect() itself: no writer, timer or loop round trip needed then.
            if err == 0 or (err == errno.EINPROGRESS and kernel_connected(sock)):
                self._connected(sock, source)
                return
            if err == errno.EINPROGRESS:
                self._wait(sock, source, candidates[i + 1 :], server, redispatched)
                return
            sock.close()
            exc = OSError(err, os.strerror(err))
            if not is_exhaustion(exc):
                self._failed(server, redispatched, exc)
                return
        self._snat_exhausted(server)

    def _wait(
        self,
        sock: socket.socket,
        source: str | None,
        rest: list[str | None],
        server: ServerRuntime,
        redispatched: bool,
    ) -> None:
        loop = self.engine.loop
        d = self.dialing
        if d is None:  # the first wait of this session's connect starts its deadline
            d = self.dialing = Dialing()
            d.deadline = loop.call_later(self.engine.timeouts.connect, self._connect_expired)
        d.sock, d.source, d.rest = sock, source, rest
        d.server, d.redispatched = server, redispatched
        loop.add_writer(sock.fileno(), self._writable)

    def _writable(self) -> None:
        d = self.dialing
        if d is None or d.sock is None:
            return
        sock, d.sock = d.sock, None
        self.engine.loop.remove_writer(sock.fileno())
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == 0:
            self._connected(sock, d.source)
            return
        sock.close()
        exc = OSError(err, os.strerror(err))
        if is_exhaustion(exc):
            self._dial(d.server, d.redispatched, d.rest)
        else:
            self._failed(d.server, d.redispatched, exc)

    def _connect_expired(self) -> None:
        # The timeout is the server's: if the kernel finished the handshake, the
        # server answered and only this (busy) process is late to notice.
        d = self.dialing
        if d is None:
            return
        if d.sock is not None and kernel_connected(d.sock):
            d.deadline = self.engine.loop.call_later(
                self.engine.timeouts.connect, self._connect_expired
            )
            return
        server = d.server
        self.engine.events.emit_coalesced(
            f"timeout:{server.name}",
            "connect-failed",
            f"connect to {server.name}:{self.target} timed out after"
            f" {self.engine.timeouts.connect:g}s (timeouts.connect); client closed",
            server=server.name,
            port=self.route.port,
        )
        self.finish(abort=False)

    def _stop_dialing(self) -> None:
        d, self.dialing = self.dialing, None
        if d is None:
            return
        if d.deadline is not None:
            d.deadline.cancel()
        if d.sock is not None:
            self.engine.loop.remove_writer(d.sock.fileno())
            d.sock.close()
            d.sock = None

    def _failed(self, server: ServerRuntime, redispatched: bool, err: OSError) -> None:
        # Like HAProxy's `option redispatch`: one more try on another server, so a
        # server whose port just died costs the client nothing. No descriptor or
        # memory left is the engine's own fault: no retry.
        engine = self.engine
        ours = err.errno in OUT_OF_RESOURCES
        retry = not (redispatched or ours)
        other = engine.balancer.pick(exclude=server) if retry else None
        outcome = "client closed" if other is None else f"retrying on {other.name}"
        fault = " (the engine's own shortage, not the server's)" if ours else ""
        engine.events.emit_coalesced(
            f"fail:{server.name}",
            "connect-failed",
            f"connect to {server.name}:{self.target} failed:"
            f" {err.strerror or err}{fault}; {outcome}",
            server=server.name,
            port=self.route.port,
        )
        if other is None or self.done:
            self.finish(abort=False)
            return
        self._move_to(other)
        self._dial(other, True, None)

    def _snat_exhausted(self, server: ServerRuntime) -> None:
        engine = self.engine
        engine.snat.exhausted += 1
        engine.events.emit_coalesced(
            f"snat:{server.address}:{self.target}",
            "snat-exhausted",
            f"no SNAT address has a free port towards {server.address}:{self.target};"
            " client closed",
            server=server.name,
            port=self.route.port,
        )
        self.finish(abort=False)

    def _move_to(self, server: ServerRuntime) -> None:
        old = self.server
        assert old is not None
        old.closed(self.route.port)
        old.sessions.discard(self)
        server.opened(self.route.port)
        server.sessions.add(self)
        self.server = server

    def _connected(self, sock: socket.socket, source: str | None) -> None:
        """The server answered; what follows is local work (no deadline any more)."""
        if self.dialing is not None:
            self._stop_dialing()
        self.source = source  # from here on, finish() gives the port back
        self.engine.snat.take(source)
        loop = self.engine.loop

        def failed(exc: Exception) -> None:
            sock.close()
            if not isinstance(exc, OSError):
                log.error(f"server transport not created: {exc!r}")
            self.finish(abort=False)

        # The transport reaches UpstreamSide.connection_made; the coroutine only
        # waits for that, so it runs without a Task (see fastpath.drive). The
        # socket is connected already: connect_accepted_socket wraps it as it is,
        # the same transport as create_connection(sock=) without its setblocking()
        # (one system call per connection: the loop makes the socket non-blocking
        # itself).
        drive(loop, loop.connect_accepted_socket(self._upstream_side, sock), failed)
