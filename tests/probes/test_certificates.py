"""The lab CA's certificates and the certificate rules that judge them."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ocsscale.probes import ALL_RULES, CertSummary, all_ok, check_certificate
from ocsscale_lab.ca import CertFiles, create_ca, issue_server_cert, load_ca

from .conftest import FE_FQDN, POOL_FQDN, SIP_DOMAIN, Certs


def load(files: CertFiles) -> x509.Certificate:
    return x509.load_pem_x509_certificate(files.cert.read_bytes())


def findings_by_rule(cert: x509.Certificate, **overrides: object) -> dict[str, tuple[bool, str]]:
    arguments: dict[str, object] = {
        "pool_fqdn": POOL_FQDN,
        "fe_fqdns": [FE_FQDN],
        "sip_domain": SIP_DOMAIN,
    }
    arguments.update(overrides)
    findings = check_certificate(cert, **arguments)  # type: ignore[arg-type]
    return {f.rule: (f.ok, f.message) for f in findings}


def test_ca_files_and_key_modes(certs: Certs) -> None:
    for files in (certs.ca.files, certs.good):
        assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
        assert files.cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    basic = certs.ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is True


def test_key_rewritten_over_loose_file_is_still_private(tmp_path: Path) -> None:
    loose = tmp_path / "ca-key.pem"
    loose.write_text("placeholder")
    loose.chmod(0o644)
    create_ca(tmp_path)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


def test_server_cert_follows_the_walkthrough(certs: Certs) -> None:
    cert = load(certs.good)
    summary = CertSummary.from_x509(cert)
    assert summary.subject_cn == POOL_FQDN
    assert summary.san_dns == (FE_FQDN, "sip.contoso.com")
    assert summary.ext_key_usage == ("serverAuth",)
    cert.verify_directly_issued_by(certs.ca.cert)
    with pytest.raises(ValueError):
        cert.verify_directly_issued_by(certs.foreign_ca.cert)


def test_load_ca_round_trip_issues_verifiable_certs(certs: Certs, tmp_path: Path) -> None:
    reloaded = load_ca(certs.ca.files.cert.parent)
    assert reloaded.cert == certs.ca.cert
    files = issue_server_cert(
        reloaded,
        tmp_path,
        file_stem="ocsfe02",
        pool_fqdn=POOL_FQDN,
        fe_fqdn="ocsfe02.contoso.com",
        sip_domain=SIP_DOMAIN,
    )
    load(files).verify_directly_issued_by(certs.ca.cert)


def test_good_certificate_passes_every_rule(certs: Certs) -> None:
    findings = check_certificate(
        load(certs.good), pool_fqdn=POOL_FQDN, fe_fqdns=[FE_FQDN], sip_domain=SIP_DOMAIN
    )
    assert [f.rule for f in findings] == list(ALL_RULES)
    assert all_ok(findings), findings


def test_names_compare_without_case_or_trailing_dot(certs: Certs) -> None:
    result = findings_by_rule(
        load(certs.good),
        pool_fqdn="OCSPOOL.contoso.com.",
        fe_fqdns=["OcsFe01.Contoso.Com"],
        sip_domain="CONTOSO.COM.",
    )
    assert all(ok for ok, _ in result.values()), result


def test_wrong_san_is_named(certs: Certs) -> None:
    result = findings_by_rule(load(certs.wrong_san))
    ok, message = result["cert.san"]
    assert not ok
    assert FE_FQDN in message and "sip.contoso.com" in message
    assert "ocsfe02.contoso.com" in message  # what the certificate has instead
    assert result["cert.subject"][0]


def test_certificate_for_another_fe_fails_the_san_rule(certs: Certs) -> None:
    result = findings_by_rule(load(certs.good), fe_fqdns=["ocsfe02.contoso.com"])
    assert result["cert.san"] == (
        False,
        "SANs lack ocsfe02.contoso.com (the certificate has: ocsfe01.contoso.com, sip.contoso.com)",
    )


def test_wildcard_is_refused_and_subject_checked(certs: Certs) -> None:
    result = findings_by_rule(load(certs.wildcard))
    assert not result["cert.wildcard"][0]
    assert "*.contoso.com" in result["cert.wildcard"][1]
    assert not result["cert.subject"][0]
    assert "expected CN=ocspool.contoso.com" in result["cert.subject"][1]


def test_expired_and_not_yet_valid(certs: Certs) -> None:
    result = findings_by_rule(load(certs.expired))
    assert not result["cert.validity"][0]
    assert result["cert.validity"][1].startswith("expired ")
    early = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    result = findings_by_rule(load(certs.good), now=early)
    assert not result["cert.validity"][0]
    assert "not valid before" in result["cert.validity"][1]


def test_client_only_usage_fails_eku(certs: Certs) -> None:
    ok, message = findings_by_rule(load(certs.client_only))["cert.eku"]
    assert not ok
    assert "clientAuth" in message


def test_missing_eku_and_missing_san_and_cn() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "no common name")])
    bare = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    result = findings_by_rule(bare)
    assert result["cert.eku"][0]  # absent EKU allows every usage
    assert not result["cert.san"][0]
    assert "the certificate has: none" in result["cert.san"][1]
    assert result["cert.subject"] == (False, "subject has no CN; expected CN=ocspool.contoso.com")


def test_rule_subset_and_unknown_rule(certs: Certs) -> None:
    findings = check_certificate(
        load(certs.expired),
        pool_fqdn=POOL_FQDN,
        fe_fqdns=[FE_FQDN],
        sip_domain=SIP_DOMAIN,
        rules={"cert.subject", "cert.san"},
    )
    assert [f.rule for f in findings] == ["cert.subject", "cert.san"]
    with pytest.raises(ValueError, match="cert.nonsense"):
        check_certificate(
            load(certs.good),
            pool_fqdn=POOL_FQDN,
            fe_fqdns=[FE_FQDN],
            sip_domain=SIP_DOMAIN,
            rules={"cert.nonsense"},
        )


def test_summary_round_trips_through_dict(certs: Certs) -> None:
    summary = CertSummary.from_x509(load(certs.good))
    again = CertSummary.from_dict(summary.to_dict())
    assert again == summary
    assert again.to_x509() == load(certs.good)
