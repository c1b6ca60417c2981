"""The gate's Windows findings, proven where the host answers: static address (WMI), IIS
loopback check (Lsa registry), no NAT between front ends (the peer's TCP connections,
through .NET, while a connection is held; on a German Windows too). The front ends are
WinRM stand-ins on 127.0.0.41 and .42."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from windows_pool import WindowsPool, windows_pool

from ocsscale.actions.fe_gate_windows import loopback_findings, peer_finding, static_findings
from ocsscale.transports.windows_facts import loopback_allows

pytestmark = pytest.mark.timeout(120)


def test_the_loopback_check_allows_the_pool_name_only_when_set() -> None:
    assert loopback_allows(1, [], "pool.lab.test")[0]
    assert loopback_allows(None, ["Pool.Lab.Test"], "pool.lab.test")[0]
    ok, why = loopback_allows(0, ["other.lab.test"], "pool.lab.test")
    assert not ok and "lists other.lab.test, not pool.lab.test" in why and "MSV1_0" in why


@pytest.fixture()
def pool(tmp_path: Path) -> Iterator[WindowsPool]:
    with windows_pool(tmp_path) as made:
        yield made


def _network(pool: WindowsPool, fe: str, **values: object) -> None:
    path = pool.standins[fe].sandbox / "network.json"
    state = json.loads(path.read_text())
    state.update(values)
    path.write_text(json.dumps(state))


def test_static_address_is_read_from_wmi(pool: WindowsPool) -> None:
    ctx, hosts = pool.context()
    with hosts:
        fe = ctx.pool.front_ends[0]
        [static] = static_findings(ctx, fe)
        assert static["ok"] and static["proven"] and "DHCPEnabled false" in static["message"]
        _network(pool, "fe01", adapters=[{"addresses": ["127.0.0.41"], "dhcp": True}])
        [dhcp] = static_findings(ctx, fe)
        assert not dhcp["ok"] and dhcp["message"] == "127.0.0.41 is configured by DHCP"
        _network(pool, "fe01", adapters=[{"addresses": ["127.0.0.77"], "dhcp": False}])
        [missing] = static_findings(ctx, fe)
        assert not missing["ok"] and "no network adapter holds 127.0.0.41" in missing["message"]


def test_the_iis_loopback_check_is_read_from_the_registry(pool: WindowsPool) -> None:
    ctx, hosts = pool.context()
    with hosts:
        fe = ctx.pool.front_ends[0]
        [refused] = loopback_findings(ctx, fe)
        assert not refused["ok"] and refused["proven"]
        assert "BackConnectionHostNames lists nothing, not pool.lab.test" in refused["message"]
        _network(pool, "fe01", back_connection_host_names=["fe01.lab.test", "pool.lab.test"])
        [listed] = loopback_findings(ctx, fe)
        assert listed["ok"] and "BackConnectionHostNames lists pool.lab.test" in listed["message"]
        _network(pool, "fe01", back_connection_host_names=[], disable_loopback_check=1)
        [off] = loopback_findings(ctx, fe)
        assert off["ok"] and "DisableLoopbackCheck is 1" in off["message"]


@pytest.fixture()
def fe02_listener() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.42", 0))
    listener.listen(4)
    yield listener.getsockname()[1]
    listener.close()


def test_no_nat_is_proven_by_the_peers_connections(pool: WindowsPool, fe02_listener: int) -> None:
    ctx, hosts = pool.context()
    with hosts:
        fe01, fe02 = ctx.pool.front_ends
        result = peer_finding(ctx, fe01, fe02, fe02_listener, timeout=2.0)
    assert result["ok"] and result["proven"], result
    assert "which saw it from 127.0.0.41 (its TCP connections): no NAT" in result["message"]


def test_no_nat_is_proven_on_a_german_windows_too(tmp_path: Path, fe02_listener: int) -> None:
    with windows_pool(tmp_path, "--locale", "de") as made:
        ctx, hosts = made.context()
        with hosts:
            fe01, fe02 = ctx.pool.front_ends
            result = peer_finding(ctx, fe01, fe02, fe02_listener, timeout=2.0)
    assert result["ok"] and result["proven"], result
    assert "which saw it from 127.0.0.41" in result["message"]


def test_nat_between_front_ends_fails_naming_the_address_seen(
    tmp_path: Path, fe02_listener: int
) -> None:
    with windows_pool(tmp_path, "--nat-source", "127.0.0.99") as made:
        ctx, hosts = made.context()
        with hosts:
            fe01, fe02 = ctx.pool.front_ends
            result = peer_finding(ctx, fe01, fe02, fe02_listener, timeout=2.0)
    assert not result["ok"] and result["proven"]
    assert "fe02 saw the connection from 127.0.0.99, not from 127.0.0.41" in result["message"]
    assert "NAT" in result["message"]


def test_an_unreachable_peer_fails(pool: WindowsPool) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.42", 0))
    port = closed.getsockname()[1]
    closed.close()
    ctx, hosts = pool.context()
    with hosts:
        fe01, fe02 = ctx.pool.front_ends
        result = peer_finding(ctx, fe01, fe02, port, timeout=2.0)
    assert not result["ok"] and "cannot reach fe02 (127.0.0.42" in result["message"]
