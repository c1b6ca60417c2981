"""The lab's certificate authority: one CA, and a server certificate per front end.

A server certificate follows the walkthrough: subject CN = pool FQDN, SANs = the
FE's FQDN and ``sip.<domain>``, serverAuth usage. Every part can be overridden
so that tests can issue the faulty certificates the checks must catch (wrong
SANs, a wildcard, expired, no serverAuth). Keys are EC P-256 (fast to make) and
written with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"


@dataclass(frozen=True)
class CertFiles:
    """Where a certificate and its private key were written."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class LabCA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    files: CertFiles


def create_ca(
    directory: Path, *, common_name: str = "ocsscale lab CA", valid_days: int = 30
) -> LabCA:
    """Make a new CA in ``directory`` (``ca.pem``, ``ca-key.pem``), replacing any there."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    files = CertFiles(directory / CA_CERT_FILE, directory / CA_KEY_FILE)
    write_key(files.key, key)
    write_cert(files.cert, cert)
    return LabCA(cert, key, files)


def load_ca(directory: Path) -> LabCA:
    """Load the CA that :func:`create_ca` wrote to ``directory``."""
    files = CertFiles(directory / CA_CERT_FILE, directory / CA_KEY_FILE)
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{files.key}: not an EC key written by the lab CA")
    return LabCA(cert, key, files)


def default_sans(fe_fqdn: str, sip_domain: str) -> list[str]:
    """The walkthrough's SANs for one front end."""
    return [fe_fqdn, f"sip.{sip_domain}"]


def issue_server_cert(
    ca: LabCA,
    directory: Path,
    *,
    file_stem: str,
    pool_fqdn: str,
    fe_fqdn: str,
    sip_domain: str,
    sans: Sequence[str] | None = None,
    subject_cn: str | None = None,
    server_auth: bool = True,
    expired: bool = False,
    sha1: bool = False,
    rsa_key: bool = False,
    valid_days: int = 30,
) -> CertFiles:
    """Issue a front end's certificate as ``<file_stem>.pem`` and ``<file_stem>-key.pem``.

    Defaults follow the walkthrough; ``sans`` replaces the SAN list, ``subject_cn``
    the subject (e.g. ``*.contoso.com`` for a wildcard), ``server_auth=False`` gives
    clientAuth only, ``expired=True`` a certificate whose validity ended yesterday,
    ``sha1=True`` one signed with ECDSA-SHA1, as a Windows 2003/2008 CA signs;
    ``rsa_key=True`` an RSA key (2048 bits), which the RSA-key-exchange suites a
    Windows Server 2003 offers (DES-CBC3-SHA) need.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if rsa_key:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    if expired:
        start, end = now - dt.timedelta(days=valid_days + 1), now - dt.timedelta(days=1)
    else:
        start, end = now - dt.timedelta(minutes=5), now + dt.timedelta(days=valid_days)
    names = list(sans) if sans is not None else default_sans(fe_fqdn, sip_domain)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server_auth else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn or pool_fqdn)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False
        )
    cert = builder.sign(ca.key, hashes.SHA256())
    if sha1:
        cert = resign_sha1(cert, ca.key)
    files = CertFiles(directory / f"{file_stem}.pem", directory / f"{file_stem}-key.pem")
    write_key(files.key, key)
    write_cert(files.cert, cert)
    return files


# -- SHA-1 signatures ------------------------------------------------------------
# `cryptography` (since 4x) refuses SHA-1 in CertificateBuilder.sign, but still
# signs raw data with ECDSA-SHA1. So the certificate is built as usual, its
# TBSCertificate's signature algorithm swapped for ecdsa-with-SHA1 (DER, RFC 5280
# 4.1: the third field of the TBS), and the result signed by hand.
_ECDSA_SHA1 = bytes.fromhex("300906072a8648ce3d0401")  # SEQUENCE { OID 1.2.840.10045.4.1 }


def resign_sha1(cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """The same certificate, signed by `ca_key` with ECDSA-SHA1."""
    fields = _der_children(_der_content(cert.tbs_certificate_bytes))
    fields[2] = _ECDSA_SHA1
    tbs = _der(0x30, b"".join(fields))
    signature = ca_key.sign(tbs, ec.ECDSA(hashes.SHA1()))
    signed = x509.load_der_x509_certificate(
        _der(0x30, tbs + _ECDSA_SHA1 + _der(0x03, b"\0" + signature))
    )
    ca_key.public_key().verify(
        signed.signature, signed.tbs_certificate_bytes, ec.ECDSA(hashes.SHA1())
    )
    return signed


def _der_header(data: bytes, at: int) -> tuple[int, int]:
    """(start of the content, its length) of the DER element at `at`."""
    length, at = data[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        length, at = int.from_bytes(data[at : at + count], "big"), at + count
    return at, length


def _der_content(element: bytes) -> bytes:
    start, length = _der_header(element, 0)
    return element[start : start + length]


def _der_children(content: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(content):
        start, length = _der_header(content, at)
        out.append(content[at : start + length])
        at = start + length
    return out


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    """Write a private key as PEM, readable by its owner only from the first byte on."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as key_file:
        # O_CREAT's mode does not apply to a file that already existed.
        os.fchmod(key_file.fileno(), 0o600)
        key_file.write(pem)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
