"""Accepting clients on plain asyncio without spinning when file descriptors run out.

CPython 3.11's selector loop, on EMFILE in accept(), reports the error, schedules a
retry and then carries on with the same accept loop up to `backlog` times: with our
backlog of 4096 that is thousands of tracebacks and retries per wake-up, and the
engine spins at 100 % CPU. This acceptor does what the loop means to do: on
EMFILE/ENFILE/ENOBUFS/ENOMEM it stops accepting for ACCEPT_PAUSE seconds and logs
one `accept-paused` event per episode; waiting clients stay in the kernel's queue.
uvloop (libuv) already copes and keeps its native, faster accept path.
"""

from __future__ import annotations

import asyncio
import errno
import resource
import socket
from collections.abc import Callable

from .events import EventLog, log

ACCEPT_BATCH = 64
ACCEPT_PAUSE = 0.5
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Acceptor:
    """Accepts on `sock` and hands each client to `factory`'s protocol; `close()`
    stops accepting (established sessions are not touched)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        factory: Callable[[], asyncio.Protocol],
        events: EventLog | None,
        where: str,
    ) -> None:
        self.loop, self.sock, self.factory = loop, sock, factory
        self.events, self.where = events, where
        self.paused: asyncio.TimerHandle | None = None
        self.refused_in_episode = False
        self.closed = False
        loop.add_reader(sock.fileno(), self._ready)

    def _ready(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                break
            except OSError as err:
                if err.errno not in _OUT_OF_RESOURCES:
                    raise
                self._pause(err)
                return
            conn.setblocking(False)
            self.loop.create_task(self._serve(conn))
        self.refused_in_episode = False  # accepting works again

    async def _serve(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(self.factory, conn)
        except OSError:
            conn.close()  # the client went away before its transport existed

    def _pause(self, err: OSError) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.paused = self.loop.call_later(ACCEPT_PAUSE, self._resume)
        if not self.refused_in_episode:
            self.refused_in_episode = True
            soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            reason = (
                f"cannot accept on {self.where}: {err.strerror} (RLIMIT_NOFILE {soft});"
                f" accepting paused, retried every {ACCEPT_PAUSE:g}s until it works"
            )
            if self.events is None:
                log.warning(reason)
            else:
                self.events.emit_coalesced(f"accept:{self.where}", "accept-paused", reason)

    def _resume(self) -> None:
        self.paused = None
        if not self.closed:
            self.loop.add_reader(self.sock.fileno(), self._ready)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.paused is not None:
            self.paused.cancel()
        else:
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
