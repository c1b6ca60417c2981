"""Every probe against a real pool-member process, the successes and the failures."""

from __future__ import annotations

import json

import pytest

from ocsscale.probes import (
    ProbeEvidence,
    TlsOptions,
    all_ok,
    check_certificate,
    https_get_probe,
    sip_options_probe,
    tcp_probe,
    tls_probe,
)

from .conftest import (
    FE_FQDN,
    POOL_FQDN,
    PROFILE_PORTS,
    SIP_DOMAIN,
    Certs,
    PoolMemberProcess,
    StartMember,
    real_port,
    unique_loopback,
)

BANNER_PORTS = [p for p in PROFILE_PORTS if p not in (5061, 5060, 443, 444)]


def trusted(certs: Certs, **options: object) -> TlsOptions:
    return TlsOptions(ca_bundle=str(certs.ca.files.cert), **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("port", PROFILE_PORTS)
def test_every_profile_port_accepts_tcp(member: PoolMemberProcess, port: int) -> None:
    evidence = tcp_probe(member.address, real_port(port))
    assert evidence.ok, evidence.detail
    assert evidence.peer_address == member.address
    assert evidence.connect_ms is not None and evidence.failure is None


@pytest.mark.parametrize("port", BANNER_PORTS)
def test_banner_names_server_and_its_view_of_the_pool(member: PoolMemberProcess, port: int) -> None:
    evidence = tcp_probe(member.address, real_port(port), banner_wait=5.0)
    assert evidence.ok, evidence.detail
    assert evidence.server == "ocsfe01"
    assert evidence.pool_resolved is not None and "127.0.0.1" in evidence.pool_resolved
    assert evidence.status is not None and f"port={real_port(port)}" in evidence.status


def test_banner_reports_the_source_address_the_server_saw(member: PoolMemberProcess) -> None:
    from ocsscale.probes import make_socket_connector

    connect = make_socket_connector("127.0.0.77")
    evidence = tcp_probe(member.address, real_port(135), connect=connect, banner_wait=5.0)
    assert evidence.ok, evidence.detail
    assert evidence.seen_source == "127.0.0.77"


def test_tls_handshake_verified_with_certificate_read_back(
    member: PoolMemberProcess, certs: Certs
) -> None:
    evidence = tls_probe(member.address, real_port(5061), POOL_FQDN, tls=trusted(certs))
    assert evidence.ok, evidence.detail
    assert evidence.cert_verified is True
    assert evidence.tls_version in ("TLSv1.2", "TLSv1.3")
    assert evidence.certificate is not None
    assert evidence.certificate.subject_cn == POOL_FQDN
    assert evidence.certificate.san_dns == (FE_FQDN, f"sip.{SIP_DOMAIN}")
    findings = check_certificate(
        evidence.certificate.to_x509(),
        pool_fqdn=POOL_FQDN,
        fe_fqdns=[FE_FQDN],
        sip_domain=SIP_DOMAIN,
    )
    assert all_ok(findings)


def test_untrusted_ca_fails_but_unverified_fetch_reads_the_cert(
    member: PoolMemberProcess, certs: Certs
) -> None:
    foreign = TlsOptions(ca_bundle=str(certs.foreign_ca.files.cert))
    refused = tls_probe(member.address, real_port(443), POOL_FQDN, tls=foreign)
    assert not refused.ok
    assert refused.failure == "cert-untrusted"
    assert "certificate not trusted" in refused.detail
    fetched = tls_probe(member.address, real_port(443), POOL_FQDN, tls=TlsOptions(verify=False))
    assert fetched.ok, fetched.detail
    assert fetched.cert_verified is False
    assert fetched.certificate is not None and fetched.certificate.subject_cn == POOL_FQDN
    assert "NOT verified" in fetched.detail


def test_name_checks(member: PoolMemberProcess, certs: Certs) -> None:
    address, port = member.address, real_port(5061)
    # The walkthrough's certificate names the pool only in its subject: OCS-style matching
    # accepts it, RFC 6125 (SAN-only) matching does not.
    assert tls_probe(address, port, POOL_FQDN, tls=trusted(certs)).ok
    strict = tls_probe(address, port, POOL_FQDN, tls=trusted(certs, name_check="san"))
    assert not strict.ok and strict.failure == "name-mismatch"
    assert tls_probe(address, port, FE_FQDN, tls=trusted(certs, name_check="san")).ok
    other = tls_probe(address, port, "ocsfe02.contoso.com", tls=trusted(certs))
    assert not other.ok and other.failure == "name-mismatch"
    assert "does not name ocsfe02.contoso.com" in other.detail
    assert other.certificate is not None  # still recorded, for the report
    assert tls_probe(address, port, "anything", tls=trusted(certs, name_check="none")).ok


@pytest.mark.parametrize(("port", "transport"), [(5061, "tls"), (5060, "tcp")])
def test_sip_options_answered_by_the_member(
    member: PoolMemberProcess, certs: Certs, port: int, transport: str
) -> None:
    evidence = sip_options_probe(
        member.address,
        real_port(port),
        POOL_FQDN,
        transport=transport,  # type: ignore[arg-type]
        tls=trusted(certs),
    )
    assert evidence.ok, evidence.detail
    assert evidence.status == "SIP/2.0 200 OK" and evidence.status_code == 200
    assert evidence.server == "ocsfe01"
    assert evidence.pool_resolved is not None and "127.0.0.1" in evidence.pool_resolved
    assert evidence.transport == transport
    headers = dict(evidence.headers)
    assert "z9hG4bK" in headers["Via"] and f"SIP/2.0/{transport.upper()}" in headers["Via"]
    assert ";tag=" in headers["To"] and headers["CSeq"] == "1 OPTIONS"
    assert (evidence.tls_version is not None) == (transport == "tls")


def test_sip_to_a_non_sip_port_is_a_protocol_failure(member: PoolMemberProcess) -> None:
    evidence = sip_options_probe(
        member.address, real_port(5065), POOL_FQDN, transport="tcp", timeout=5.0
    )
    assert not evidence.ok
    assert evidence.failure == "protocol"
    assert "not a SIP response" in evidence.detail


def test_sip_over_tls_to_plain_port_fails_handshake(
    member: PoolMemberProcess, certs: Certs
) -> None:
    evidence = sip_options_probe(
        member.address, real_port(5060), POOL_FQDN, tls=trusted(certs), timeout=1.0
    )
    assert not evidence.ok
    assert evidence.failure in ("tls", "timeout")
    assert evidence.detail.startswith("TLS handshake with")


@pytest.mark.parametrize("port", [443, 444])
def test_https_get_names_the_server(member: PoolMemberProcess, certs: Certs, port: int) -> None:
    evidence = https_get_probe(member.address, real_port(port), POOL_FQDN, tls=trusted(certs))
    assert evidence.ok, evidence.detail
    assert evidence.status_code == 200 and evidence.status == "HTTP/1.1 200 OK"
    assert evidence.server == "ocsfe01"
    assert evidence.pool_resolved is not None
    assert evidence.detail == (
        f"HTTP/1.1 200 OK from ocsfe01 on {member.address}:{real_port(port)} "
        f"({evidence.tls_version}, {evidence.cipher})"
    )


def test_https_status_filter(member: PoolMemberProcess, certs: Certs) -> None:
    missing = https_get_probe(
        member.address,
        real_port(443),
        POOL_FQDN,
        path="/nothing-here",
        tls=trusted(certs),
        accept_status={200},
    )
    assert not missing.ok
    assert missing.failure == "status" and missing.status_code == 404
    assert missing.server == "ocsfe01"
    anything = https_get_probe(
        member.address, real_port(443), POOL_FQDN, path="/nothing-here", tls=trusted(certs)
    )
    assert anything.ok  # any HTTP answer means the server is alive


def test_evidence_is_json_and_round_trips(member: PoolMemberProcess, certs: Certs) -> None:
    evidence = sip_options_probe(
        member.address, real_port(5061), POOL_FQDN, tls=trusted(certs), source="admin"
    )
    document = json.loads(json.dumps(evidence.to_dict()))
    assert document["source"] == "admin" and document["server"] == "ocsfe01"
    assert document["certificate"]["subject_cn"] == POOL_FQDN
    assert ProbeEvidence.from_dict(document) == evidence


def test_closed_port_is_refused_by_every_probe(start_member: StartMember, certs: Certs) -> None:
    running = start_member(certs.good, extra=[f"--close={real_port(444)}"])
    address, closed = running.address, real_port(444)
    results = [
        tcp_probe(address, closed),
        tls_probe(address, closed, POOL_FQDN, tls=trusted(certs)),
        sip_options_probe(address, closed, POOL_FQDN, tls=trusted(certs)),
        https_get_probe(address, closed, POOL_FQDN, tls=trusted(certs)),
    ]
    for evidence in results:
        assert not evidence.ok
        assert evidence.failure == "refused"
        assert evidence.detail == f"connect to {address}:{closed}: connection refused"
    assert https_get_probe(address, real_port(443), POOL_FQDN, tls=trusted(certs)).ok


@pytest.mark.parametrize(
    ("which", "broken_rule"),
    [("wrong_san", "cert.san"), ("wildcard", "cert.wildcard"), ("expired", "cert.validity")],
)
def test_faulty_certificates_caught_by_the_rules(
    start_member: StartMember, certs: Certs, which: str, broken_rule: str
) -> None:
    running = start_member(getattr(certs, which))
    evidence = tls_probe(running.address, real_port(5061), POOL_FQDN, tls=TlsOptions(verify=False))
    assert evidence.ok, evidence.detail
    assert evidence.certificate is not None
    findings = check_certificate(
        evidence.certificate.to_x509(),
        pool_fqdn=POOL_FQDN,
        fe_fqdns=[FE_FQDN],
        sip_domain=SIP_DOMAIN,
    )
    failed = {f.rule for f in findings if not f.ok}
    assert broken_rule in failed


def test_expired_certificate_fails_verification(start_member: StartMember, certs: Certs) -> None:
    running = start_member(certs.expired)
    evidence = sip_options_probe(running.address, real_port(5061), POOL_FQDN, tls=trusted(certs))
    assert not evidence.ok
    assert evidence.failure == "cert-untrusted"
    assert "expired" in evidence.detail


def test_legacy_tls_switch(start_member: StartMember, certs: Certs) -> None:
    running = start_member(certs.good, extra=["--legacy-tls-only"])
    modern = sip_options_probe(running.address, real_port(5061), POOL_FQDN, tls=trusted(certs))
    assert not modern.ok
    assert modern.failure == "tls"
    assert "speak only TLS 1.0" in modern.detail and "`legacy_tls: true`" in modern.detail
    legacy = sip_options_probe(
        running.address, real_port(5061), POOL_FQDN, tls=trusted(certs, legacy_tls=True)
    )
    assert legacy.ok, legacy.detail
    assert legacy.tls_version == "TLSv1"
    assert f"(TLSv1, {legacy.cipher}, legacy_tls on)" in legacy.detail
    assert legacy.server == "ocsfe01"


def test_sha1_certificate_over_tls10_needs_legacy_tls(
    start_member: StartMember, certs: Certs
) -> None:
    """A Windows Server 2003/2008 front end: TLS 1.0 only, SHA-1 signed certificate."""
    assert certs.sha1.cert.read_bytes() != certs.good.cert.read_bytes()
    running = start_member(certs.sha1, extra=["--legacy-tls-only"])
    for probe in (tls_probe, https_get_probe):
        port = real_port(5061 if probe is tls_probe else 443)
        modern = probe(running.address, port, POOL_FQDN, tls=trusted(certs))
        assert not modern.ok and modern.failure == "tls", modern.detail
        assert "`legacy_tls: true` on this server in the pool file" in modern.detail
        legacy = probe(running.address, port, POOL_FQDN, tls=trusted(certs, legacy_tls=True))
        assert legacy.ok, legacy.detail
        assert legacy.tls_version == "TLSv1" and legacy.cert_verified
        assert legacy.certificate is not None
        assert legacy.certificate.to_x509().signature_hash_algorithm.name == "sha1"
        assert f"(TLSv1, {legacy.cipher}, legacy_tls on)" in legacy.detail


def test_sha1_certificate_over_modern_tls_names_the_setting(certs: Certs) -> None:
    """A Windows Server 2008 R2 front end with TLS 1.2 enabled may still present a
    SHA-1 certificate: the refusal says so, and legacy_tls accepts it."""
    import socket
    import ssl
    import threading

    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.set_ciphers("DEFAULT:@SECLEVEL=0")  # before loading: a SHA-1 certificate
    server.load_cert_chain(str(certs.sha1.cert), str(certs.sha1.key))
    listener = socket.create_server((unique_loopback(), 0))
    address, port = listener.getsockname()[:2]

    def serve(connections: int) -> None:
        for _ in range(connections):
            conn, _ = listener.accept()
            try:
                with server.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass  # the modern client hangs up on the certificate

    thread = threading.Thread(target=serve, args=(2,), daemon=True)
    thread.start()
    try:
        modern = tls_probe(address, port, POOL_FQDN, tls=trusted(certs), timeout=5)
        assert not modern.ok and modern.failure == "cert-untrusted", modern.detail
        assert "a SHA-1 signed certificate, which OpenSSL 3 refuses" in modern.detail
        assert "`legacy_tls: true` on this server in the pool file" in modern.detail
        legacy = tls_probe(address, port, POOL_FQDN, tls=trusted(certs, legacy_tls=True), timeout=5)
        assert legacy.ok, legacy.detail
        assert legacy.tls_version in ("TLSv1.2", "TLSv1.3")
        assert f"({legacy.tls_version}, {legacy.cipher}, legacy_tls on)" in legacy.detail
    finally:
        thread.join(timeout=10)
        listener.close()
