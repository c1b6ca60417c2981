"""`legacy_tls` and a Windows Server 2003 front end without the AES update: TLS 1.0
with DES-CBC3-SHA only, a SHA-1 certificate. Real pool-member processes (the
server side by tlslite-ng, tls3des_server.py), real probes; and what is offered
is read off the wire, so "nothing weaker than 3DES" is checked, not assumed."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable

import pytest

from ocsscale.probes import ProbeEvidence, TlsOptions, https_get_probe, sip_options_probe, tls_probe
from ocsscale.probes.tls3des import CIPHER_3DES, openssl_has_3des, settings
from ocsscale.probes.tlsclient import build_client_context

from .conftest import POOL_FQDN, Certs, StartMember, real_port, unique_loopback

PROBES = (tls_probe, sip_options_probe, https_get_probe)


def trusted(certs: Certs, **options: object) -> TlsOptions:
    return TlsOptions(ca_bundle=str(certs.ca.files.cert), **options)  # type: ignore[arg-type]


def _port(probe: object) -> int:
    return real_port(443 if probe is https_get_probe else 5061)


def test_3des_front_end_fails_without_legacy_tls_naming_cipher_and_setting(
    start_member: StartMember, certs: Certs
) -> None:
    running = start_member(certs.sha1_rsa, extra=["--tls-3des-only"])
    for probe in PROBES:
        modern = probe(running.address, _port(probe), POOL_FQDN, tls=trusted(certs))
        assert not modern.ok and modern.failure == "tls", modern.detail
        assert f"speak only TLS 1.0 with {CIPHER_3DES}" in modern.detail
        assert "`legacy_tls` would allow it" in modern.detail
        assert "`legacy_tls: true` on this server in the pool file" in modern.detail


def test_3des_front_end_passes_with_legacy_tls_and_shows_the_cipher(
    start_member: StartMember, certs: Certs
) -> None:
    running = start_member(certs.sha1_rsa, extra=["--tls-3des-only"])
    for probe in PROBES:
        legacy = probe(
            running.address, _port(probe), POOL_FQDN, tls=trusted(certs, legacy_tls=True)
        )
        assert legacy.ok, legacy.detail
        assert legacy.tls_version == "TLSv1" and legacy.cipher == CIPHER_3DES
        assert legacy.cert_verified is True
        assert legacy.certificate is not None
        assert legacy.certificate.to_x509().signature_hash_algorithm.name == "sha1"
        assert f"(TLSv1, {CIPHER_3DES}, legacy_tls on)" in legacy.detail
        if probe is not tls_probe:
            assert legacy.server == "ocsfe01"  # the request went through the 3DES session


def test_3des_certificate_still_verified_and_named(start_member: StartMember, certs: Certs) -> None:
    running = start_member(certs.sha1_rsa, extra=["--tls-3des-only"])
    port = real_port(5061)
    foreign = TlsOptions(ca_bundle=str(certs.foreign_ca.files.cert), legacy_tls=True)
    untrusted = tls_probe(running.address, port, POOL_FQDN, tls=foreign)
    assert not untrusted.ok and untrusted.failure == "cert-untrusted", untrusted.detail
    wrong = tls_probe(
        running.address, port, "other.contoso.com", tls=trusted(certs, legacy_tls=True)
    )
    assert not wrong.ok and wrong.failure == "name-mismatch", wrong.detail
    unverified = tls_probe(
        running.address, port, POOL_FQDN, tls=TlsOptions(verify=False, legacy_tls=True)
    )
    assert unverified.ok and unverified.cert_verified is False, unverified.detail


def test_this_openssl_has_no_3des_so_the_fallback_is_what_runs() -> None:
    """Debian's OpenSSL 3 (weak-ssl-ciphers compiled out): the reason tls3des.py exists.
    Should a build have it, OpenSSL offers it itself and this test says so."""
    context = build_client_context(TlsOptions(verify=False, legacy_tls=True))
    offered = {c["name"] for c in context.get_ciphers()}
    assert (CIPHER_3DES in offered) == openssl_has_3des()


def test_legacy_openssl_list_offers_nothing_weaker_than_3des() -> None:
    context = build_client_context(TlsOptions(verify=False, legacy_tls=True))
    names = [c["name"] for c in context.get_ciphers()]
    assert "AES128-SHA" in names  # TLS 1.0's AES suite, what a patched 2003 offers
    for name in names:
        assert not any(weak in name for weak in ("RC4", "EXP", "NULL", "MD5", "DES-CBC-")), name
    assert all(c["strength_bits"] >= 112 for c in context.get_ciphers())
    chosen = settings()
    assert chosen.cipherNames == ["3des"] and chosen.macNames == ["sha"]
    assert chosen.keyExchangeNames == ["rsa"]


def _client_hello_suites(conn: socket.socket) -> list[int]:
    """The cipher suites of the ClientHello the peer sends first (RFC 5246 7.4.1.2)."""
    conn.settimeout(10)
    data = b""
    while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    body = data[5 + 4 :]  # record header, handshake header
    at = 2 + 32  # client_version, random
    at += 1 + body[at]  # session id
    size = int.from_bytes(body[at : at + 2], "big")
    raw = body[at + 2 : at + 2 + size]
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


#: the TLS alert handshake_failure, as a server that refuses the hello sends it
REFUSED = bytes.fromhex("15030100020228")


def _probe_a_scripted_server(
    answer: Callable[[socket.socket, int], None], tls: TlsOptions, timeout: float = 5.0
) -> ProbeEvidence:
    """tls_probe (OpenSSL's hello, then the 3DES one) against a loopback listener that
    hands each of the two connections, and its number, to `answer`; bounded in time."""
    listener = socket.create_server((unique_loopback(), 0))
    listener.settimeout(15)
    address, port = listener.getsockname()[:2]

    def serve() -> None:
        for number in range(2):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                answer(conn, number)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        return tls_probe(address, port, POOL_FQDN, tls=tls, timeout=timeout)
    finally:
        thread.join(timeout=15)
        listener.close()


def test_the_3des_hello_offers_3des_alone() -> None:
    """What goes on the wire when OpenSSL's hello is refused: TLS_RSA_WITH_3DES_EDE_CBC_SHA
    and the renegotiation SCSV, nothing else (no RC4, export, single DES, NULL)."""
    if openssl_has_3des():
        pytest.skip("this OpenSSL offers 3DES itself; no fallback hello")
    hellos: list[list[int]] = []

    def refuse(conn: socket.socket, _: int) -> None:
        hellos.append(_client_hello_suites(conn))
        conn.sendall(REFUSED)

    evidence = _probe_a_scripted_server(
        refuse, TlsOptions(verify=False, legacy_tls=True), timeout=10
    )
    assert not evidence.ok and evidence.failure == "tls", evidence.detail
    assert f"offering {CIPHER_3DES}: the server refused" in evidence.detail
    assert len(hellos) == 2, hellos
    assert set(hellos[1]) - {0x00FF} == {0x000A}, [hex(s) for s in hellos[1]]
    weak = {0x0004, 0x0005, 0x0009, 0x0000, 0x0001, 0x0002, 0x0003, 0x0006, 0x0008, 0x003B}
    assert not weak & set(hellos[0]), [hex(s) for s in hellos[0]]


@pytest.mark.parametrize("offered", ["rc4", "null"])
def test_a_server_offering_only_weaker_suites_is_refused(certs: Certs, offered: str) -> None:
    """A server with RC4 only (a 2003 host with 3DES disabled) or NULL only: legacy_tls
    refuses it rather than speak it."""
    from tlslite.errors import TLSError
    from tlslite.tlsconnection import TLSConnection

    from ocsscale_lab.tls3des_server import ServerIdentity

    identity = ServerIdentity(certs.sha1_rsa.cert, certs.sha1_rsa.key)
    server_settings = settings(server=True)
    server_settings.cipherNames = [offered]
    server_settings.macNames = ["sha", "md5"]

    def handshake(conn: socket.socket, _: int) -> None:
        conn.settimeout(10)
        with contextlib.suppress(TLSError, OSError, ssl.SSLError):
            TLSConnection(conn).handshakeServer(
                certChain=identity.chain, privateKey=identity.key, settings=server_settings
            )

    evidence = _probe_a_scripted_server(handshake, trusted(certs, legacy_tls=True))
    assert not evidence.ok and evidence.failure == "tls", evidence.detail
    assert evidence.cipher is None
    # OpenSSL's hello refused, then the 3DES one: legacy_tls went no lower
    assert f"offering {CIPHER_3DES}: the server refused" in evidence.detail


@pytest.mark.parametrize(
    "answer",
    [
        bytes.fromhex("160301000502") + b"\xff" * 5,  # a ServerHello too short to read
        bytes.fromhex("16030100ff") + b"\x00" * 255,  # a handshake message of zeros
        b"HTTP/1.0 400 Bad Request\r\n\r\n",  # not TLS at all
    ],
)
def test_a_garbled_answer_to_the_3des_hello_is_evidence_not_a_crash(answer: bytes) -> None:
    if openssl_has_3des():
        pytest.skip("this OpenSSL offers 3DES itself; no fallback hello")

    def garble(conn: socket.socket, number: int) -> None:
        _client_hello_suites(conn)
        conn.sendall((REFUSED, answer)[number])

    evidence = _probe_a_scripted_server(
        garble, TlsOptions(verify=False, legacy_tls=True), timeout=10
    )
    assert not evidence.ok and evidence.failure in ("tls", "closed", "reset"), evidence.detail
    assert f"offering {CIPHER_3DES}" in evidence.detail or CIPHER_3DES in evidence.detail
