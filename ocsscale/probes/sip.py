"""SIP OPTIONS "ping" over TLS or TCP (RFC 3261, section 11).

Any final response (status >= 200) means a SIP server is alive and answering;
provisional responses (1xx) are skipped. Over a connection-oriented transport
the response comes back on the same connection, so the Via ``sent-by`` does not
need to be reachable: the local socket address is used when the stream knows
it, ``probe.invalid`` otherwise (through an SSH channel).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from ocsscale.probes.evidence import ProbeEvidence
from ocsscale.probes.session import Attempt, ProbeFailed, open_stream
from ocsscale.probes.stream import (
    Connector,
    Deadline,
    Stream,
    close_quietly,
    expected_errors,
    local_address,
    recv_exactly,
    recv_until,
    socket_connector,
)
from ocsscale.probes.tlsclient import TlsOptions

SipTransport = Literal["tls", "tcp"]

_MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 8.1.1.7: marks an RFC 3261-compliant branch
_HEAD_LIMIT = 65536
_USER_AGENT = "ocsscale-probe"


@dataclass(frozen=True)
class SipResponse:
    status_line: str
    status_code: int
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None


def sip_options_probe(
    host: str,
    port: int,
    presented_name: str,
    *,
    transport: SipTransport = "tls",
    tls: TlsOptions = TlsOptions(),
    connect: Connector = socket_connector,
    timeout: float = 5.0,
    source: str | None = None,
) -> ProbeEvidence:
    """Send ``OPTIONS sip:<presented_name>`` to ``host:port`` and wait for a final answer."""
    attempt = Attempt("sip", host, port, presented_name, transport, source)
    deadline = Deadline(timeout)
    stream: Stream | None = None
    try:
        stream = open_stream(attempt, connect, deadline, tls=tls if transport == "tls" else None)
        request, branch = build_options_request(presented_name, transport, local_address(stream))
        stream.settimeout(deadline.remaining())
        stream.sendall(request)
        response = read_final_response(stream, deadline, branch)
        server = response.header("Server")
        attempt.found.update(
            status=response.status_line,
            status_code=response.status_code,
            server=server,
            pool_resolved=response.header("X-Pool-Resolved"),
            headers=response.headers,
        )
        answered_by = f" from {server}" if server else ""
        return attempt.evidence(True, f"{response.status_line}{answered_by} on {host}:{port}")
    except (ProbeFailed, *expected_errors()) as exc:
        return attempt.failed(exc, "SIP OPTIONS to")
    finally:
        close_quietly(stream)


def build_options_request(
    target: str, transport: SipTransport, local: tuple[str, int] | None
) -> tuple[bytes, str]:
    """An RFC 3261 OPTIONS request for ``target``; returns (bytes, Via branch)."""
    branch = _MAGIC_COOKIE + secrets.token_hex(8)
    sent_by = _sent_by(local)
    upper = transport.upper()
    lines = [
        f"OPTIONS sip:{target};transport={transport} SIP/2.0",
        f"Via: SIP/2.0/{upper} {sent_by};branch={branch};rport",
        "Max-Forwards: 70",
        f"To: <sip:{target}>",
        f"From: <sip:{_USER_AGENT}@{target}>;tag={secrets.token_hex(6)}",
        f"Call-ID: {secrets.token_hex(12)}@{_USER_AGENT}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:{_USER_AGENT}@{sent_by};transport={transport}>",
        "Accept: application/sdp",
        f"User-Agent: {_USER_AGENT}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii"), branch


def read_final_response(stream: Stream, deadline: Deadline, branch: str) -> SipResponse:
    """Read responses until a final one (>= 200) for our branch arrives."""
    leftover = b""
    while True:
        head, leftover = recv_until(stream, deadline, b"\r\n\r\n", _HEAD_LIMIT, leftover)
        response = parse_response_head(head)
        length = _content_length(response)
        body_and_rest = recv_exactly(stream, deadline, length, leftover)
        leftover = body_and_rest[length:]
        via = response.header("Via") or response.header("v") or ""
        if branch not in via:
            raise ProbeFailed(
                "protocol", f"answer is for another request (Via: {via or 'missing'})"
            )
        if response.status_code >= 200:
            return response


def parse_response_head(head: bytes) -> SipResponse:
    status_line, headers = parse_message_head(head)
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not (parts[1].isascii() and parts[1].isdigit()):
        raise ProbeFailed("protocol", f"not a SIP response: {status_line[:80]!r}")
    return SipResponse(status_line, int(parts[1]), tuple(headers))


def parse_message_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    """A message's start line and its headers, in order, folded lines joined.

    SIP responses here; SIP and HTTP requests in the lab's pool-member stand-in.
    Lines without a colon are left out rather than refused."""
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and headers:  # folded continuation of the previous header
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return lines[0].strip(), headers


def _content_length(response: SipResponse) -> int:
    raw = response.header("Content-Length") or response.header("l") or "0"
    try:
        length = int(raw)
    except ValueError as exc:
        raise ProbeFailed("protocol", f"bad Content-Length {raw!r}") from exc
    if length < 0 or length > _HEAD_LIMIT:
        raise ProbeFailed("protocol", f"implausible Content-Length {length}")
    return length


def _sent_by(local: tuple[str, int] | None) -> str:
    if local is None:
        return "probe.invalid"
    address, port = local
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
