"""The data path: one Session per client connection (it is the client side's
Protocol), and a thin Protocol for the server side.

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

Per-connection cost (see bench/README.md, "New connections: where the time
goes"): the server connection is made from callbacks, not a Task (dial.py). The
half-close timeout is an exact deadline in the engine's shared `Deadlines` (one
loop timer for all).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import TYPE_CHECKING

from .dial import Dialing, ServerConnect

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


class Session(ServerConnect, asyncio.Protocol):
    """One client connection and its server connection; the client side's Protocol."""

    __slots__ = (
        "engine",
        "route",
        "ticket",
        "server",
        "source",
        "client",
        "upstream",
        "touched",
        "quiet",
        "client_eof",
        "upstream_eof",
        "done",
        "target",
        "early",
        "dialing",
    )

    def __init__(self, engine: Engine, route: Route, ticket: Ticket) -> None:
        self.engine = engine
        self.route = route
        self.ticket = ticket  # this session's place under maxconn
        self.upstream: asyncio.Transport | None = None
        self.server: ServerRuntime | None = None
        self.source: str | None = None
        self.touched = False
        self.quiet = 0
        self.client_eof = False
        self.upstream_eof = False
        self.done = False
        self.target = route.target
        # Client bytes that arrived before the server connection existed.
        self.early: bytearray | None = None
        self.dialing: Dialing | None = None

    # -- set-up -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.client: asyncio.Transport = transport  # type: ignore[assignment]
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
        self._dial(server, False, None)

    def _upstream_side(self) -> UpstreamSide:
        return UpstreamSide(self)

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

    # -- the client side's Protocol -------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.touched = True
        upstream = self.upstream
        if upstream is not None:
            upstream.write(data)
        else:
            self.hold_early(data)

    def eof_received(self) -> bool:
        self.client_eof = True
        if self.upstream_eof:
            self.finish(abort=False)  # both sides done; close() sends the server its FIN
            return True
        upstream = self.upstream
        if upstream is not None and upstream.can_write_eof():
            upstream.write_eof()
        self.half_closed()
        return True

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and not self.done:
            self.upstream.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.finish(abort=exc is not None)
        self.ticket.release()

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
        """One side sent FIN (forwarded to the other): the session ends
        `timeouts.half_close` from now unless the other side closes too. (The
        second FIN is not forwarded with shutdown(): finish() closes both sides,
        and close() sends it, one system call less per connection.)"""
        self.engine.half_close.add(self, self.engine.timeouts.half_close)

    # -- tear-down --------------------------------------------------------------
    def finish(self, abort: bool) -> None:
        if self.done:
            return
        self.done = True
        self.early = None
        engine = self.engine
        if self.dialing is not None:
            self._stop_dialing()
        if self.client_eof or self.upstream_eof:
            engine.half_close.cancel(self)
        for transport in (self.client, self.upstream):
            if transport is None or transport.is_closing():
                continue
            if abort:
                transport.abort()
            else:
                transport.close()
                if transport.get_write_buffer_size():
                    # A peer that never reads must not keep the buffer alive forever.
                    engine.loop.call_later(engine.timeouts.half_close, transport.abort)
        server = self.server
        if server is not None:
            server.closed(self.route.port)
            server.sessions.discard(self)
            engine.snat.give_back(self.source)

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


def expire_half_closed(session: Session) -> None:
    """The half-close deadline passed: the other side never closed."""
    session.finish(abort=True)


class UpstreamSide(asyncio.Protocol):
    __slots__ = ("s",)

    def __init__(self, session: Session) -> None:
        self.s = session

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        s = self.s
        s.upstream = transport  # type: ignore[assignment]
        if s.done:  # the client went away while the transport was being made
            transport.abort()  # type: ignore[attr-defined]
            return
        transport.set_write_buffer_limits(HIGH_WATER, LOW_WATER)  # type: ignore[attr-defined]
        s._flush_early(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        s = self.s
        s.touched = True
        s.client.write(data)

    def eof_received(self) -> bool:
        s = self.s
        s.upstream_eof = True
        if s.client_eof:
            s.finish(abort=False)  # both sides done; close() sends the client its FIN
            return True
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
