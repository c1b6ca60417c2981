from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

import pytest

from ocsscale.config import load_pool
from ocsscale.config.model import SshTransport, WinRmTransport

from .helpers import EXAMPLES


@pytest.mark.parametrize("name", ["one-armed.yaml", "two-armed-routed.yaml"])
def test_examples_are_valid(name: str) -> None:
    loaded = load_pool(EXAMPLES / name)
    pool = loaded.pool
    assert pool.pool.fqdn == "ocspool.contoso.com"
    assert [fe.address for fe in pool.front_ends] == [
        IPv4Address("10.0.1.41"),
        IPv4Address("10.0.1.42"),
    ]
    assert pool.load_balancer.vip.ip == IPv4Address("10.0.0.40")
    assert loaded.profile.name == "ocs2007r2"
    assert loaded.state_dir == (EXAMPLES / ".ocsscale").resolve()


def test_one_armed_model_mirrors_the_example() -> None:
    loaded = load_pool(EXAMPLES / "one-armed.yaml")
    pool = loaded.pool
    assert pool.version == 1
    assert pool.legacy_fe.name == "ocsfe00"
    assert pool.legacy_fe.os == "windows"  # from its winrm transport
    assert isinstance(pool.legacy_fe.transport, WinRmTransport)
    assert pool.legacy_fe.transport.port == 5986
    assert pool.legacy_fe.transport.verify_tls is True
    assert pool.test_clients[0].fqdn == "client01.contoso.com"  # WinRM connects by FQDN
    assert pool.legacy_fe.transport.connect_to == "fqdn"  # `winrm.connect_to` default
    assert pool.directory.port == 135
    lb = pool.load_balancer
    assert (lb.driver.kind, lb.topology, lb.mode) == ("engine", "one-armed", "full-proxy")
    assert lb.driver.farm_path == "/etc/ocsscale/lb/farm.yaml"  # `driver: engine`, defaults
    assert lb.vip == IPv4Interface("10.0.0.40/16")
    assert lb.backend_address is None
    assert lb.host is not None and lb.host.os == "linux"
    assert isinstance(lb.host.transport, SshTransport)
    assert lb.host.transport.trust_unknown_host_keys is False
    assert lb.host.transport.known_hosts == "~/.ssh/known_hosts"
    assert pool.dns.tsig is not None and pool.dns.tsig.secret.env == "OCSSCALE_TSIG_SECRET"
    assert pool.credentials["lb-admin"].key_file == "~/.ssh/id_ed25519"
    assert pool.host("ocsfe02").address == IPv4Address("10.0.1.42")


def test_two_armed_example_has_a_backend_arm() -> None:
    lb = load_pool(EXAMPLES / "two-armed-routed.yaml").pool.load_balancer
    assert lb.topology == "two-armed-routed"
    assert lb.backend_address == IPv4Interface("10.0.1.40/24")
    assert lb.vip == IPv4Interface("10.0.0.40/24")


def test_position_of_a_value() -> None:
    loaded = load_pool(EXAMPLES / "one-armed.yaml")
    lines = (EXAMPLES / "one-armed.yaml").read_text().splitlines()
    line, col = loaded.position(("load_balancer", "mode"))
    assert lines[line - 1][col - 1 :].startswith("full-proxy")
    line, col = loaded.position(("front_ends", 1, "address"))
    assert lines[line - 1][col - 1 :].startswith("10.0.1.42")
