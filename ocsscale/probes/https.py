"""HTTPS ``GET`` with the pool FQDN as Host (and SNI)."""

from __future__ import annotations

from collections.abc import Collection

from ocsscale.probes.evidence import ProbeEvidence
from ocsscale.probes.session import Attempt, ProbeFailed, open_stream
from ocsscale.probes.stream import (
    Connector,
    Deadline,
    Stream,
    close_quietly,
    expected_errors,
    recv_exactly,
    recv_until,
    socket_connector,
)
from ocsscale.probes.tlsclient import TlsOptions

_HEAD_LIMIT = 65536
_BODY_LIMIT = 65536


def https_get_probe(
    host: str,
    port: int,
    presented_name: str,
    *,
    path: str = "/",
    tls: TlsOptions = TlsOptions(),
    connect: Connector = socket_connector,
    timeout: float = 5.0,
    accept_status: Collection[int] | None = None,
    source: str | None = None,
) -> ProbeEvidence:
    """``GET path`` over TLS with ``Host: presented_name``.

    Any well-formed HTTP response means the server is alive, unless
    ``accept_status`` lists the statuses that count (a front end's IIS may well
    answer 401 or 403 to an anonymous ``GET /``). ``server`` is the ``Server:``
    header, or else the first line of the body.
    """
    attempt = Attempt("https", host, port, presented_name, "tls", source)
    deadline = Deadline(timeout)
    stream: Stream | None = None
    try:
        stream = open_stream(attempt, connect, deadline, tls=tls)
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {presented_name}\r\nUser-Agent: ocsscale-probe\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        )
        stream.settimeout(deadline.remaining())
        stream.sendall(request.encode("ascii"))
        status_line, code, headers, body = _read_response(stream, deadline)
        first_line = body.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        server = _header(headers, "Server") or first_line or None
        attempt.found.update(
            status=status_line,
            status_code=code,
            server=server,
            pool_resolved=_header(headers, "X-Pool-Resolved"),
            headers=headers,
        )
        answered_by = f" from {server}" if server else ""
        detail = f"{status_line}{answered_by} on {host}:{port}"
        if accept_status is not None and code not in accept_status:
            wanted = ", ".join(str(s) for s in sorted(accept_status))
            return attempt.evidence(False, f"{detail}; expected {wanted}", "status")
        return attempt.evidence(True, detail)
    except (ProbeFailed, *expected_errors()) as exc:
        return attempt.failed(exc, "HTTPS GET to")
    finally:
        close_quietly(stream)


def _read_response(
    stream: Stream, deadline: Deadline
) -> tuple[str, int, tuple[tuple[str, str], ...], bytes]:
    head, rest = recv_until(stream, deadline, b"\r\n\r\n", _HEAD_LIMIT)
    lines = head.decode("iso-8859-1").split("\r\n")
    status_line = lines[0].strip()
    parts = status_line.split(" ", 2)
    code_ok = len(parts) >= 2 and parts[1].isascii() and parts[1].isdigit()
    if not code_ok or not parts[0].startswith("HTTP/"):
        raise ProbeFailed("protocol", f"not an HTTP response: {status_line[:80]!r}")
    headers = tuple(
        (name.strip(), value.strip())
        for name, sep, value in (line.partition(":") for line in lines[1:] if line)
        if sep
    )
    length_text = _header(headers, "Content-Length")
    if length_text is not None and length_text.isascii() and length_text.isdigit():
        wanted = min(int(length_text), _BODY_LIMIT)
        body = recv_exactly(stream, deadline, wanted, rest)[:wanted]
    else:
        # Chunked or close-delimited: the first body line is all a probe needs.
        body = _read_some(stream, deadline, rest)
        if (_header(headers, "Transfer-Encoding") or "").lower() == "chunked":
            body = body.split(b"\r\n", 1)[1] if b"\r\n" in body else b""
    return status_line, int(parts[1]), headers, body


def _read_some(stream: Stream, deadline: Deadline, data: bytes) -> bytes:
    while len(data) < _BODY_LIMIT and data.count(b"\n") < 2:
        stream.settimeout(deadline.remaining())
        chunk = stream.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None
