"""What the pool-member stand-in says on each kind of port: SIP, HTTP, or a banner.

Every answer names the server and what the pool FQDN resolved to when the
service started, so a probe can tell which front end answered and whether it
was restarted after a hosts-file change.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from ocsscale.probes.sip import parse_message_head

_HEAD_LIMIT = 65536
_HTTP_HEAD_TIMEOUT = 30.0
# RFC 3261 7.3.3 compact forms of the headers a response must copy back.
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "l": "content-length"}
_COPIED = ("via", "from", "to", "call-id", "cseq")
_CANONICAL = {"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}


@dataclass(frozen=True)
class Identity:
    """Who is answering: the server's name and its view of the pool FQDN."""

    name: str
    pool_resolved: str


async def serve_sip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, me: Identity
) -> None:
    """Answer SIP requests on one connection until the client closes it."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return  # the client closed: the normal end of a connection
        except asyncio.LimitOverrunError:
            writer.write(sip_response(400, "Bad Request", [], me))
            return
        request_line, headers = parse_message_head(head)
        length = _content_length(headers)
        if length is None:
            writer.write(sip_response(400, "Bad Request", headers, me))
            return
        if length:
            try:
                await reader.readexactly(length)  # a body OPTIONS ignores
            except asyncio.IncompleteReadError:
                return
        parts = request_line.split(" ")
        if len(parts) != 3 or parts[2] != "SIP/2.0":
            writer.write(sip_response(400, "Bad Request", headers, me))
            return
        method = parts[0]
        if method == "ACK":
            continue  # RFC 3261 17.2.1: an ACK is never answered
        if method == "OPTIONS":
            writer.write(sip_response(200, "OK", headers, me))
        else:
            writer.write(sip_response(405, "Method Not Allowed", headers, me))
        await writer.drain()


def sip_response(
    code: int, reason: str, request_headers: list[tuple[str, str]], me: Identity
) -> bytes:
    """A response that copies Via/From/To/Call-ID/CSeq back, as RFC 3261 8.2.6.2 asks."""
    lines = [f"SIP/2.0 {code} {reason}"]
    for name, value in request_headers:
        key = _COMPACT.get(name.lower(), name.lower())
        if key not in _COPIED:
            continue
        if key == "to" and ";tag=" not in value:
            value = f"{value};tag={secrets.token_hex(6)}"
        lines.append(f"{_CANONICAL[key]}: {value}")
    lines += [
        f"Server: {me.name}",
        f"X-Pool-Resolved: {me.pool_resolved}",
        "Allow: OPTIONS",
        "Accept: application/sdp",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


async def serve_http(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, me: Identity, port: int
) -> None:
    """Answer one HTTP request (``Connection: close``); ``GET /`` names the server."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HTTP_HEAD_TIMEOUT)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        return
    request_line, headers = parse_message_head(head)
    parts = request_line.split(" ")
    host = next((value for name, value in headers if name.lower() == "host"), "")
    body = f"{me.name}\npool-resolved={me.pool_resolved}\nport={port}\nhost={host}\n"
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        status = "400 Bad Request"
    elif parts[0] not in ("GET", "HEAD"):
        status = "405 Method Not Allowed"
    elif parts[1] != "/":
        status = "404 Not Found"
    else:
        status = "200 OK"
    payload = body.encode("utf-8")
    response = (
        f"HTTP/1.1 {status}\r\nServer: {me.name}\r\nX-Pool-Resolved: {me.pool_resolved}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    writer.write(response if parts[0] == "HEAD" else response + payload)
    await writer.drain()


async def serve_banner(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, me: Identity, port: int
) -> None:
    """Send one banner line, then echo whatever comes until the client closes.

    The echo lets load-balancer tests see data flow both ways through a proxy.
    """
    peer = writer.get_extra_info("peername")
    writer.write(banner_line(me, port, peer[0] if peer else "unknown"))
    await writer.drain()
    while True:
        data = await reader.read(65536)
        if not data:
            return
        writer.write(data)
        await writer.drain()


def banner_line(me: Identity, port: int, peer: str) -> bytes:
    # `peer` is the source address this server saw: the FE gate compares it with
    # the caller's own address to prove there is no NAT between front ends.
    return (
        f"ocsscale-poolmember server={me.name} port={port} pool-resolved={me.pool_resolved}"
        f" peer={peer}\r\n"
    ).encode()


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if _COMPACT.get(name.lower(), name.lower()) == "content-length":
            digits = value.isascii() and value.isdigit()  # "²" is a digit to isdigit() alone
            return int(value) if digits and int(value) <= _HEAD_LIMIT else None
    return 0  # RFC 3261 20.14 requires it on streams, but be lenient for probes
