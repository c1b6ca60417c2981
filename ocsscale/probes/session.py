"""What every probe does first: connect, maybe TLS, and turn errors into evidence.

Probes raise :class:`ProbeFailed` internally for anything that stops them; the
public probe functions catch it (and the connector's expected errors) and
return ``ok=False`` evidence, so no expected failure ever escapes as an exception.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from ocsscale.probes.evidence import CertSummary, Failure, ProbeEvidence, ProbeKind
from ocsscale.probes.stream import (
    Connector,
    Deadline,
    Stream,
    describe_ssh_error,
    expected_errors,
    peer_address,
)
from ocsscale.probes.tls3des import (
    CIPHER_3DES,
    Legacy3desError,
    Legacy3desStream,
    openssl_has_3des,
    verify_chain,
)
from ocsscale.probes.tlsclient import NameCheck, TlsOptions, TlsStream, build_client_context

_PROTOCOL_VERSION_REASONS = {
    "UNSUPPORTED_PROTOCOL",
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "NO_PROTOCOLS_AVAILABLE",
    "NO_CIPHERS_AVAILABLE",
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
    # what some servers (tlslite-ng among them) answer when no offered suite is theirs
    "TLSV1_ALERT_INSUFFICIENT_SECURITY",
    # asyncio and some appliances just hang up on a ClientHello they cannot serve.
    "UNEXPECTED_EOF_WHILE_READING",
}
_UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}
#: what OpenSSL 3 says of a SHA-1 (or MD5) signature below its security level
_WEAK_DIGEST_MARKS = ("digest algorithm too weak", "md too weak")
#: the pool-file setting that lets probes speak TLS 1.0 and accept SHA-1, as errors name it
LEGACY_TLS_SETTING = (
    "set `legacy_tls: true` on this server in the pool file "
    "(or `pool.legacy_tls: true` for every pool server)"
)


class ProbeFailed(Exception):
    """Stops a probe with a classified failure; never leaves the probes package."""

    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(detail)
        self.failure: Failure = failure
        self.detail = detail


@dataclass
class Attempt:
    """The evidence of one probe while it is being gathered."""

    probe: ProbeKind
    host: str
    port: int
    presented_name: str | None
    transport: str
    source: str | None
    started: float = field(default_factory=time.monotonic)
    found: dict[str, Any] = field(default_factory=dict)
    #: the negotiated TLS version and cipher, for the detail line (set by the handshake)
    tls_note: str = ""

    def evidence(self, ok: bool, detail: str, failure: Failure | None = None) -> ProbeEvidence:
        return ProbeEvidence(
            probe=self.probe,
            host=self.host,
            port=self.port,
            presented_name=self.presented_name,
            ok=ok,
            detail=detail + self.tls_note,
            transport="tls" if self.transport == "tls" else "tcp",
            source=self.source,
            failure=None if ok else failure,
            total_ms=_ms_since(self.started),
            **self.found,
        )

    def failed(self, exc: BaseException, during: str) -> ProbeEvidence:
        if isinstance(exc, ProbeFailed):
            return self.evidence(False, exc.detail, exc.failure)
        failure, why = classify_error(exc)
        return self.evidence(False, f"{during} {self.host}:{self.port}: {why}", failure)


def open_stream(
    attempt: Attempt,
    connect: Connector,
    deadline: Deadline,
    tls: TlsOptions | None,
) -> Stream:
    """Connect (and shake hands when ``tls`` is given), recording what was learnt.

    Raises ProbeFailed or one of :func:`expected_errors`; on error the stream is closed.
    """
    stream = _connect(attempt, connect, deadline)
    if tls is None:
        return stream
    try:
        return _handshake(attempt, stream, connect, deadline, tls)
    except BaseException:
        stream.close()
        raise


def _connect(attempt: Attempt, connect: Connector, deadline: Deadline) -> Stream:
    began = time.monotonic()
    try:
        stream = connect(attempt.host, attempt.port, deadline.remaining())
    except expected_errors() as exc:
        failure, why = classify_error(exc)
        raise ProbeFailed(failure, f"connect to {attempt.host}:{attempt.port}: {why}") from exc
    attempt.found["connect_ms"] = _ms_since(began)
    attempt.found["peer_address"] = peer_address(stream)
    return stream


def _handshake(
    attempt: Attempt, stream: Stream, connect: Connector, deadline: Deadline, tls: TlsOptions
) -> Stream:
    began = time.monotonic()
    try:
        context = build_client_context(tls)
    except (OSError, ssl.SSLError) as exc:
        where = tls.ca_bundle or "the system store"
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ProbeFailed("tls", f"cannot load CA certificates from {where}: {reason}") from exc
    session = TlsStream(stream, context, attempt.presented_name, deadline)
    try:
        session.handshake()
    except expected_errors() as exc:
        failure, why = classify_error(exc)
        if _refused_what_we_offered(exc):
            stream.close()
            if tls.legacy_tls and not openssl_has_3des():
                # the one suite a 2003 front end may offer that OpenSSL here lacks
                return _handshake_3des(attempt, connect, deadline, tls, why)
            if not tls.legacy_tls:
                why += _legacy_hint(exc, _what_legacy_gets(attempt, connect, deadline))
        elif not tls.legacy_tls:
            why += _legacy_hint(exc, None)
        raise ProbeFailed(
            failure, f"TLS handshake with {attempt.host}:{attempt.port}: {why}"
        ) from exc
    _record(attempt, session, tls, began)
    return session


def _handshake_3des(
    attempt: Attempt, connect: Connector, deadline: Deadline, tls: TlsOptions, openssl_why: str
) -> Stream:
    """A second connection, offering TLS 1.0+ with DES-CBC3-SHA only (tls3des.py)."""
    stream = _connect(attempt, connect, deadline)
    began = time.monotonic()
    session = Legacy3desStream(stream, deadline)
    where = f"{attempt.host}:{attempt.port}"
    try:
        session.handshake()
        if tls.verify:
            verify_chain(session.peer_chain_der(), tls.ca_bundle)
        _record(attempt, session, tls, began)
    except Legacy3desError as exc:
        session.close()
        if exc.untrusted:
            raise ProbeFailed(
                "cert-untrusted", f"TLS handshake with {where}: {exc.detail}"
            ) from exc
        raise ProbeFailed(
            "tls",
            f"TLS handshake with {where}: {openssl_why}; offering {CIPHER_3DES}: {exc.detail}",
        ) from exc
    except expected_errors() as exc:
        session.close()
        failure, why = classify_error(exc)
        raise ProbeFailed(failure, f"TLS handshake ({CIPHER_3DES}) with {where}: {why}") from exc
    except BaseException:
        session.close()
        raise
    return session


def _record(
    attempt: Attempt, session: TlsStream | Legacy3desStream, tls: TlsOptions, began: float
) -> None:
    """What the handshake learnt; ProbeFailed when the certificate does not name the host."""
    attempt.found["handshake_ms"] = _ms_since(began)
    attempt.found["tls_version"] = session.version
    attempt.found["cipher"] = session.cipher
    legacy = ", legacy_tls on" if tls.legacy_tls else ""
    attempt.tls_note = f" ({session.version}, {session.cipher}{legacy})"
    attempt.found["cert_verified"] = tls.verify
    der = session.peer_certificate_der()
    summary = CertSummary.from_der(der) if der else None
    attempt.found["certificate"] = summary
    wants_name = tls.verify and tls.name_check != "none" and attempt.presented_name
    if wants_name and (
        summary is None or not name_matches(attempt.presented_name or "", summary, tls.name_check)
    ):
        names = summary.names() if summary else "no certificate"
        session.close()
        raise ProbeFailed(
            "name-mismatch",
            f"certificate from {attempt.host}:{attempt.port} does not name "
            f"{attempt.presented_name} ({names})",
        )


def _refused_what_we_offered(exc: BaseException) -> bool:
    """A handshake refused for its versions or suites, as a 2003/2008 server refuses it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False
    return isinstance(exc, ssl.SSLEOFError) or (
        isinstance(exc, ssl.SSLError) and getattr(exc, "reason", None) in _PROTOCOL_VERSION_REASONS
    )


def _what_legacy_gets(
    attempt: Attempt, connect: Connector, deadline: Deadline
) -> tuple[str, str] | None:
    """(version, cipher) the server settles on when offered what `legacy_tls` offers.

    Only to name them in the refusal: nothing is sent over it and its certificate is
    not trusted for anything."""
    offer = TlsOptions(verify=False, legacy_tls=True)
    for try_3des in (False, True):
        if try_3des and openssl_has_3des():
            break
        stream: Stream | None = None
        try:
            stream = connect(attempt.host, attempt.port, deadline.remaining())
            session: TlsStream | Legacy3desStream
            if try_3des:
                session = Legacy3desStream(stream, deadline)
            else:
                session = TlsStream(stream, build_client_context(offer), None, deadline)
            session.handshake()
            if session.version and session.cipher:
                return session.version, session.cipher
        except (Legacy3desError, ssl.SSLError, *expected_errors()):
            pass
        finally:
            if stream is not None:
                stream.close()
    return None


def _legacy_hint(exc: BaseException, learned: tuple[str, str] | None) -> str:
    """What to set when a handshake fails the way a Windows 2003/2008 server makes it fail."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        if any(mark in str(exc.verify_message).lower() for mark in _WEAK_DIGEST_MARKS):
            return (
                " (a SHA-1 signed certificate, which OpenSSL 3 refuses by default; "
                f"if that is expected: {LEGACY_TLS_SETTING})"
            )
        return ""
    if learned is not None:
        version, cipher = learned
        what = "TLS 1.0" if version == "TLSv1" else version
        return (
            f" (the server will speak only {what} with {cipher}, which the probes refuse "
            f"by default; `legacy_tls` would allow it: {LEGACY_TLS_SETTING})"
        )
    if _refused_what_we_offered(exc):
        return (
            " (the server may speak only TLS 1.0, which OpenSSL 3 refuses by default; "
            f"if it is a Windows Server 2003/2008 front end: {LEGACY_TLS_SETTING})"
        )
    return ""


def name_matches(name: str, cert: CertSummary, mode: NameCheck) -> bool:
    """Does ``cert`` name ``name``? ``subject-or-san`` also accepts the subject CN."""
    if mode == "none":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if address is not None:
        return str(address) in {str(ipaddress.ip_address(ip)) for ip in cert.san_ip}
    candidates = list(cert.san_dns)
    if mode == "subject-or-san" and cert.subject_cn:
        candidates.append(cert.subject_cn)
    return any(_dns_name_matches(name, pattern) for pattern in candidates)


def _dns_name_matches(name: str, pattern: str) -> bool:
    name = name.rstrip(".").lower()
    pattern = pattern.rstrip(".").lower()
    if not pattern.startswith("*."):
        return name == pattern
    # A wildcard stands for exactly one leftmost label (RFC 6125 6.4.3).
    head, _, rest = name.partition(".")
    return bool(head) and rest == pattern[2:]


def classify_error(exc: BaseException) -> tuple[Failure, str]:
    """Map an exception from a connector or TLS to a failure class and a short reason."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "cert-untrusted", f"certificate not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLEOFError):
        return "tls", "the server closed the connection in the middle of the TLS handshake"
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or str(exc)
        return "tls", f"TLS error {reason}"
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, TimeoutError):
        return "timeout", "timed out"
    if isinstance(exc, socket.gaierror):
        return "unreachable", f"name not resolved ({exc.strerror or exc})"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "reset", "connection reset by the server"
    if isinstance(exc, EOFError):
        return "closed", str(exc) or "connection closed by the server"
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS:
        return "unreachable", exc.strerror or str(exc)
    if isinstance(exc, OSError):
        return "network", exc.strerror or str(exc) or type(exc).__name__
    return "network", describe_ssh_error(exc) or str(exc) or type(exc).__name__


def _ms_since(began: float) -> float:
    return round((time.monotonic() - began) * 1000.0, 3)
