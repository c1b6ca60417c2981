"""Messages between the master and its workers that never block either event loop.

Length-prefixed JSON over one end of a socketpair each, read and written through
asyncio streams. A multiprocessing Pipe reads and writes synchronously: a worker
busy with thousands of connections (or a message larger than the pipe) could stall
the master's loop, and with it the admin API and the health checks of every server.
Here a slow peer only lets the writer's buffer grow, and the buffer of notices that
can be dropped (events) is capped.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

HEADER = struct.Struct("!I")
MAX_MESSAGE = 64 * 1024 * 1024
# Above this many unsent bytes, droppable notices are counted instead of queued.
SEND_BACKLOG_LIMIT = 1024 * 1024


class Channel:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.dropped = 0

    @classmethod
    async def open(cls, sock: socket.socket) -> Channel:
        reader, writer = await asyncio.open_connection(sock=sock)
        return cls(reader, writer)

    def send(self, msg: dict[str, Any], droppable: bool = False) -> bool:
        """Queue `msg` (never blocks); False if the peer is gone or a droppable
        message met a full backlog."""
        if self.writer.is_closing():
            return False
        if droppable and self.writer.transport.get_write_buffer_size() > SEND_BACKLOG_LIMIT:
            self.dropped += 1
            return False
        body = json.dumps(msg, separators=(",", ":"), default=str).encode()
        self.writer.write(HEADER.pack(len(body)) + body)
        return True

    async def recv(self) -> dict[str, Any] | None:
        """The next message, or None once the peer has gone away."""
        try:
            (length,) = HEADER.unpack(await self.reader.readexactly(HEADER.size))
            if length > MAX_MESSAGE:
                raise ValueError(f"message of {length} bytes from the peer process")
            body = await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        value = json.loads(body)
        if not isinstance(value, dict):
            raise ValueError("a message from the peer process is not a JSON object")
        return value

    def close(self) -> None:
        self.writer.close()
