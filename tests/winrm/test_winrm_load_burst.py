"""load_burst: the client load's requests run on the Windows host, against the stand-in.

The stand-in is a real process that resolves through its own DNS server and
hosts file, connects for real and verifies the TLS servers' certificates
against the CA it trusts (`--trusted-ca`); the servers here are real TLS
listeners on loopback, one with a certificate of that CA, one with a rogue's.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from winrm_standin import Pki, StandIn, TinyDns, host_for, start_standin

from ocsscale.errors import TransportError, UsageError
from ocsscale.probes.load import LoadTarget
from ocsscale.probes.load_windows import WindowsLoadRunner
from ocsscale.secrets import Secret
from ocsscale.transports.winrm import WinRMHost
from ocsscale.transports.winrm_windows import _parse_burst
from ocsscale_lab.ca import create_ca, issue_server_cert

POOL = "pool.lab.test"
FE = "fe1.lab.test"


class TlsListener:
    """A TLS server on 127.0.0.1 that completes handshakes and closes."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            with contextlib.suppress(OSError), self.context.wrap_socket(conn, server_side=True):
                self.handshakes += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture()
def servers(tmp_path: Path) -> Iterator[SimpleNamespace]:
    ca = create_ca(tmp_path / "ca", common_name="enterprise CA")
    rogue = create_ca(tmp_path / "rogue", common_name="rogue CA")
    names = {"pool_fqdn": POOL, "fe_fqdn": FE, "sip_domain": "lab.test"}
    good = issue_server_cert(ca, tmp_path / "ca", file_stem="fe1", **names)
    bad = issue_server_cert(rogue, tmp_path / "rogue", file_stem="fe1", **names)
    listeners = [TlsListener(good.cert, good.key), TlsListener(bad.cert, bad.key)]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: a front end that is down
    yield SimpleNamespace(
        ca=ca.files.cert,
        good=listeners[0],
        rogue=listeners[1],
        refused_port=refused_port,
        fe_der=x509.load_pem_x509_certificate(good.cert.read_bytes()).public_bytes(Encoding.DER),
    )
    for listener in listeners:
        listener.close()


@pytest.fixture()
def standin(
    tmp_path: Path, pki: Pki, servers: SimpleNamespace, tiny_dns: tuple[TinyDns, tuple[str, int]]
) -> Iterator[StandIn]:
    dns_server, (dns_host, dns_port) = tiny_dns
    dns_server.records[POOL] = "127.0.0.1"
    running = start_standin(
        tmp_path / "standin",
        tls=(pki.server_cert, pki.server_key),
        extra=("--dns-server", f"{dns_host}:{dns_port}", "--trusted-ca", str(servers.ca)),
    )
    yield running
    running.stop()


@pytest.fixture()
def host(standin: StandIn, pki: Pki) -> Iterator[WinRMHost]:
    made = host_for(standin, auth="basic", ca=pki.ca_cert)
    yield made
    made.close()


def test_a_burst_resolves_connects_and_verifies_on_the_host(
    host: WinRMHost, servers: SimpleNamespace, tcp_listener: int
) -> None:
    targets = [
        (servers.good.port, "tls"),
        (servers.rogue.port, "tls"),
        (servers.refused_port, "tcp"),
        (tcp_listener, "tcp"),
    ]
    burst = host.load_burst(POOL, targets, count=8, interval=0.0, duration=5.0, timeout=2.0)

    assert [r.port for r in burst.requests] == [p for p, _ in targets] * 2
    outcome = {r.port: r for r in burst.requests}
    good = outcome[servers.good.port]
    assert (good.ok, good.error, good.address) == (True, "", "127.0.0.1")
    assert good.certificate == servers.fe_der  # the FE's own certificate, as Windows saw it
    rogue = outcome[servers.rogue.port]
    assert (rogue.ok, rogue.error) == (False, "cert-invalid")
    assert "certificate is invalid" in rogue.detail
    assert rogue.certificate is None
    down = outcome[servers.refused_port]
    assert (down.ok, down.error) == (False, "refused")
    bare = outcome[tcp_listener]
    assert (bare.ok, bare.certificate) == (True, None)
    assert servers.good.handshakes == 2
    times = [r.t_ms for r in burst.requests]
    assert times == sorted(times) and times[-1] <= burst.elapsed_ms


def test_the_host_resolves_through_its_hosts_file_and_dns(
    host: WinRMHost, standin: StandIn, servers: SimpleNamespace
) -> None:
    unknown = host.load_burst(
        "nowhere.lab.test", [(servers.good.port, "tls")], count=2, interval=0.0, duration=5.0,
        timeout=2.0,
    )  # fmt: skip
    assert [(r.ok, r.error, r.address) for r in unknown.requests] == [(False, "resolve", "")] * 2

    # pinned in the hosts file to an address where nothing listens: refused there
    with open(standin.hosts_file, "ab") as hosts:
        hosts.write(f"127.0.0.2 {POOL}\r\n".encode())
    pinned = host.load_burst(
        POOL, [(servers.good.port, "tls")], count=1, interval=0.0, duration=5.0, timeout=2.0
    )
    assert [(r.address, r.error) for r in pinned.requests] == [("127.0.0.2", "refused")]


def test_a_burst_out_of_its_bounds_is_refused_before_anything_is_sent(host: WinRMHost) -> None:
    for kwargs in (
        {"count": 51, "interval": 0.1, "duration": 5.0, "timeout": 2.0},
        {"count": 5, "interval": 0.1, "duration": 11.0, "timeout": 2.0},
        {"count": 5, "interval": 0.1, "duration": 5.0, "timeout": 0.0},
    ):
        with pytest.raises(TransportError, match="load burst"):
            host.load_burst(POOL, [(5061, "tls")], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TransportError, match="host name"):
        host.load_burst("a b", [(5061, "tls")], count=1, interval=0, duration=1, timeout=1)
    with pytest.raises(TransportError, match="targets"):
        host.load_burst(POOL, [(5061, "sip")], count=1, interval=0, duration=1, timeout=1)


GOOD = {"t": 5, "port": 5061, "address": "198.18.0.10", "ok": True, "error": "", "detail": ""}


@pytest.mark.parametrize(
    "answer",
    [
        {"results": []},  # no elapsed
        {"elapsed": 10, "results": [dict(GOOD, latency=1)]},  # no cert field
        {"elapsed": 10, "results": [dict(GOOD, latency=1, cert=0)]},  # no such certificate
        {"elapsed": 10, "results": [dict(GOOD, latency=1, cert=-1, ok="yes")]},
        {"elapsed": 10, "results": [dict(GOOD, latency=1, cert=-1, error="refused")]},
        {"elapsed": 10, "results": [dict(GOOD, latency=1, cert=-1, port=9)]},
        {"elapsed": 10, "results": [dict(GOOD, latency=1, cert=-1, t=11)]},  # after the end
        {"elapsed": 10, "results": [dict(GOOD, latency=1, cert=-1)] * 3},  # more than sent
        {"elapsed": 10, "results": "x"},
        {"elapsed": 10, "results": [], "certificates": ["not base64!"]},
    ],
)
def test_an_unreadable_answer_is_refused(answer: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError, KeyError)):
        _parse_burst(answer, 2, {5061})


def test_a_readable_answer_is_taken() -> None:
    burst = _parse_burst(
        {"elapsed": 10, "results": dict(GOOD, latency=1, cert=-1), "certificates": []}, 2, {5061}
    )
    assert burst.requests[0].address == "198.18.0.10" and burst.requests[0].ok


def test_the_windows_load_source_reports_as_a_load_runner_does(
    host: WinRMHost, servers: SimpleNamespace
) -> None:
    targets = [
        LoadTarget(POOL, servers.good.port, "sip-tls", POOL),
        LoadTarget(POOL, servers.refused_port, "tcp", POOL),
    ]
    runner = WindowsLoadRunner(
        host,
        targets,
        rate=10.0,
        duration=60.0,
        identify=lambda e: "fe1" if e.certificate and FE in e.certificate.san_dns else None,
        timeout=1.0,
        burst_seconds=0.5,
    )
    runner.mark("preflight/check")
    runner.start()
    for _ in range(200):  # bounded: until a few bursts have come back
        if runner.snapshot().requests >= 6:
            break
        time.sleep(0.05)
    runner.mark("cutover/switch")
    report = runner.stop()
    assert report.stopped_by == "caller" and runner.done
    tls_key = f"tls {POOL}:{servers.good.port}"
    tcp_key = f"tcp {POOL}:{servers.refused_port}"
    assert report.by_target[tls_key]["by_server"].get("fe1", 0) >= 1
    assert report.by_target[tls_key]["failed"] == 0
    assert report.by_target[tcp_key]["ok"] == 0 and report.by_target[tcp_key]["failed"] >= 1
    assert report.by_target[tcp_key]["errors"].keys() == {"refused"}
    assert "preflight/check" in report.labels
    assert report.requests == sum(t["requests"] for t in report.labels.values())


def test_a_windows_load_source_refuses_what_it_cannot_do(host: WinRMHost) -> None:
    two_names = [LoadTarget("a.test", 1, "tls", "a.test"), LoadTarget("b.test", 1, "tls", "b.test")]
    with pytest.raises(UsageError, match="one name"):
        WindowsLoadRunner(host, two_names, rate=1.0, duration=10.0, identify=lambda e: None)
    with pytest.raises(UsageError, match="over the limit"):
        WindowsLoadRunner(host, two_names[:1], rate=21.0, duration=10.0, identify=lambda e: None)


def test_a_failing_winrm_burst_is_counted_not_dropped(
    standin: StandIn, servers: SimpleNamespace, pki: Pki
) -> None:
    wrong = host_for(standin, auth="basic", ca=pki.ca_cert, password=Secret("not-it", "test"))
    runner = WindowsLoadRunner(
        wrong,
        [LoadTarget(POOL, servers.good.port, "tls", POOL)],
        rate=1.0,
        duration=30.0,
        identify=lambda e: None,
        timeout=1.0,
    )
    runner.start()
    for _ in range(200):
        if runner.snapshot().failed:
            break
        time.sleep(0.05)
    report = runner.stop()
    wrong.close()
    assert report.by_target["winrm"]["errors"] == {"winrm": report.failed}
    assert report.failed >= 1 and report.totals["ok"] == 0
    assert "not-it" not in str(report.to_dict())
