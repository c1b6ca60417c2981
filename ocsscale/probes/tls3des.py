"""TLS 1.0 with 3DES (`DES-CBC3-SHA`), for `legacy_tls` servers, when OpenSSL cannot.

Windows Server 2003 without the AES update offers TLS_RSA_WITH_3DES_EDE_CBC_SHA
or RC4 and nothing else. OpenSSL 3 as Debian (and upstream by default) builds it
has no 3DES cipher suite at all (`weak-ssl-ciphers` is compiled out), so no
`set_ciphers` string brings it back. This module speaks that one suite with
tlslite-ng (pure Python): RSA key exchange, 3DES-EDE-CBC, HMAC-SHA1, TLS 1.0 to
1.2, nothing else offered (no RC4, export, single DES or NULL).

tlslite-ng checks no certificate; :func:`verify_chain` does, with `cryptography`:
every signature up to a trust anchor (SHA-1 accepted, as legacy_tls says), the
validity dates, CA flags on issuers. Fail closed: anything it cannot check is
untrusted.
"""

from __future__ import annotations

import datetime as dt
import ssl
import warnings
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from ocsscale.probes.stream import Deadline, Stream

#: the suite, as OpenSSL (and so every finding) names it
CIPHER_3DES = "DES-CBC3-SHA"
_SUITE_3DES = 0x000A  # TLS_RSA_WITH_3DES_EDE_CBC_SHA
_VERSIONS = {(3, 1): "TLSv1", (3, 2): "TLSv1.1", (3, 3): "TLSv1.2"}
_MAX_CHAIN = 8
_MAX_BUNDLE = 4 * 1024 * 1024
#: signature digests a legacy chain may use: SHA-1 (what legacy_tls is for) and newer
_DIGESTS = frozenset({"sha1", "sha224", "sha256", "sha384", "sha512"})


class Legacy3desError(Exception):
    """The 3DES handshake failed or the certificate is not trusted; the text says why."""

    def __init__(self, detail: str, *, untrusted: bool = False, refused: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        #: the chain did not verify (as ssl.SSLCertVerificationError would say)
        self.untrusted = untrusted
        #: the server refused the suite (alert), as against a server without 3DES
        self.refused = refused


@cache
def load_tlslite() -> None:
    """Import tlslite-ng once, quietly: on Python < 3.12 its package imports asyncore
    (for an integration this project does not use), which warns on import."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import tlslite  # noqa: F401


@cache
def openssl_has_3des() -> bool:
    """Whether this Python's OpenSSL can offer DES-CBC3-SHA itself."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.set_ciphers(f"{CIPHER_3DES}:@SECLEVEL=0")
    except ssl.SSLError:
        return False
    return any(c.get("name") == CIPHER_3DES for c in context.get_ciphers())


def settings(*, server: bool = False) -> Any:
    """tlslite-ng handshake settings: 3DES with SHA-1 and RSA key exchange only."""
    load_tlslite()
    from tlslite import HandshakeSettings

    chosen = HandshakeSettings()
    chosen.cipherNames = ["3des"]
    chosen.macNames = ["sha"]
    chosen.keyExchangeNames = ["rsa"]
    chosen.minVersion = (3, 1)
    # a server stand-in speaks TLS 1.0 only, as Windows Server 2003 does
    chosen.maxVersion = (3, 1) if server else (3, 3)
    chosen.useEncryptThenMAC = False  # unknown to 2003-era servers; keep the hello plain
    chosen.useExtendedMasterSecret = False
    return chosen


class _StreamSocket:
    """What tlslite-ng needs of a socket, over a probe Stream with a deadline."""

    def __init__(self, stream: Stream, deadline: Deadline, timeout: float | None) -> None:
        self._stream = stream
        self._deadline = deadline
        self.timeout = timeout

    def _budget(self) -> float:
        left = self._deadline.remaining()
        if left <= 0:
            raise TimeoutError("timed out")
        return min(left, self.timeout) if self.timeout is not None else left

    def send(self, data: bytes) -> int:
        self._stream.settimeout(self._budget())
        self._stream.sendall(bytes(data))
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.send(data)

    def recv(self, n: int) -> bytes:
        self._stream.settimeout(self._budget())
        return self._stream.recv(n)

    def close(self) -> None:
        self._stream.close()

    def shutdown(self, how: int) -> None:  # noqa: ARG002 - socket API
        return None


class Legacy3desStream:
    """A TLS 1.0/3DES session over a Stream; fits the Stream protocol like TlsStream."""

    def __init__(self, stream: Stream, deadline: Deadline) -> None:
        load_tlslite()
        from tlslite import TLSConnection

        self._sock = _StreamSocket(stream, deadline, None)
        self._conn = TLSConnection(self._sock)
        self._stream = stream

    def handshake(self) -> None:
        from tlslite.errors import TLSError, TLSLocalAlert, TLSRemoteAlert

        try:
            self._conn.handshakeClientCert(settings=settings())
        except TLSRemoteAlert as exc:
            raise Legacy3desError(
                f"the server refused TLS with {CIPHER_3DES} ({exc})", refused=True
            ) from exc
        except TLSLocalAlert as exc:
            raise Legacy3desError(f"TLS with {CIPHER_3DES} failed ({exc})") from exc
        except TLSError as exc:
            # abrupt close in the handshake: what a server without the suite may do
            raise Legacy3desError(
                f"the server closed the connection in the TLS handshake ({type(exc).__name__})",
                refused=True,
            ) from exc
        except (OSError, EOFError):
            raise  # the network's: the probe classifies it
        except Exception as exc:  # noqa: BLE001 - a malformed handshake must not escape
            raise Legacy3desError(
                f"unreadable TLS handshake from the server ({type(exc).__name__})"
            ) from exc
        if self._conn.session.cipherSuite != _SUITE_3DES:
            raise Legacy3desError("the server chose a cipher suite it was not offered")

    # -- Stream protocol ----------------------------------------------------------

    def settimeout(self, timeout: float | None) -> None:
        self._sock.timeout = timeout

    def sendall(self, data: bytes) -> None:
        try:
            self._conn.write(bytes(data))
        except (OSError, EOFError):
            raise
        except Exception as exc:  # noqa: BLE001 - as ssl.SSLError, which probes classify
            raise ssl.SSLError(f"TLS ({CIPHER_3DES}): {type(exc).__name__}") from exc

    def recv(self, n: int) -> bytes:
        from tlslite.errors import TLSAbruptCloseError

        try:
            return bytes(self._conn.read(max=n, min=1))
        except TLSAbruptCloseError:
            return b""  # closed without close_notify: end of stream for a probe
        except (OSError, EOFError):
            raise
        except Exception as exc:  # noqa: BLE001 - as ssl.SSLError, which probes classify
            raise ssl.SSLError(f"TLS ({CIPHER_3DES}): {type(exc).__name__}") from exc

    def close(self) -> None:
        try:
            # sends close_notify and does not wait for the server's (closeSocket)
            self._conn.close()
        except Exception:  # noqa: BLE001 - closing a probe's session never fails the probe
            pass
        finally:
            self._stream.close()

    # -- what the probe reports ---------------------------------------------------

    @property
    def version(self) -> str | None:
        return _VERSIONS.get(tuple(self._conn.version))

    @property
    def cipher(self) -> str | None:
        return CIPHER_3DES if self._conn.session.cipherSuite == _SUITE_3DES else None

    def peer_chain_der(self) -> list[bytes]:
        chain = self._conn.session.serverCertChain
        return [bytes(cert.bytes) for cert in chain.x509List] if chain else []

    def peer_certificate_der(self) -> bytes | None:
        chain = self.peer_chain_der()
        return chain[0] if chain else None


def verify_chain(chain_der: Sequence[bytes], ca_bundle: str | None) -> None:
    """Raise Legacy3desError(untrusted=True) unless the chain leads to a trusted CA."""
    if not chain_der:
        raise Legacy3desError("the server sent no certificate", untrusted=True)
    try:
        chain = [x509.load_der_x509_certificate(der) for der in chain_der[:_MAX_CHAIN]]
    except ValueError as exc:
        raise Legacy3desError("the server's certificate cannot be read", untrusted=True) from exc
    anchors = _anchors(ca_bundle)
    now = dt.datetime.now(dt.UTC)
    current = chain[0]
    try:
        usages = current.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if not {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE} & set(
            usages
        ):
            raise Legacy3desError(
                "certificate not trusted (unsupported certificate purpose)", untrusted=True
            )
    except x509.ExtensionNotFound:
        pass  # no EKU: any purpose, as OpenSSL reads it
    except ValueError as exc:
        raise Legacy3desError("the server's certificate cannot be read", untrusted=True) from exc
    for _ in range(_MAX_CHAIN):
        if not current.not_valid_before_utc <= now <= current.not_valid_after_utc:
            raise Legacy3desError(
                "certificate not trusted (certificate has expired or is not yet valid)",
                untrusted=True,
            )
        if any(current == anchor for anchor in anchors):
            return
        issuer = _issuer_of(current, anchors) or _issuer_of(current, chain[1:], need_ca=True)
        if issuer is None:
            raise Legacy3desError(
                "certificate not trusted (unable to get local issuer certificate)",
                untrusted=True,
            )
        if any(issuer == anchor for anchor in anchors):
            return
        current = issuer
    raise Legacy3desError("certificate not trusted (chain too long)", untrusted=True)


def _issuer_of(
    cert: x509.Certificate, candidates: Sequence[x509.Certificate], need_ca: bool = True
) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate == cert:
            continue
        if need_ca and not _is_ca(candidate):
            continue
        if _signed_by(cert, candidate):
            return candidate
    return None


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Is `cert` signed by `issuer`'s key? SHA-1 allowed (which `cryptography`'s
    verify_directly_issued_by refuses), MD5 and unknown algorithms not."""
    if cert.issuer != issuer.subject:
        return False
    try:
        digest = cert.signature_hash_algorithm
        if digest is None or digest.name not in _DIGESTS:
            return False
        key = issuer.public_key()
        # `cryptography` gives no parameters for the SHA-1 algorithms: PKCS#1 v1.5 / ECDSA
        params = cert.signature_algorithm_parameters
        if isinstance(key, rsa.RSAPublicKey):
            pad = params if isinstance(params, padding.AsymmetricPadding) else padding.PKCS1v15()
            key.verify(cert.signature, cert.tbs_certificate_bytes, pad, digest)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(digest))
        else:
            return False
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.version == x509.Version.v1  # old self-signed roots carry no extensions
    except ValueError:
        return False


def _anchors(ca_bundle: str | None) -> list[x509.Certificate]:
    paths: list[str] = []
    if ca_bundle:
        paths.append(ca_bundle)
    else:
        defaults = ssl.get_default_verify_paths()
        paths += [p for p in (defaults.cafile, defaults.openssl_cafile) if p]
        paths.append("/etc/ssl/certs/ca-certificates.crt")
    for path in paths:
        try:
            file = Path(path)
            if not file.is_file() or file.stat().st_size > _MAX_BUNDLE:
                continue
            return x509.load_pem_x509_certificates(file.read_bytes())
        except (OSError, ValueError):
            if ca_bundle:
                break
    raise Legacy3desError(
        f"cannot load CA certificates from {ca_bundle or 'the system store'}", untrusted=True
    )
