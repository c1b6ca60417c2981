"""The data path: one Session per client connection, two thin Protocols around it.

Hot-path notes: once both sides are connected, data is written straight to the
peer transport with no copying or queueing of our own. Before the server
connection exists, bytes a client sends first (HTTP, iperf3) are held in the
session's `early` buffer and flushed once the server answers: the client is
paused at accept, but uvloop ignores pause_reading() inside connection_made, so
the data path must not rely on it. `early` is bounded like everything else:
reading is paused again once it passes HIGH_WATER. Memory is bounded by the transports' write-buffer
limits: when one side's buffer passes HIGH_WATER, reading from the other side is
paused until it drains below LOW_WATER. The idle timeout is lazy: data only sets
a flag, and one sweep per engine every quarter of the idle timeout checks every
session, so the timeout is enforced between 1.0x and 1.25x its value with neither
a timer per packet nor a timer object per session (memory per idle session counts).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from .accept import OUT_OF_RESOURCES
from .snat import (
    SnatExhausted,
    connect_socket,
    is_exhaustion,
    kernel_connected,
    make_upstream_socket,
)

if TYPE_CHECKING:
    from .balancer import ServerRuntime
    from .maxconn import Ticket
    from .server import Engine

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
IDLE_TICKS = 4
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


class Route:
    """A listen (vip, port) and the server port it forwards to; updated in place on reload."""

    __slots__ = ("vip", "port", "target")

    def __init__(self, vip: str, port: int, target: int) -> None:
        self.vip = vip
        self.port = port
        self.target = target


class Session:
    __slots__ = (
        "engine",
        "route",
        "server",
        "source",
        "client",
        "upstream",
        "touched",
        "quiet",
        "half_timer",
        "client_eof",
        "upstream_eof",
        "done",
        "target",
        "early",
    )

    def __init__(self, engine: Engine, route: Route, client: asyncio.Transport) -> None:
        self.engine = engine
        self.route = route
        self.client = client
        self.upstream: asyncio.Transport | None = None
        self.server: ServerRuntime | None = None
        self.source: str | None = None
        self.touched = False
        self.quiet = 0
        self.half_timer: asyncio.TimerHandle | None = None
        self.client_eof = False
        self.upstream_eof = False
        self.done = False
        self.target = route.target
        # Client bytes that arrived before the server connection existed.
        self.early: bytearray | None = None

    # -- set-up -----------------------------------------------------------------
    def start(self) -> None:
        engine = self.engine
        server = engine.balancer.pick()
        if server is None:
            engine.events.emit_coalesced(
                "no-server",
                "no-server",
                f"no server available ({engine.balancer.why_none()}); client closed",
                port=self.route.port,
            )
            self.done = True
            self.client.close()
            return
        self.server = server
        server.opened(self.route.port)
        server.sessions.add(self)
        self.client.pause_reading()
        self.client.set_write_buffer_limits(HIGH_WATER, LOW_WATER)
        engine.loop.create_task(self._connect(server))

    async def _dial(
        self, server: ServerRuntime, dialing: list[socket.socket], arm: Callable[[], None]
    ) -> tuple[socket.socket, str | None]:
        """A connected socket to `server`, trying each SNAT address in turn; the
        socket being connected is kept in `dialing` for the connect deadline, which
        `arm` starts before the first wait for the kernel."""
        loop = self.engine.loop
        address = (server.address, self.target)
        for source in self.engine.snat.candidates(server.address):
            sock = make_upstream_socket(server.address, source)
            dialing[:] = [sock]
            try:
                await connect_socket(loop, sock, address, arm)
            except OSError as err:
                sock.close()
                if is_exhaustion(err):
                    continue
                raise
            except BaseException:
                sock.close()
                raise
            return sock, source
        raise SnatExhausted

    def _move_to(self, server: ServerRuntime) -> None:
        old = self.server
        assert old is not None
        old.closed(self.route.port)
        old.sessions.discard(self)
        server.opened(self.route.port)
        server.sessions.add(self)
        self.server = server

    async def _connect(self, server: ServerRuntime) -> None:
        engine = self.engine
        loop = engine.loop
        timed_out = False
        dialing: list[socket.socket] = []
        # Armed only when a connect has to wait: most nearby servers answer inside
        # connect() itself, and then a timer per connection is pure overhead.
        deadline: asyncio.TimerHandle | None = None
        task: asyncio.Task[None] | None = None

        def expire() -> None:
            # The timeout is the server's: if the kernel finished the handshake, the
            # server answered and only this (busy) process is late to notice.
            nonlocal timed_out, deadline
            if dialing and kernel_connected(dialing[0]):
                deadline = loop.call_later(engine.timeouts.connect, expire)
                return
            timed_out = True
            assert task is not None
            task.cancel()

        def arm() -> None:
            nonlocal deadline, task
            if deadline is None:
                task = asyncio.current_task()  # type: ignore[assignment]
                deadline = loop.call_later(engine.timeouts.connect, expire)

        redispatched = False
        try:
            while True:
                try:
                    sock, source = await self._dial(server, dialing, arm)
                    break
                except OSError as err:
                    # Like HAProxy's `option redispatch`: one more try on another server,
                    # so a server whose port just died costs the client nothing. No
                    # descriptor or memory left is the engine's own fault: no retry.
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
                        raise
                    self._move_to(other)
                    server, redispatched = other, True
            if self.done:  # the client went away while we were connecting
                sock.close()
                return
            if deadline is not None:  # the server answered; what follows is local work
                deadline.cancel()
            self.source = source  # from here on, finish() gives the port back
            engine.snat.take(source)
            transport, _ = await loop.create_connection(lambda: UpstreamSide(self), sock=sock)
            self.upstream = transport  # type: ignore[assignment]
            if self.done:
                transport.abort()
                return
            transport.set_write_buffer_limits(HIGH_WATER, LOW_WATER)
            self._flush_early(transport)
            return
        except SnatExhausted:
            engine.snat.exhausted += 1
            engine.events.emit_coalesced(
                f"snat:{server.address}:{self.target}",
                "snat-exhausted",
                f"no SNAT address has a free port towards {server.address}:{self.target};"
                " client closed",
                server=server.name,
                port=self.route.port,
            )
        except asyncio.CancelledError:
            if not timed_out:
                self.finish(abort=True)
                raise  # the engine is stopping
            engine.events.emit_coalesced(
                f"timeout:{server.name}",
                "connect-failed",
                f"connect to {server.name}:{self.target} timed out after"
                f" {engine.timeouts.connect:g}s (timeouts.connect); client closed",
                server=server.name,
                port=self.route.port,
            )
        except OSError:
            pass  # reported above
        finally:
            if deadline is not None:
                deadline.cancel()
        self.finish(abort=False)

    def hold_early(self, data: bytes) -> None:
        """Keep client bytes until the server connection exists (see module notes)."""
        if self.done:
            return  # no server, or it failed: the client is being closed anyway
        if self.early is None:
            self.early = bytearray(data)
        else:
            self.early += data
        if len(self.early) > HIGH_WATER:
            self.client.pause_reading()

    def _flush_early(self, upstream: asyncio.Transport) -> None:
        early, self.early = self.early, None
        if early:
            upstream.write(early)
        if self.client_eof and upstream.can_write_eof():
            upstream.write_eof()  # the client's FIN came before the server existed
        # A flush that filled the server's buffer paused the client (pause_writing);
        # resume_writing will let it go again once the server has read enough.
        if upstream.get_write_buffer_size() <= HIGH_WATER:
            self.client.resume_reading()

    # -- timers -----------------------------------------------------------------
    def idle_tick(self) -> None:
        """Called by the engine's sweep every idle/IDLE_TICKS seconds."""
        if self.done or self.upstream is None:  # connecting: the connect timeout rules
            return
        if self.touched:
            self.touched = False
            self.quiet = 0
        else:
            self.quiet += 1
            if self.quiet >= IDLE_TICKS:
                self.engine.idle_closed += 1
                self.finish(abort=True)

    def half_closed(self) -> None:
        if self.client_eof and self.upstream_eof:
            self.finish(abort=False)
        elif self.half_timer is None:
            self.half_timer = self.engine.loop.call_later(
                self.engine.timeouts.half_close, self.finish, True
            )

    # -- tear-down --------------------------------------------------------------
    def finish(self, abort: bool) -> None:
        if self.done:
            return
        self.done = True
        self.early = None
        if self.half_timer is not None:
            self.half_timer.cancel()
        for transport in (self.client, self.upstream):
            if transport is None or transport.is_closing():
                continue
            if abort:
                transport.abort()
            else:
                transport.close()
                if transport.get_write_buffer_size():
                    # A peer that never reads must not keep the buffer alive forever.
                    self.engine.loop.call_later(self.engine.timeouts.half_close, transport.abort)
        server = self.server
        if server is not None:
            server.closed(self.route.port)
            server.sessions.discard(self)
            self.engine.snat.give_back(self.source)

    def reset(self) -> None:
        """Abort both sides with a TCP reset, not a FIN: a client whose stream is cut
        (the engine stopping) must not take the end for a complete transfer."""
        for transport in (self.client, self.upstream):
            sock = None if transport is None else transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        self.finish(abort=True)

    def buffered(self) -> int:
        total = self.client.get_write_buffer_size()
        if self.early is not None:
            total += len(self.early)
        if self.upstream is not None:
            total += self.upstream.get_write_buffer_size()
        return total


class ClientSide(asyncio.Protocol):
    __slots__ = ("engine", "route", "s", "ticket")

    def __init__(self, engine: Engine, route: Route, ticket: Ticket) -> None:
        self.engine = engine
        self.route = route
        self.ticket = ticket  # this session's place under maxconn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.s = Session(self.engine, self.route, transport)  # type: ignore[arg-type]
        self.s.start()

    def data_received(self, data: bytes) -> None:
        s = self.s
        s.touched = True
        upstream = s.upstream
        if upstream is not None:
            upstream.write(data)
        else:
            s.hold_early(data)

    def eof_received(self) -> bool:
        s = self.s
        s.client_eof = True
        if s.upstream is not None and s.upstream.can_write_eof():
            s.upstream.write_eof()
        s.half_closed()
        return True

    def pause_writing(self) -> None:
        if self.s.upstream is not None:
            self.s.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.s.upstream is not None and not self.s.done:
            self.s.upstream.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.s.finish(abort=exc is not None)
        self.ticket.release()


class UpstreamSide(asyncio.Protocol):
    __slots__ = ("s",)

    def __init__(self, session: Session) -> None:
        self.s = session

    def data_received(self, data: bytes) -> None:
        s = self.s
        s.touched = True
        s.client.write(data)

    def eof_received(self) -> bool:
        s = self.s
        s.upstream_eof = True
        if s.client.can_write_eof():
            s.client.write_eof()
        s.half_closed()
        return True

    def pause_writing(self) -> None:
        self.s.client.pause_reading()

    def resume_writing(self) -> None:
        if not self.s.done:
            self.s.client.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.s.finish(abort=exc is not None)
