"""The pool-member stand-in as a service: lifecycle, errors, SIP details, pool resolution."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ocsscale.probes import TlsOptions, sip_options_probe, tcp_probe
from ocsscale_lab.poolmember import PoolMemberConfig, command_line, parse_args

from .conftest import (
    POOL_FQDN,
    Certs,
    PoolMemberProcess,
    StartMember,
    poolmember_command,
    real_port,
    unique_loopback,
)


def run_to_exit(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def exchange(address: str, port: int, request: bytes, wait_for: bytes = b"\r\n\r\n") -> bytes:
    """Send raw bytes and read until ``wait_for`` has been seen (or the server closes)."""
    with socket.create_connection((address, port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while wait_for not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def options(call_id: str, *, compact: bool = False, method: str = "OPTIONS") -> bytes:
    via, frm, to, cid, length = (
        ("v", "f", "t", "i", "l")
        if compact
        else (
            "Via",
            "From",
            "To",
            "Call-ID",
            "Content-Length",
        )
    )
    return (
        f"{method} sip:{POOL_FQDN} SIP/2.0\r\n"
        f"{via}: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK{call_id}\r\n"
        "Max-Forwards: 70\r\n"
        f"{to}: <sip:{POOL_FQDN}>\r\n"
        f"{frm}: <sip:test@{POOL_FQDN}>;tag=abc\r\n"
        f"{cid}: {call_id}\r\n"
        f"CSeq: 7 {method}\r\n"
        f"{length}: 0\r\n\r\n"
    ).encode()


def test_sigterm_stops_cleanly_and_removes_pidfile(start_member: StartMember, certs: Certs) -> None:
    running = start_member(certs.good)
    assert int(running.pidfile.read_text()) == running.process.pid
    held = socket.create_connection((running.address, real_port(135)), timeout=5)
    try:
        assert held.recv(1024).startswith(b"ocsscale-poolmember server=ocsfe01")
        assert running.stop() == 0
        assert not running.pidfile.exists()
        held.settimeout(5)
        assert held.recv(1024) == b""  # open connections are closed too, not left hanging
    finally:
        held.close()
    assert tcp_probe(running.address, real_port(5061)).failure == "refused"
    assert "stopping" in running.log.read_text()


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    base = poolmember_command(name="x", address="127.0.0.1", cert=None, pidfile=tmp_path / "x.pid")
    result = run_to_exit([*base, "--close=1"])
    assert result.returncode == 2
    assert "--close: 1 not in --ports" in result.stderr
    result = run_to_exit([*base, "--ports=5061,http"])
    assert result.returncode == 2
    assert "not a TCP port: 'http'" in result.stderr
    result = run_to_exit([*base, "--ports=5061,²"])  # a digit to isdigit(), not to int()
    assert result.returncode == 2
    assert "not a TCP port: '²'" in result.stderr


def test_missing_certificate_exits_1_with_reason(tmp_path: Path) -> None:
    command = poolmember_command(
        name="x", address=unique_loopback(), cert=None, pidfile=tmp_path / "x.pid"
    )
    result = run_to_exit(command)
    assert result.returncode == 1
    assert result.stderr.strip() == "poolmember x: --cert and --key are needed for the TLS ports"
    assert not (tmp_path / "x.pid").exists()


def test_port_in_use_exits_1_without_traceback(
    start_member: StartMember, certs: Certs, tmp_path: Path
) -> None:
    running = start_member(certs.good)
    command = poolmember_command(
        name="second", address=running.address, cert=certs.good, pidfile=tmp_path / "2.pid"
    )
    result = run_to_exit(command)
    assert result.returncode == 1
    assert f"cannot listen on {running.address}:{real_port(5061)}" in result.stderr
    assert "Traceback" not in result.stderr
    assert tcp_probe(running.address, real_port(5061)).ok  # the first one is unharmed


def test_sip_dialogue_details(member: PoolMemberProcess) -> None:
    port = real_port(5060)
    # Two requests on one connection, the second in compact form: both answered in order.
    with socket.create_connection((member.address, port), timeout=5) as sock:
        sock.sendall(options("first") + options("second", compact=True))
        data = b""
        while data.count(b"\r\n\r\n") < 2:
            chunk = sock.recv(65536)
            assert chunk, f"closed early after {data!r}"
            data += chunk
    first, second = data.split(b"\r\n\r\n")[:2]
    assert first.startswith(b"SIP/2.0 200 OK\r\n") and b"Call-ID: first" in first
    assert b"branch=z9hG4bKsecond" in second and b"Call-ID: second" in second
    assert b"CSeq: 7 OPTIONS" in second and b"Server: ocsfe01" in second
    assert b"From: <sip:test@ocspool.contoso.com>;tag=abc" in second
    # Other methods are refused; an ACK gets no answer at all.
    refused = exchange(member.address, port, options("inv", method="INVITE"))
    assert refused.startswith(b"SIP/2.0 405 Method Not Allowed\r\n")
    after_ack = exchange(member.address, port, options("ack", method="ACK") + options("ping"))
    assert after_ack.startswith(b"SIP/2.0 200 OK") and b"Call-ID: ping" in after_ack
    garbage = exchange(member.address, port, b"HELLO\r\n\r\n")
    assert garbage.startswith(b"SIP/2.0 400 Bad Request")
    # "²" is a digit to str.isdigit() but not to int(): a 400, not a dead connection
    odd_length = options("odd").replace(b"Content-Length: 0", "Content-Length: ²".encode())
    assert exchange(member.address, port, odd_length).startswith(b"SIP/2.0 400 Bad Request")


def test_banner_port_echoes_after_the_banner(member: PoolMemberProcess) -> None:
    reply = exchange(member.address, real_port(8404), b"ping-123\n", wait_for=b"ping-123\n")
    banner, echoed = reply.split(b"\r\n", 1)
    assert banner.startswith(b"ocsscale-poolmember server=ocsfe01 port=")
    assert echoed == b"ping-123\n"


def test_bare_tcp_checks_on_tls_ports_do_not_hurt(member: PoolMemberProcess, certs: Certs) -> None:
    for _ in range(5):  # what a load balancer's TCP health check does
        socket.create_connection((member.address, real_port(5061)), timeout=5).close()
    evidence = sip_options_probe(
        member.address,
        real_port(5061),
        POOL_FQDN,
        tls=TlsOptions(ca_bundle=str(certs.ca.files.cert)),
    )
    assert evidence.ok, evidence.detail


def _can_use_private_hosts_file() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "true"], capture_output=True, timeout=10, check=False
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _can_use_private_hosts_file(), reason="needs root and unshare --mount")
def test_pool_resolution_changes_only_after_restart(
    start_member: StartMember, certs: Certs, tmp_path: Path
) -> None:
    """A hosts-file pin is seen by the service only once it restarts, as with the real one.

    The service runs in a private mount namespace whose /etc/hosts is a file of
    this test, so the machine's own hosts file is never touched. The addresses
    are only text in the answers: nothing is sent to them.
    """
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n198.18.0.30 {POOL_FQDN}\n")
    wrap = [
        "unshare",
        "--mount",
        "--propagation=private",
        "sh",
        "-c",
        'mount --bind "$0" /etc/hosts && exec "$@"',
        str(hosts),
    ]
    tls = TlsOptions(ca_bundle=str(certs.ca.files.cert))

    def resolved(running: PoolMemberProcess) -> str | None:
        evidence = sip_options_probe(running.address, real_port(5061), POOL_FQDN, tls=tls)
        assert evidence.ok, evidence.detail
        return evidence.pool_resolved

    first = start_member(certs.good, pool_fqdn=POOL_FQDN, wrap=wrap)
    assert resolved(first) == "198.18.0.30"
    # Pin the pool FQDN to the new FE, in place (the bind mount follows the inode).
    with hosts.open("r+") as handle:
        handle.seek(0)
        handle.truncate()
        handle.write(f"127.0.0.1 localhost\n198.18.0.41 {POOL_FQDN}\n")
    assert resolved(first) == "198.18.0.30"  # not restarted: still the old answer
    assert first.stop() == 0
    second = start_member(certs.good, pool_fqdn=POOL_FQDN, wrap=wrap)
    assert resolved(second) == "198.18.0.41"


def test_module_runs_as_documented() -> None:
    result = run_to_exit([sys.executable, "-m", "ocsscale_lab.poolmember", "--help"])
    assert result.returncode == 0
    assert "not an OCS server" in result.stdout


def test_command_line_round_trips_through_the_parser(tmp_path: Path) -> None:
    argv = command_line(
        name="ocsfe02",
        listen="198.18.0.42",
        ports=[5061, 5060, 135, 444],
        tls_ports=[5061, 444],
        pool_fqdn=POOL_FQDN,
        pidfile=tmp_path / "fe.pid",
        cert=tmp_path / "fe.pem",
        key=tmp_path / "fe-key.pem",
        closed_ports=[444],
        legacy_tls_only=True,
    )
    assert argv[1:3] == ["-m", "ocsscale_lab.poolmember"]
    config = parse_args(argv[3:])
    assert config == PoolMemberConfig(
        name="ocsfe02",
        listen="198.18.0.42",
        ports=(5061, 5060, 135, 444),
        tls_ports=frozenset({5061, 444}),
        sip_ports=frozenset({5060, 5061}),
        https_ports=frozenset({443, 444}),
        closed_ports=frozenset({444}),
        pool_fqdn=POOL_FQDN,
        pidfile=tmp_path / "fe.pid",
        cert=tmp_path / "fe.pem",
        key=tmp_path / "fe-key.pem",
        legacy_tls_only=True,
    )
