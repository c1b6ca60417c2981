"""The profile's certificate rules, checked against one front end's certificate.

From the walkthrough ("When you request the certificate, set the Subject Name to
ocspool.contoso.com and add ocsfe01.contoso.com and sip.contoso.com as Subject
Alternate Names"): subject CN = pool FQDN; SANs hold the FE's FQDN and
``sip.<domain>``; no wildcard; server authentication allowed; valid now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ocsscale.probes.evidence import eku_name, subject_common_name

RULE_SUBJECT = "cert.subject"
RULE_SAN = "cert.san"
RULE_WILDCARD = "cert.wildcard"
RULE_EKU = "cert.eku"
RULE_VALIDITY = "cert.validity"
ALL_RULES: tuple[str, ...] = (RULE_SUBJECT, RULE_SAN, RULE_WILDCARD, RULE_EKU, RULE_VALIDITY)


@dataclass(frozen=True)
class CertFinding:
    rule: str
    ok: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_certificate(
    cert: x509.Certificate,
    *,
    pool_fqdn: str,
    fe_fqdns: Sequence[str],
    sip_domain: str,
    now: dt.datetime | None = None,
    rules: Collection[str] = ALL_RULES,
) -> list[CertFinding]:
    """One finding per rule in ``rules`` (in ``ALL_RULES`` order); none of them raises.

    ``fe_fqdns`` are the FE names this certificate must carry (normally the one FE
    that presents it). Names compare case-insensitively, trailing dots ignored.
    """
    unknown = set(rules) - set(ALL_RULES)
    if unknown:
        raise ValueError(f"unknown certificate rule(s): {', '.join(sorted(unknown))}")
    when = now or dt.datetime.now(dt.UTC)
    cn = subject_common_name(cert)
    sans = _dns_sans(cert)
    checks = {
        RULE_SUBJECT: lambda: _check_subject(cn, pool_fqdn),
        RULE_SAN: lambda: _check_sans(sans, [*fe_fqdns, f"sip.{_norm(sip_domain)}"]),
        RULE_WILDCARD: lambda: _check_wildcard(cn, sans),
        RULE_EKU: lambda: _check_eku(cert),
        RULE_VALIDITY: lambda: _check_validity(cert, when),
    }
    return [checks[rule]() for rule in ALL_RULES if rule in rules]


def all_ok(findings: Sequence[CertFinding]) -> bool:
    return all(finding.ok for finding in findings)


def _check_subject(cn: str | None, pool_fqdn: str) -> CertFinding:
    if cn is None:
        return CertFinding(RULE_SUBJECT, False, f"subject has no CN; expected CN={pool_fqdn}")
    if _norm(cn) == _norm(pool_fqdn):
        return CertFinding(RULE_SUBJECT, True, f"subject CN={cn} is the pool FQDN")
    return CertFinding(RULE_SUBJECT, False, f"subject CN={cn}, expected CN={pool_fqdn}")


def _check_sans(sans: list[str], required: list[str]) -> CertFinding:
    present = {_norm(name) for name in sans}
    missing = [name for name in required if _norm(name) not in present]
    listed = ", ".join(sans) or "none"
    if missing:
        return CertFinding(
            RULE_SAN, False, f"SANs lack {', '.join(missing)} (the certificate has: {listed})"
        )
    return CertFinding(RULE_SAN, True, f"SANs hold {', '.join(required)}")


def _check_wildcard(cn: str | None, sans: list[str]) -> CertFinding:
    wild = [name for name in [cn or "", *sans] if "*" in name]
    if wild:
        return CertFinding(
            RULE_WILDCARD, False, f"wildcard names are not supported: {', '.join(wild)}"
        )
    return CertFinding(RULE_WILDCARD, True, "no wildcard in subject or SANs")


def _check_eku(cert: x509.Certificate) -> CertFinding:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return CertFinding(RULE_EKU, True, "no extended key usage extension (any usage allowed)")
    if ExtendedKeyUsageOID.SERVER_AUTH in eku:
        return CertFinding(RULE_EKU, True, "extended key usage includes serverAuth")
    usages = ", ".join(eku_name(oid) for oid in eku) or "none"
    return CertFinding(RULE_EKU, False, f"extended key usage lacks serverAuth (has: {usages})")


def _check_validity(cert: x509.Certificate, now: dt.datetime) -> CertFinding:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now < start:
        return CertFinding(RULE_VALIDITY, False, f"not valid before {start.isoformat()}")
    if now > end:
        return CertFinding(RULE_VALIDITY, False, f"expired {end.isoformat()}")
    days = (end - now).days
    return CertFinding(RULE_VALIDITY, True, f"valid until {end.isoformat()} ({days} days left)")


def _dns_sans(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.DNSName))


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()
