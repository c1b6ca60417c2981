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
from cryptography.hazmat.primitives.asymmetric import ec
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
    valid_days: int = 30,
) -> CertFiles:
    """Issue a front end's certificate as ``<file_stem>.pem`` and ``<file_stem>-key.pem``.

    Defaults follow the walkthrough; ``sans`` replaces the SAN list, ``subject_cn``
    the subject (e.g. ``*.contoso.com`` for a wildcard), ``server_auth=False`` gives
    clientAuth only, ``expired=True`` a certificate whose validity ended yesterday.
    """
    directory.mkdir(parents=True, exist_ok=True)
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
    files = CertFiles(directory / f"{file_stem}.pem", directory / f"{file_stem}-key.pem")
    write_key(files.key, key)
    write_cert(files.cert, cert)
    return files


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
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
