"""The WinRM stand-in sends packets only to loopback and lab addresses (no root needed).

A TCP check or a DNS server anywhere else is refused before any packet: the
socket and resolver calls are replaced by spies that fail the test if reached,
so nothing is ever sent to the outside addresses named here.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import dns.resolver
import pytest

from ocsscale_lab.winrm_host import sandbox as sandbox_module
from ocsscale_lab.winrm_host.sandbox import HOSTS_FILE, Sandbox, reachable

OUTSIDE = "192.0.2.1"  # TEST-NET-1: never contacted, the spies below stop any attempt


def _no_packets(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    attempts: list[Any] = []

    def refuse_connect(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append(("connect", address))
        raise AssertionError(f"the stand-in tried to connect to {address}")

    def refuse_query(self: Any, qname: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(("dns", list(self.nameservers)))
        raise AssertionError(f"the stand-in asked {self.nameservers} for {qname}")

    monkeypatch.setattr(sandbox_module.socket, "create_connection", refuse_connect)
    monkeypatch.setattr(dns.resolver.Resolver, "resolve", refuse_query)
    return attempts


def _sandbox(tmp_path: Path, **kwargs: Any) -> Sandbox:
    box = Sandbox(tmp_path / "sandbox", **kwargs)
    box.initialise()
    return box


def test_only_loopback_and_lab_addresses_are_reachable() -> None:
    assert reachable("127.0.0.1") and reachable("::1") and reachable("[::1]")
    assert reachable("198.18.0.41") and reachable("198.19.255.1")
    assert not reachable(OUTSIDE) and not reachable("198.20.0.1") and not reachable("10.0.0.40")
    assert not reachable("ocspool.lab.test")


def test_a_tcp_check_outside_the_lab_is_refused_without_a_packet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = _sandbox(tmp_path, dns_server=("127.0.0.1", 9))
    attempts = _no_packets(monkeypatch)
    ok, why = box.tcp_check(OUTSIDE, 443, 1.0)
    assert not ok and f"not {OUTSIDE}" in why and "198.18.0.0/15" in why
    # a name pinned in the sandbox's hosts file to an outside address: refused as well
    hosts = box.to_local(HOSTS_FILE)
    hosts.write_bytes(hosts.read_bytes() + f"{OUTSIDE} outside.example\r\n".encode())
    ok, why = box.tcp_check("outside.example", 443, 1.0)
    assert not ok and f"not {OUTSIDE}" in why
    assert attempts == []


def test_a_dns_server_outside_the_lab_is_never_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {OUTSIDE}\n")
    attempts = _no_packets(monkeypatch)
    from_file = _sandbox(tmp_path / "a", resolv_conf=str(resolv))
    assert from_file.resolve("ocspool.lab.test") == ("TryAgain", [])
    given = _sandbox(tmp_path / "b", dns_server=(OUTSIDE, 53))
    assert given.resolve("ocspool.lab.test") == ("TryAgain", [])
    assert attempts == []


def test_a_tcp_check_inside_the_lab_range_still_connects(tmp_path: Path) -> None:
    box = _sandbox(tmp_path, dns_server=("127.0.0.1", 9))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        assert box.tcp_check("127.0.0.1", port, 5.0) == (True, "")
