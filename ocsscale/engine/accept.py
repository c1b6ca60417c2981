"""Accepting clients: stop at `maxconn`, and never spin or close a client when
file descriptors run out.

The engine accepts itself on both event loops rather than through the loop's
server: an accept loop that cannot be paused can only keep up with a limit by
closing clients (libuv's answer to EMFILE is to accept and close at once), and
CPython 3.11's selector loop, on EMFILE, retries up to `backlog` times per
wake-up and spins at 100 % CPU. Here, when a gate (maxconn.py) is full, the
acceptor stops reading the listening socket until a connection ends; clients wait
in the kernel's listen queue, as with HAProxy's maxconn. On EMFILE/ENFILE/ENOBUFS/
ENOMEM it stops for ACCEPT_PAUSE seconds. Each episode gives one event.
"""

from __future__ import annotations

import asyncio
import errno
import resource
import socket
from collections.abc import Callable

from .events import EventLog, log
from .fastpath import drive, wrap_accepted
from .maxconn import Gate, Ticket

ACCEPT_BATCH = 64
ACCEPT_PAUSE = 0.5
OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Acceptor:
    """Accepts on `sock` while `gate` has room and hands each client to the protocol
    `factory(ticket)` makes; the protocol releases the ticket when the connection is
    gone. `close()` stops accepting (established sessions are not touched)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        factory: Callable[[Ticket], asyncio.Protocol],
        events: EventLog | None,
        where: str,
        gate: Gate,
    ) -> None:
        self.loop, self.sock, self.factory = loop, sock, factory
        self.events, self.where, self.gate = events, where, gate
        self.family = sock.family
        self.paused: asyncio.TimerHandle | None = None
        self.reading = False
        self.refused_in_episode = False
        self.limited_in_episode = False
        self.closed = False
        self._read()

    def _read(self) -> None:
        if not self.reading and not self.closed and self.paused is None:
            self.reading = True
            self.loop.add_reader(self.sock.fileno(), self._ready)

    def _stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.loop.remove_reader(self.sock.fileno())

    def _ready(self) -> None:
        for _ in range(ACCEPT_BATCH):
            full = self.gate.full_gate()
            if full is not None:
                self._wait_for(full)
                return
            try:
                fd, _addr = self.sock._accept()  # the socket object is made below, cheaper
            except (BlockingIOError, InterruptedError):
                # The queue is empty: nobody waits, so an episode is over.
                self.refused_in_episode = self.limited_in_episode = False
                return
            except ConnectionAbortedError:
                continue
            except OSError as err:
                if err.errno not in OUT_OF_RESOURCES:
                    raise
                self._pause(err)
                return
            self._serve(wrap_accepted(self.family, fd), self.gate.take())
        self.refused_in_episode = False  # accepting works again

    def _serve(self, conn: socket.socket, ticket: Ticket) -> None:
        protocol = self.factory(ticket)

        def failed(exc: Exception) -> None:
            conn.close()  # the client went away before its transport existed
            ticket.release()
            if not isinstance(exc, OSError):
                log.error(f"client transport not created on {self.where}: {exc!r}")

        # The protocol gets the transport in connection_made; the coroutine only
        # waits for that, so it needs no Task (see fastpath.drive).
        drive(self.loop, self.loop.connect_accepted_socket(lambda: protocol, conn), failed)

    def _wait_for(self, gate: Gate) -> None:
        """Stop at a full gate until one of its connections ends."""
        self._stop_reading()
        gate.waiters.append(self._read)
        if not self.limited_in_episode:
            self.limited_in_episode = True
            self._report(
                "maxconn-reached",
                f"{self.where}: {gate.name} maxconn {gate.limit} reached; accepting paused,"
                " new clients wait in the listen queue until a session ends",
            )

    def _pause(self, err: OSError) -> None:
        self._stop_reading()
        self.paused = self.loop.call_later(ACCEPT_PAUSE, self._resume)
        if not self.refused_in_episode:
            self.refused_in_episode = True
            soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            self._report(
                "accept-paused",
                f"cannot accept on {self.where}: {err.strerror} (RLIMIT_NOFILE {soft});"
                f" accepting paused, retried every {ACCEPT_PAUSE:g}s until it works",
            )

    def _report(self, kind: str, reason: str) -> None:
        if self.events is None:
            log.warning(reason)
        else:
            self.events.emit_coalesced(f"{kind}:{self.where}", kind, reason)

    def _resume(self) -> None:
        self.paused = None
        self._read()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.paused is not None:
            self.paused.cancel()
        self._stop_reading()
        self.sock.close()
