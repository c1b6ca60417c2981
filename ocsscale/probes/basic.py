"""The TCP connect probe and the TLS handshake probe."""

from __future__ import annotations

import contextlib

from ocsscale.probes.evidence import ProbeEvidence
from ocsscale.probes.session import Attempt, ProbeFailed, open_stream
from ocsscale.probes.stream import (
    Connector,
    Deadline,
    Stream,
    close_quietly,
    expected_errors,
    socket_connector,
)
from ocsscale.probes.tlsclient import TlsOptions

_BANNER_LIMIT = 1024


def tcp_probe(
    host: str,
    port: int,
    *,
    presented_name: str | None = None,
    connect: Connector = socket_connector,
    timeout: float = 5.0,
    banner_wait: float = 0.0,
    source: str | None = None,
) -> ProbeEvidence:
    """Open a TCP connection to ``host:port``; with ``banner_wait`` > 0, also read a banner.

    A banner is one line the server sends unprompted; ``server=NAME`` and
    ``pool-resolved=ADDRS`` tokens in it fill ``server`` and ``pool_resolved``. No
    banner within ``banner_wait`` seconds is not a failure (most ports send none).
    """
    attempt = Attempt("tcp", host, port, presented_name, "tcp", source)
    deadline = Deadline(timeout)
    stream: Stream | None = None
    try:
        stream = open_stream(attempt, connect, deadline, tls=None)
        detail = f"connected to {host}:{port}"
        if banner_wait > 0:
            banner = _read_banner(stream, min(banner_wait, deadline.remaining()))
            if banner:
                attempt.found.update(status=banner, **parse_banner(banner))
                detail += f", banner: {banner}"
            else:
                detail += ", no banner"
        return attempt.evidence(True, detail)
    except (ProbeFailed, *expected_errors()) as exc:
        return attempt.failed(exc, "reading the banner of")
    finally:
        close_quietly(stream)


def tls_probe(
    host: str,
    port: int,
    presented_name: str | None,
    *,
    tls: TlsOptions = TlsOptions(),  # frozen, so a shared default is safe
    connect: Connector = socket_connector,
    timeout: float = 5.0,
    source: str | None = None,
) -> ProbeEvidence:
    """Shake hands with TLS, presenting ``presented_name`` as SNI, and read the certificate back.

    With ``tls.verify`` the chain must verify and the certificate must name the
    presented name (see :class:`TlsOptions`); with ``verify=False`` the handshake
    alone decides and the certificate is only recorded, for the certificate rules.
    """
    attempt = Attempt("tls", host, port, presented_name, "tls", source)
    deadline = Deadline(timeout)
    stream: Stream | None = None
    try:
        stream = open_stream(attempt, connect, deadline, tls=tls)
        cert = attempt.found.get("certificate")
        names = cert.names() if cert else "no certificate"
        checked = "certificate verified" if tls.verify else "certificate NOT verified"
        # the negotiated version and cipher follow (Attempt.tls_note)
        return attempt.evidence(True, f"handshake with {host}:{port}, {checked}; {names}")
    except (ProbeFailed, *expected_errors()) as exc:
        return attempt.failed(exc, "TLS with")
    finally:
        close_quietly(stream)


def tls_hold(
    host: str,
    port: int,
    presented_name: str | None,
    *,
    tls: TlsOptions = TlsOptions(),
    connect: Connector = socket_connector,
    timeout: float = 5.0,
    source: str | None = None,
) -> tuple[ProbeEvidence, Stream | None]:
    """`tls_probe` that keeps the connection: its evidence and the open stream (None
    when it failed). Held connections are what least-connections balancing counts;
    the caller closes the stream."""
    attempt = Attempt("tls", host, port, presented_name, "tls", source)
    try:
        stream = open_stream(attempt, connect, Deadline(timeout), tls=tls)
    except (ProbeFailed, *expected_errors()) as exc:
        return attempt.failed(exc, "TLS with"), None
    cert = attempt.found.get("certificate")
    names = cert.names() if cert else "no certificate"
    return attempt.evidence(True, f"held open; {names}"), stream


def parse_banner(line: str) -> dict[str, str]:
    """``server=``, ``pool-resolved=`` and ``peer=`` tokens of a banner line, as evidence."""
    found: dict[str, str] = {}
    for token in line.split():
        key, sep, value = token.partition("=")
        if not sep or not value:
            continue
        if key == "server":
            found["server"] = value
        elif key == "pool-resolved":
            found["pool_resolved"] = value
        elif key == "peer":
            found["seen_source"] = value
    return found


def _read_banner(stream: Stream, wait: float) -> str | None:
    data = b""
    read_deadline = Deadline(wait)
    with contextlib.suppress(TimeoutError):
        while b"\n" not in data and len(data) < _BANNER_LIMIT:
            stream.settimeout(read_deadline.remaining())
            chunk = stream.recv(_BANNER_LIMIT)
            if not chunk:
                break
            data += chunk
    if not data:
        return None
    return data.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
