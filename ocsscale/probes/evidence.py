"""What a probe found, as frozen, JSON-ready records for the journal and the report."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ProbeKind = Literal["tcp", "tls", "sip", "https"]

Failure = Literal[
    "refused",  # nothing listens on the port (RST)
    "timeout",  # no answer within the probe's time budget
    "unreachable",  # no route, host down, name not resolved
    "reset",  # the connection was cut after it opened
    "closed",  # the server closed before giving a complete answer
    "tls",  # handshake failed for a reason other than the certificate
    "cert-untrusted",  # the chain does not verify against the CA bundle
    "name-mismatch",  # the certificate does not name what was presented
    "protocol",  # an answer came, but not one this probe understands
    "status",  # a well-formed answer with a status the caller did not accept
    "network",  # any other error the connector reported
]

_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
}


@dataclass(frozen=True)
class CertSummary:
    """The parts of a server certificate an operator looks at, plus the PEM itself."""

    subject: str
    subject_cn: str | None
    issuer: str
    san_dns: tuple[str, ...]
    san_ip: tuple[str, ...]
    not_before: str  # ISO 8601, UTC
    not_after: str
    serial: str  # hex
    sha256: str  # fingerprint of the DER, hex
    ext_key_usage: tuple[str, ...]  # () when the certificate has no EKU extension
    pem: str

    @classmethod
    def from_x509(cls, cert: x509.Certificate) -> CertSummary:
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            san_dns = tuple(san.get_values_for_type(x509.DNSName))
            san_ip = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
        except x509.ExtensionNotFound:
            san_dns, san_ip = (), ()
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            usages = tuple(eku_name(oid) for oid in eku)
        except x509.ExtensionNotFound:
            usages = ()
        der = cert.public_bytes(serialization.Encoding.DER)
        return cls(
            subject=cert.subject.rfc4514_string(),
            subject_cn=subject_common_name(cert),
            issuer=cert.issuer.rfc4514_string(),
            san_dns=san_dns,
            san_ip=san_ip,
            not_before=cert.not_valid_before_utc.isoformat(),
            not_after=cert.not_valid_after_utc.isoformat(),
            serial=format(cert.serial_number, "x"),
            sha256=hashlib.sha256(der).hexdigest(),
            ext_key_usage=usages,
            pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        )

    @classmethod
    def from_der(cls, der: bytes) -> CertSummary:
        return cls.from_x509(x509.load_der_x509_certificate(der))

    def to_x509(self) -> x509.Certificate:
        """The certificate itself, e.g. for ``certrules.check_certificate``."""
        return x509.load_pem_x509_certificate(self.pem.encode("ascii"))

    def names(self) -> str:
        """Subject CN and DNS SANs, for messages."""
        sans = ", ".join(self.san_dns) or "none"
        return f"subject CN={self.subject_cn or '(none)'}, DNS SANs: {sans}"

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CertSummary:
        values = dict(data)
        for name in ("san_dns", "san_ip", "ext_key_usage"):
            values[name] = tuple(values.get(name, ()))
        return cls(**values)


def eku_name(oid: x509.ObjectIdentifier) -> str:
    """``serverAuth`` and friends by their RFC 5280 names, anything else dotted."""
    return _EKU_NAMES.get(oid, oid.dotted_string)


def subject_common_name(cert: x509.Certificate) -> str | None:
    attributes = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attributes:
        return None
    value = attributes[0].value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@dataclass(frozen=True)
class ProbeEvidence:
    """The outcome of one probe. ``ok`` is the verdict; ``detail`` says why, in one line.

    ``host``/``port`` are what was connected to; ``presented_name`` is the name the
    probe presented (TLS SNI, HTTP Host, SIP Request-URI host). ``server`` is the
    server that answered, as it named itself (SIP/HTTP ``Server:`` header, the
    first body line, or a banner); ``pool_resolved`` is what that server said the
    pool FQDN resolves to, when it says so (``X-Pool-Resolved``). Timings are in
    milliseconds. ``failure`` classifies a failed probe (see ``Failure``).
    """

    probe: ProbeKind
    host: str
    port: int
    presented_name: str | None
    ok: bool
    detail: str
    transport: Literal["tcp", "tls"] = "tcp"
    source: str | None = None  # where the probe ran from, as the caller labelled it
    failure: Failure | None = None
    peer_address: str | None = None
    server: str | None = None
    pool_resolved: str | None = None
    seen_source: str | None = None  # the source address the server saw (banner `peer=`)
    status: str | None = None  # SIP/HTTP status line, or the banner line
    status_code: int | None = None
    connect_ms: float | None = None
    handshake_ms: float | None = None
    total_ms: float | None = None
    tls_version: str | None = None
    cipher: str | None = None
    cert_verified: bool | None = None
    certificate: CertSummary | None = None
    headers: tuple[tuple[str, str], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeEvidence:
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        if values.get("certificate") is not None:
            values["certificate"] = CertSummary.from_dict(values["certificate"])
        values["headers"] = tuple(tuple(pair) for pair in values.get("headers", ()))
        return cls(**values)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value
