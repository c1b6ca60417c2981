"""TLS client over any :class:`~ocsscale.probes.stream.Stream`, using memory BIOs.

``SSLContext.wrap_bio`` lets the same TLS code run over a plain socket or over
an SSH channel, which ``wrap_socket`` cannot do. :class:`TlsStream` itself fits
the ``Stream`` protocol, so SIP and HTTP code does not care whether it talks
TLS or plain TCP.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from ocsscale.probes.stream import Deadline, Stream

NameCheck = Literal["subject-or-san", "san", "none"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class TlsOptions:
    """How a probe does TLS.

    ``verify``: check the chain against ``ca_bundle`` (a PEM file) or, when that is
    None, the system store. With ``verify=False`` the certificate is still read back
    so the certificate rules can be reported.

    ``name_check``: how the presented name is matched against the certificate.
    ``subject-or-san`` (default) accepts the subject CN or any DNS SAN, which is how
    OCS 2007 R2 clients match: the walkthrough's certificate has the pool FQDN only
    as subject and the FE FQDN and ``sip.<domain>`` as SANs, so RFC 6125 matching
    (``san``, what OpenSSL does) would reject the certificate the walkthrough asks for.

    ``legacy_tls``: also allow TLS 1.0/1.1 and SHA-1 cipher suites, for servers
    (Windows Server 2003 era) that speak nothing newer.
    """

    verify: bool = True
    ca_bundle: str | None = None
    name_check: NameCheck = "subject-or-san"
    legacy_tls: bool = False


def build_client_context(options: TlsOptions) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # The name is matched by ocsscale itself (see TlsOptions.name_check), so that
    # a mismatch is reported as such, with the names the certificate does hold.
    context.check_hostname = False
    if options.verify:
        context.verify_mode = ssl.CERT_REQUIRED
        if options.ca_bundle:
            context.load_verify_locations(cafile=options.ca_bundle)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        context.verify_mode = ssl.CERT_NONE
    if options.legacy_tls:
        allow_legacy_tls(context)
    return context


#: what `legacy_tls` lets OpenSSL offer: the modern suites and TLS 1.0's AES/SHA-1
#: ones (security level 0 for SHA-1), plus 3DES where this OpenSSL still has it.
#: Nothing weaker, ever: no RC4, export, single DES, NULL, anonymous or MD5 suites.
LEGACY_CIPHERS = "HIGH:MEDIUM:!aNULL:!eNULL:!PSK:!SRP:!RC4:!DES:!EXP:!MD5:!IDEA:!SEED"
_NEVER = ("RC4", "EXP", "NULL", "MD5")


def allow_legacy_tls(context: ssl.SSLContext) -> None:
    """Let a context speak TLS 1.0 (OpenSSL 3 needs security level 0 for its SHA-1 suites).

    DES-CBC3-SHA is offered when this OpenSSL has it; Debian's has not (see tls3des.py,
    which the probes fall back to)."""
    with warnings.catch_warnings():
        # Python deprecates TLSVersion.TLSv1; speaking it is this switch's whole purpose.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers(f"{LEGACY_CIPHERS}:@SECLEVEL=0")
    weak = [c["name"] for c in context.get_ciphers() if _is_weak(c)]
    if weak:  # a build whose MEDIUM holds more than 3DES: refuse rather than offer it
        raise ssl.SSLError(f"legacy cipher list would offer weak suites: {', '.join(weak)}")


def _is_weak(cipher: dict[str, object]) -> bool:
    name = str(cipher.get("name", ""))
    if any(mark in name for mark in _NEVER):
        return True
    single_des = "DES-CBC-" in name  # 3DES is DES-CBC3-...
    strength = cipher.get("strength_bits")
    return single_des or not isinstance(strength, int) or strength < 112


class TlsStream:
    """A TLS session over a stream; itself a ``Stream`` once the handshake is done."""

    def __init__(
        self,
        stream: Stream,
        context: ssl.SSLContext,
        server_hostname: str | None,
        deadline: Deadline,
    ) -> None:
        self._stream = stream
        self._deadline = deadline
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        # SNI only carries DNS names; an address as presented name sends no SNI.
        sni = server_hostname if server_hostname and not _is_ip_literal(server_hostname) else None
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=sni)
        self._timeout: float | None = None

    # -- Stream protocol -------------------------------------------------------------

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._run(functools.partial(self._tls.write, view))
            view = view[written:]

    def recv(self, n: int) -> bytes:
        try:
            return self._run(lambda: self._tls.read(n))
        except ssl.SSLZeroReturnError:
            return b""
        except ssl.SSLEOFError:
            # Servers often close without close_notify; for a probe that is end of stream.
            return b""

    def close(self) -> None:
        try:
            # Send close_notify without waiting for the server's: the probe is done.
            with contextlib.suppress(ssl.SSLWantReadError):
                self._tls.unwrap()
            self._flush()
        except (ssl.SSLError, OSError, ValueError):
            pass
        finally:
            self._stream.close()

    # -- TLS -------------------------------------------------------------------------

    def renew(self, seconds: float) -> None:
        """A new time budget for the calls from now on: a held stream outlives the
        probe's own budget, after which every call would time out at once."""
        self._deadline = Deadline(seconds)

    def handshake(self) -> None:
        self._run(self._tls.do_handshake)

    @property
    def version(self) -> str | None:
        return self._tls.version()

    @property
    def cipher(self) -> str | None:
        cipher = self._tls.cipher()
        return cipher[0] if cipher else None

    def peer_certificate_der(self) -> bytes | None:
        return self._tls.getpeercert(binary_form=True)

    def _run(self, operation: Callable[[], _T]) -> _T:
        """Drive one SSLObject call, moving bytes between the BIOs and the stream."""
        while True:
            try:
                result = operation()
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
                continue
            self._flush()
            return result

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._stream.settimeout(self._budget())
            self._stream.sendall(pending)

    def _fill(self) -> None:
        self._stream.settimeout(self._budget())
        data = self._stream.recv(65536)
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    def _budget(self) -> float:
        left = self._deadline.remaining()
        return min(left, self._timeout) if self._timeout is not None else left


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
