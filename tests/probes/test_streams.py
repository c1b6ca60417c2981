"""Probes over streams that are not sockets, and the failures a connector or server can cause."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsscale.probes import (
    ConnectError,
    Connector,
    Stream,
    TlsOptions,
    https_get_probe,
    sip_options_probe,
    socket_connector,
    tcp_probe,
    tls_probe,
)

from .conftest import POOL_FQDN, Certs, PoolMemberProcess, real_port, unique_loopback
from .sshforward import channel_connector, ssh_forwarding_connector


class BareStream:
    """Only the four Stream methods: no getpeername, no getsockname, not a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.sent = b""

    def sendall(self, data: bytes) -> None:
        self.sent += data
        self._sock.sendall(data)

    def recv(self, n: int) -> bytes:
        return self._sock.recv(n)

    def close(self) -> None:
        self._sock.close()

    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)


def trusted(certs: Certs) -> TlsOptions:
    return TlsOptions(ca_bundle=str(certs.ca.files.cert))


def test_probes_over_a_bare_stream(member: PoolMemberProcess, certs: Certs) -> None:
    streams: list[BareStream] = []

    def connect(host: str, port: int, timeout: float) -> Stream:
        stream = BareStream(socket.create_connection((host, port), timeout=timeout))
        streams.append(stream)
        return stream

    evidence = sip_options_probe(
        member.address, real_port(5060), POOL_FQDN, transport="tcp", connect=connect
    )
    assert evidence.ok, evidence.detail
    assert evidence.peer_address is None  # the stream cannot tell, and the probe copes
    request = streams[-1].sent.decode()
    # Without a local address the Via still follows RFC 3261's grammar.
    assert "Via: SIP/2.0/TCP probe.invalid;branch=z9hG4bK" in request
    assert request.startswith(f"OPTIONS sip:{POOL_FQDN};transport=tcp SIP/2.0\r\n")
    for header in ("Max-Forwards: 70", "CSeq: 1 OPTIONS", "Content-Length: 0", "Call-ID: "):
        assert f"\r\n{header}" in request
    secure = https_get_probe(
        member.address, real_port(443), POOL_FQDN, tls=trusted(certs), connect=connect
    )
    assert secure.ok and secure.server == "ocsfe01"
    assert streams[-1].sent.startswith(b"\x16\x03")  # a TLS record went over the bare stream


@pytest.fixture(scope="module")
def ssh_connector() -> Iterator[Connector]:
    with ssh_forwarding_connector() as transport:
        yield channel_connector(transport)


def test_probes_over_paramiko_channels(
    member: PoolMemberProcess, certs: Certs, ssh_connector: Connector
) -> None:
    connect = ssh_connector  # a real paramiko Channel per probe
    results = [
        tcp_probe(member.address, real_port(135), connect=connect, banner_wait=5),
        tls_probe(member.address, real_port(5061), POOL_FQDN, tls=trusted(certs), connect=connect),
        sip_options_probe(
            member.address, real_port(5061), POOL_FQDN, tls=trusted(certs), connect=connect
        ),
        sip_options_probe(
            member.address, real_port(5060), POOL_FQDN, transport="tcp", connect=connect
        ),
        https_get_probe(
            member.address, real_port(444), POOL_FQDN, tls=trusted(certs), connect=connect
        ),
    ]
    for evidence in results:
        assert evidence.ok, evidence.detail
    # The bare TLS probe sends nothing, so only the others hear the server's name.
    assert [e.server for e in results] == ["ocsfe01", None, "ocsfe01", "ocsfe01", "ocsfe01"]
    assert results[1].certificate is not None and results[1].certificate.subject_cn == POOL_FQDN


def test_refused_through_a_channel_is_a_failure_not_an_exception(
    ssh_connector: Connector,
) -> None:
    address = unique_loopback()  # nothing listens there
    evidence = tcp_probe(address, 5061, connect=ssh_connector)
    assert not evidence.ok
    assert evidence.failure == "network"
    assert evidence.detail == (
        f"connect to {address}:5061: the remote host could not open the connection (Connect failed)"
    )


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """Accepts connections and never says anything."""
    listener = socket.create_server((unique_loopback(), 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[:2]
    stop.set()
    thread.join(timeout=5)
    listener.close()
    for conn in held:
        conn.close()


def test_silent_server_times_out_every_probe(silent_server: tuple[str, int]) -> None:
    host, port = silent_server
    quiet = tcp_probe(host, port, banner_wait=0.2)
    assert quiet.ok and quiet.detail.endswith("no banner")
    for evidence in (
        sip_options_probe(host, port, POOL_FQDN, transport="tcp", timeout=0.5),
        tls_probe(host, port, POOL_FQDN, timeout=0.5),
        https_get_probe(host, port, POOL_FQDN, timeout=0.5),
    ):
        assert not evidence.ok
        assert evidence.failure == "timeout", evidence.detail
        assert "timed out" in evidence.detail


def test_server_that_hangs_up_is_closed_or_reset() -> None:
    listener = socket.create_server((unique_loopback(), 0))
    host, port = listener.getsockname()[:2]

    def hang_up() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        evidence = sip_options_probe(host, port, POOL_FQDN, transport="tcp", timeout=5)
    finally:
        thread.join(timeout=5)
        listener.close()
    assert not evidence.ok
    assert evidence.failure in ("closed", "reset")


@pytest.mark.parametrize(
    ("error", "failure", "text"),
    [
        (ConnectError("jump host said no"), "network", "jump host said no"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "unreachable", "name"),
        (TimeoutError(), "timeout", "timed out"),
    ],
)
def test_connector_errors_become_evidence(error: Exception, failure: str, text: str) -> None:
    def connect(host: str, port: int, timeout: float) -> Stream:
        raise error

    evidence = sip_options_probe("198.18.0.41", 5061, POOL_FQDN, connect=connect)
    assert not evidence.ok
    assert evidence.failure == failure
    assert text in evidence.detail
    assert evidence.detail.startswith("connect to 198.18.0.41:5061: ")


def test_default_connector_is_a_socket(member: PoolMemberProcess) -> None:
    stream = socket_connector(member.address, real_port(135), 5.0)
    try:
        assert isinstance(stream, socket.socket)
        assert isinstance(stream, Stream)
    finally:
        stream.close()


def test_unreadable_ca_bundle_is_reported(member: PoolMemberProcess, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    evidence = tls_probe(
        member.address, real_port(5061), POOL_FQDN, tls=TlsOptions(ca_bundle=str(missing))
    )
    assert not evidence.ok and evidence.failure == "tls"
    assert (
        evidence.detail == f"cannot load CA certificates from {missing}: No such file or directory"
    )
