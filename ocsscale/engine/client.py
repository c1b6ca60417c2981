"""A small blocking client for the admin socket (used by the CLI and by tests)."""

from __future__ import annotations

import json
import socket
from typing import Any


class AdminClientError(Exception):
    """The admin socket could not be reached or answered with an error."""


def request(path: str, method: str, target: str, timeout: float = 30.0) -> tuple[int, bytes]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except FileNotFoundError:
            raise AdminClientError(
                f"no admin socket at {path}: is the engine running (ocsscale lb serve)?"
            ) from None
        except OSError as err:
            raise AdminClientError(f"cannot reach admin socket {path}: {err.strerror}") from None
        sock.sendall(
            f"{method} {target} HTTP/1.1\r\nHost: engine\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    except TimeoutError:
        raise AdminClientError(f"admin socket {path} did not answer in {timeout}s") from None
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
    """JSON request; raises AdminClientError carrying the engine's message on errors."""
    status, body = request(path, method, target, timeout)
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        raise AdminClientError(f"admin socket {path} answered non-JSON") from None
    if status != 200:
        raise AdminClientError(data.get("error", f"HTTP {status}"))
    return data
