"""Admin API: HTTP/1.1 with JSON bodies on a Unix socket (one request per connection).

GET  /status                      farm, listeners, servers, counters
GET  /events?since=SEQ            events newer than SEQ
GET  /metrics                     Prometheus text format
POST /servers/NAME/ready|drain|maint[?shutdown=1]
POST /servers/NAME/shutdown       close the server's established sessions
POST /reload                      re-read the farm file
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from .accept import Acceptor
from .client import path_segments
from .events import log
from .maxconn import ADMIN_MAXCONN, Gate, Ticket

MAX_REQUEST = 64 * 1024
# Head and body must arrive within this time: a client that declares a body and
# never sends it would otherwise hold its connection (and a descriptor) forever.
REQUEST_TIMEOUT = 5.0


class Controller(Protocol):
    async def status(self) -> dict[str, Any]: ...
    def events_since(self, seq: int) -> list[dict[str, Any]]: ...
    async def metrics(self) -> str: ...
    async def set_admin(self, name: str, state: str, shutdown: bool) -> dict[str, Any]: ...
    async def shutdown_sessions(self, name: str) -> dict[str, Any]: ...
    async def reload(self) -> dict[str, Any]: ...


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    500: "Internal Server Error",
}


class AdminServer:
    def __init__(self, path: str, controller: Controller) -> None:
        self.path = path
        self.controller = controller
        self._server: Acceptor | None = None

    async def start(self) -> None:
        p = Path(self.path)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists() or p.is_symlink():
            if not stat.S_ISSOCK(p.lstat().st_mode):
                raise OSError(f"{p} exists and is not a socket; refusing to replace it")
            if _socket_answers(str(p)):
                raise OSError(f"{p} is in use by another running engine")
            p.unlink()
        old_umask = os.umask(0o077)  # admin access is root (or the owner) only
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(p))
            sock.listen(64)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        finally:
            os.umask(old_umask)
        # At most ADMIN_MAXCONN requests at once (their descriptors are reserved,
        # see maxconn.py); more wait in the socket's queue.
        gate = Gate("admin", ADMIN_MAXCONN)
        loop = asyncio.get_running_loop()
        self._server = Acceptor(loop, sock, self._protocol, None, f"admin {p}", gate)

    def _protocol(self, ticket: Ticket) -> asyncio.Protocol:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await self._handle(reader, writer)
            finally:
                ticket.release()

        return asyncio.StreamReaderProtocol(asyncio.StreamReader(MAX_REQUEST), handle)

    async def stop(self) -> None:
        if self._server is None:
            return  # never started: the path may belong to another engine
        self._server.close()
        self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, ctype, body = await self._dispatch(reader)
        except ApiError as err:
            status, ctype, body = err.status, "application/json", _json({"error": str(err)})
        except Exception as err:  # the API must answer, whatever broke
            log.exception("admin request failed")
            status, ctype, body = 500, "application/json", _json({"error": repr(err)})
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        try:
            writer.write(head.encode() + body)
            async with asyncio.timeout(REQUEST_TIMEOUT):
                await writer.drain()
        except (ConnectionError, TimeoutError):
            writer.transport.abort()  # a client that does not read its answer
        writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[str, str]:
        """Method and target of one request, its body (if any) read and ignored."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            raise ApiError(400, "malformed request line") from None
        lengths = {
            value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
            if name.strip().lower() == "content-length"
        }
        if len(lengths) > 1:
            raise ApiError(400, "conflicting Content-Length headers")
        length = lengths.pop() if lengths else "0"
        # A decimal number and nothing else (int() would also take "+1", " 1", "1_0").
        if not length.isascii() or not length.isdigit() or len(length) > 9:
            raise ApiError(400, "Content-Length must be a number of bytes")
        if int(length) > MAX_REQUEST:
            raise ApiError(400, "request body too large")
        if int(length):
            await reader.readexactly(int(length))  # bodies are not used; read and ignore
        return method, target

    async def _dispatch(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                method, target = await self._read_request(reader)
        except TimeoutError:
            raise ApiError(408, f"request not complete within {REQUEST_TIMEOUT:g}s") from None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            raise ApiError(400, "incomplete or oversized request") from None
        path, _, raw_query = target.partition("?")
        parts = path_segments(path)
        if parts is None:
            # One spelling per endpoint: `//status//` or `/servers/x/../../reload` is
            # refused, not read as something it might mean (and absolute-form
            # `http://host/status` too: nothing here is a proxy).
            raise ApiError(400, "malformed request target: an admin API path such as /status")
        query = parse_qs(raw_query)
        c = self.controller
        if method == "GET" and parts == ["status"]:
            return 200, "application/json", _json(await c.status())
        if method == "GET" and parts == ["events"]:
            since = _number(query.get("since", ["0"])[0] or "0", "since")
            return 200, "application/json", _json({"events": c.events_since(since)})
        if method == "GET" and parts == ["metrics"]:
            return 200, "text/plain; version=0.0.4", (await c.metrics()).encode()
        if len(parts) == 3 and parts[0] == "servers":
            if method != "POST":
                raise ApiError(405, "use POST to change a server")
            name, action = parts[1], parts[2]
            shutdown = query.get("shutdown", ["0"])[0] in ("1", "true", "yes")
            if action in ("ready", "drain", "maint"):
                return 200, "application/json", _json(await c.set_admin(name, action, shutdown))
            if action == "shutdown":
                return 200, "application/json", _json(await c.shutdown_sessions(name))
            raise ApiError(404, f"unknown server action {action!r}")
        if parts == ["reload"]:
            if method != "POST":
                raise ApiError(405, "use POST /reload")
            return 200, "application/json", _json(await c.reload())
        raise ApiError(404, f"no such endpoint: {method} {path}")


def _number(text: str, name: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ApiError(400, f"{name} must be a whole number")
    return int(text)


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=1, default=str).encode() + b"\n"


def _socket_answers(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()
