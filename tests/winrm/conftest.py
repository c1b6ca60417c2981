"""The WinRM stand-in started as a real process per test, killed at teardown."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from winrm_standin import Pki, StandIn, TinyDns, make_pki, start_ntlm_standin, start_standin


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture()
def tiny_dns() -> Iterator[tuple[TinyDns, tuple[str, int]]]:
    server = TinyDns()
    address = server.start()
    yield server, address
    server.stop()


@pytest.fixture()
def https_standin(
    tmp_path: Path, pki: Pki, tiny_dns: tuple[TinyDns, tuple[str, int]]
) -> Iterator[StandIn]:
    _, (dns_host, dns_port) = tiny_dns
    standin = start_standin(
        tmp_path / "https",
        tls=(pki.server_cert, pki.server_key),
        extra=("--dns-server", f"{dns_host}:{dns_port}", "--services", "Dnscache,WinRM,RTCSRV"),
    )
    yield standin
    standin.stop()


@pytest.fixture()
def http_ntlm_standin(tmp_path: Path) -> Iterator[StandIn]:
    standin = start_ntlm_standin(tmp_path / "http")
    yield standin
    standin.stop()


@pytest.fixture()
def rogue_standin(tmp_path: Path, pki: Pki) -> Iterator[StandIn]:
    standin = start_standin(
        tmp_path / "rogue",
        tls=(pki.rogue_cert, pki.rogue_key),
        auth="basic",
        extra=("--dns-server", "127.0.0.1:9"),
    )
    yield standin
    standin.stop()


@pytest.fixture()
def tcp_listener() -> Iterator[int]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()
