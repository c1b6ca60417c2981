"""A small blocking client for the admin socket (used by the CLI and by tests).

The standard library and ocsscale.errors (itself the standard library alone):
`ocsscale lb api` (api_cli.py) imports nothing else.
Bounded on every side: the answer's size (MAX_ANSWER), the whole exchange's time
(`timeout`), and the wait for a busy socket (BUSY_WAIT)."""

from __future__ import annotations

import errno
import json
import re
import socket
import time
from typing import Any

from ..errors import OcsscaleError

# The engine's largest answers are far below this: GET /status of a 64-server farm
# with 4 VIPs and 10 ports is 24 KB, its full event ring (2,000 events) under 0.5 MB.
# A larger answer is not the engine's: it is refused, and not read further.
MAX_ANSWER = 8 * 1024 * 1024
# A socket whose accept queue is full (EAGAIN) or that nothing accepts on yet
# (ECONNREFUSED: an engine between bind and listen) is retried this long.
BUSY_WAIT = 3.0
_FIRST_DELAY = 0.05
_MAX_DELAY = 0.5
# Characters of an engine's error message shown: a failed reload names every problem
# of the farm file, one a line.
_MAX_MESSAGE = 10_000


# A segment of an admin API path: a word or a server name (farm.py's rule).
_SEGMENT = re.compile(r"[A-Za-z0-9_.-]+")


def path_segments(path: str) -> list[str] | None:
    """The segments of an admin API path in its one spelling (`/servers/fe1/drain`),
    or None: the client and the engine both refuse `//status//`, `/status/`, `/./x`
    and the like rather than guess what they mean."""
    head, *segments = path.split("/")
    if head or not segments:
        return None
    for segment in segments:
        if not _SEGMENT.fullmatch(segment) or segment in (".", ".."):
            return None
    return segments


class AdminClientError(OcsscaleError):
    """The admin socket could not be reached or answered with an error (exit 1)."""


def _connect(path: str, deadline: float) -> socket.socket:
    """A socket connected to `path`, waiting (bounded) while it is busy."""
    start = time.monotonic()
    give_up = min(deadline, start + BUSY_WAIT)
    delay = _FIRST_DELAY
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            sock.connect(path)
            return sock
        except FileNotFoundError:
            sock.close()
            raise AdminClientError(
                f"no admin socket at {path}: is the engine running (ocsscale lb serve)?"
            ) from None
        except TimeoutError:
            sock.close()
            raise
        except OSError as err:
            sock.close()
            if err.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNREFUSED):
                raise AdminClientError(
                    f"cannot reach admin socket {path}: {err.strerror}"
                ) from None
            if time.monotonic() + delay > give_up:
                waited = time.monotonic() - start
                raise AdminClientError(_busy_message(path, err.errno, waited)) from None
        time.sleep(delay)
        delay = min(delay * 2, _MAX_DELAY)


def _busy_message(path: str, code: int | None, waited: float) -> str:
    if code == errno.ECONNREFUSED:
        return (
            f"nothing accepts connections on admin socket {path} (refused for {waited:.1f}s):"
            " is the engine running (ocsscale lb serve)?"
        )
    return (
        f"admin socket {path} is busy: the engine did not take the connection within"
        f" {waited:.1f}s (its queue of admin requests is full)"
    )


def request(
    path: str, method: str, target: str, timeout: float = 30.0, limit: int = MAX_ANSWER
) -> tuple[int, bytes]:
    """Status and body of one request; AdminClientError when it cannot be had
    within `timeout` seconds in all, or the answer is larger than `limit` bytes."""
    deadline = time.monotonic() + timeout
    try:
        sock = _connect(path, deadline)
    except TimeoutError:
        raise AdminClientError(f"admin socket {path} did not answer in {timeout:g}s") from None
    chunks = []
    size = 0
    try:
        sock.sendall(
            f"{method} {target} HTTP/1.1\r\nHost: engine\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        while True:
            # the whole answer within the deadline, not each piece of it
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            data = sock.recv(65536)
            if not data:
                break
            size += len(data)
            if size > limit:
                raise AdminClientError(
                    f"admin socket {path} gave an answer larger than {_size(limit)}: "
                    "not the engine's, not read further"
                )
            chunks.append(data)
    except TimeoutError:
        raise AdminClientError(f"admin socket {path} did not answer in {timeout:g}s") from None
    except OSError as err:
        raise AdminClientError(f"admin socket {path} failed: {err.strerror}") from None
    finally:
        sock.close()
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise AdminClientError(f"admin socket {path} gave a malformed answer") from None
    return status, body


def call(path: str, method: str, target: str, timeout: float = 30.0) -> Any:
    """JSON request; raises AdminClientError carrying the engine's message on errors.
    Every answer of the admin API is a JSON object: anything else is an error."""
    status, body = request(path, method, target, timeout)
    try:
        data = json.loads(body) if body else {}
    except (ValueError, RecursionError):  # RecursionError: [[[[... nested too deep
        raise AdminClientError(f"admin socket {path} answered non-JSON") from None
    if status != 200:
        message = data.get("error") if isinstance(data, dict) else None
        if not isinstance(message, str) or not message.strip():
            raise AdminClientError(f"admin socket {path} answered HTTP {status}")
        raise AdminClientError(_printable(message))
    if not isinstance(data, dict):
        raise AdminClientError(f"admin socket {path} answered JSON that is not an object")
    return data


def _printable(text: str) -> str:
    """The engine's message as printable lines (no terminal escapes)."""
    cleaned = "".join(c if c.isprintable() or c == "\n" else " " for c in text[:_MAX_MESSAGE])
    return cleaned[:_MAX_MESSAGE] + ("..." if len(text) > _MAX_MESSAGE else "")


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n} bytes"
