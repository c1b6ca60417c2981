"""The lab's pure parts: addresses, DNS records, the pool file (no root needed)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from ocsscale.config.loader import load_pool
from ocsscale.errors import UsageError
from ocsscale_lab import dns, poolfile
from ocsscale_lab.state import LabState
from ocsscale_lab.topology import LAB_RANGE, build

LAB_NET = ipaddress.ip_network(LAB_RANGE)


@pytest.mark.parametrize("kind", ["one-armed", "two-armed-routed"])
def test_every_address_is_in_the_benchmark_range_and_unique(kind: str) -> None:
    topo = build("tlab", kind, 12)  # type: ignore[arg-type]
    addresses = [i.address for h in topo.hosts for i in h.interfaces]
    assert all(ipaddress.ip_address(a) in LAB_NET for a in addresses)
    assert len(addresses) == len(set(addresses))
    assert len({h.name for h in topo.hosts}) == len(topo.hosts)
    assert all(ns.startswith("tlab-") for ns in topo.namespaces)


def test_walkthrough_addresses() -> None:
    one = build("tlab", "one-armed", 2)
    assert one.host("ocsfe00").address == "198.18.0.30"
    assert one.host("lb01").address == "198.18.0.39"
    assert [h.address for h in one.by_role("fe")] == ["198.18.0.41", "198.18.0.42"]
    two = build("tlab", "two-armed-routed", 2)
    assert [h.address for h in two.by_role("fe")] == ["198.19.0.41", "198.19.0.42"]
    assert two.host("ocsfe01").routes == (("default", "198.19.0.40"),)
    assert two.host("client01").routes == (("198.19.0.0/24", "198.18.0.39"),)
    assert two.host("lb01").forwarding
    assert not build("tlab", "two-armed-routed", 2, lb_forwarding=False).host("lb01").forwarding


@pytest.mark.parametrize(
    ("name", "kind", "fes"),
    [
        ("Bad", "one-armed", 2),
        ("x" * 13, "one-armed", 2),
        ("ok", "star", 2),
        ("ok", "one-armed", 0),
    ],
)
def test_invalid_requests_are_usage_errors(name: str, kind: str, fes: int) -> None:
    with pytest.raises(UsageError):
        build(name, kind, fes)  # type: ignore[arg-type]


def test_dns_records_point_the_pool_at_the_legacy_fe() -> None:
    topo = build("tlab", "two-armed-routed", 2)
    records = {(r.name, r.type): r.value for r in dns.forward_records(topo)}
    assert records[("ocspool", "A")] == "198.18.0.30"
    assert records[("sip", "A")] == "198.18.0.30"  # moves with the pool name
    assert records[("_sipinternaltls._tcp", "SRV")] == "0 0 5061 ocsfe00.lab.test."
    reverse = dns.reverse_zones(topo)
    assert set(reverse) == {"0.18.198.in-addr.arpa", "0.19.198.in-addr.arpa"}
    assert any(
        r.name == "41" and r.value == "ocsfe01.lab.test." for r in reverse["0.19.198.in-addr.arpa"]
    )


@pytest.mark.parametrize("kind", ["one-armed", "two-armed-routed"])
def test_lab_pool_file_passes_check(tmp_path: Path, kind: str) -> None:
    state = LabState("tlab", kind, 2, True, tmp_path)  # type: ignore[arg-type]
    text = poolfile.render(state, state.topo())
    path = tmp_path / "pool.yaml"
    path.write_text(text)
    loaded = load_pool(path)
    pool = loaded.pool
    assert pool.load_balancer.driver.kind == "engine"
    assert pool.load_balancer.host is not None and pool.load_balancer.host.name == "lb01"
    assert pool.legacy_fe.address == ipaddress.ip_address("198.18.0.30")
    assert [c.transport.kind for c in pool.test_clients] == ["ssh", "winrm"]
    # Credentials by reference only: files under the lab directory.
    windows = pool.credentials["lab-windows"].password
    assert windows is not None and windows.file == str(tmp_path / "secrets" / "winrm-password")
    assert pool.dns.tsig is not None and pool.dns.tsig.secret.file is not None


def test_windows_front_ends_in_the_pool_file(tmp_path: Path) -> None:
    """`--fe-os windows`: the legacy FE and the new FEs reached over WinRM (HTTPS, the
    lab CA), recorded in the lab state; a bad value is a usage error."""
    state = LabState("tlab", "one-armed", 2, True, tmp_path, fe_os="windows")
    state.save()
    assert json.loads(state.state_file.read_text())["fe_os"] == "windows"
    topo = state.topo()
    assert [h.os for h in topo.hosts if h.runs_poolmember] == ["windows"] * 3
    assert not any(h.runs_sshd for h in topo.hosts if h.runs_poolmember)
    path = tmp_path / "pool.yaml"
    path.write_text(poolfile.render(state, topo))
    pool = load_pool(path).pool
    assert pool.legacy_fe.transport.kind == "winrm"
    assert [fe.transport.kind for fe in pool.front_ends] == ["winrm", "winrm"]
    assert pool.front_ends[0].transport.scheme == "https"
    with pytest.raises(UsageError, match="--fe-os"):
        build("tlab", fe_os="macos")


@pytest.mark.parametrize("kind", ["one-armed", "two-armed-routed"])
def test_an_lb_pair_has_two_hosts_and_floating_gateways(kind: str) -> None:
    topo = build("tlab", kind, 2, lb_pair=True)  # type: ignore[arg-type]
    lbs = topo.by_role("lb")
    assert [h.name for h in lbs] == ["lb01", "lb02"]
    assert [h.address for h in lbs] == ["198.18.0.37", "198.18.0.38"]
    owned = [i.address for h in topo.hosts for i in h.interfaces]
    # the floating addresses are nobody's own: keepalived puts them on the active host
    assert "198.18.0.40" not in owned and "198.19.0.40" not in owned
    if kind == "two-armed-routed":
        assert [i.address for i in lbs[1].interfaces] == ["198.18.0.38", "198.19.0.38"]
        # the FEs' gateway floats; the admin host's management path does not
        assert topo.host("ocsfe01").routes == (
            ("default", "198.19.0.40"),
            ("198.18.0.100/32", "198.19.0.37"),
        )
        assert topo.host("client01").routes == (("198.19.0.0/24", "198.18.0.37"),)
        assert all(h.forwarding for h in lbs)


@pytest.mark.parametrize("kind", ["one-armed", "two-armed-routed"])
@pytest.mark.parametrize("lb", ["engine", "haproxy"])
def test_the_lab_pool_file_of_a_pair_passes_check(tmp_path: Path, kind: str, lb: str) -> None:
    state = LabState("tlab", kind, 2, True, tmp_path, lb=lb, lb_pair=True)  # type: ignore[arg-type]
    path = tmp_path / "pool.yaml"
    path.write_text(poolfile.render(state, state.topo()))
    lb_spec = load_pool(path).pool.load_balancer
    assert lb_spec.host is None and lb_spec.pair is not None
    pair = lb_spec.pair
    assert [h.name for h in pair.hosts] == ["lb01", "lb02"]
    assert pair.preferred == "lb01" and pair.secret is not None and pair.secret.file
    assert "{host}" in pair.keepalived.config_path
    assert [str(a.ip) for a in pair.hosts[1].addresses] == (
        ["198.18.0.38"] if kind == "one-armed" else ["198.18.0.38", "198.19.0.38"]
    )
    if kind == "two-armed-routed":
        assert str(lb_spec.backend_address) == "198.19.0.40/24"
    # each host's driver paths are its own
    from ocsscale.config.lb_settings import for_host

    one, two = (for_host(lb_spec.driver, h) for h in ("lb01", "lb02"))
    assert one != two and "{host}" not in one.model_dump_json()
    assert "/hosts/lb02/" in str(two.model_dump())
    assert for_host(pair.keepalived, "lb02").config_path == str(
        tmp_path / "hosts" / "lb02" / "etc" / "keepalived" / "keepalived.conf"
    )


def test_a_pair_of_appliances_or_of_nothing_is_refused() -> None:
    from ocsscale_lab import up

    for lb in ("none", "appliance"):
        with pytest.raises(UsageError, match="--lb-pair"):
            up.up("tlab", "one-armed", 2, lb=lb, lb_pair=True)


def test_a_pair_defines_the_lb_and_keepalived_on_both_hosts(tmp_path: Path) -> None:
    from ocsscale_lab import lbhost

    state = LabState("tlab", "one-armed", 2, True, tmp_path, lb="haproxy", lb_pair=True)
    defined = lbhost.services(state, state.topo(), "haproxy", 5061, pair=True)
    assert [(s.host, s.name) for s in defined] == [
        ("lb01", "haproxy"),
        ("lb01", "keepalived"),
        ("lb02", "haproxy"),
        ("lb02", "keepalived"),
    ]
    keepalived = [s for s in defined if s.name == "keepalived"]
    for service in keepalived:
        assert service.on_demand and service.ns == f"tlab-{service.host}"
        argv = list(service.argv)
        # its own config and pid files, in the host's directory: never /run/keepalived.pid
        for flag in ("-f", "--pid", "--vrrp_pid"):
            assert f"/hosts/{service.host}/" in argv[argv.index(flag) + 1]
        assert {"-n", "-P"} <= set(argv)


def test_the_plan_of_a_pair_proves_it_and_routes_a_two_armed_one(
    tmp_path: Path,
) -> None:
    """One-armed: validate-lb gains the pair proof for each Linux client. Two-armed
    routed: the routing phase turns routing on at both hosts and floats the FEs'
    gateway with keepalived, said in the plan."""
    from typer.testing import CliRunner

    from ocsscale.cli.main import app

    for kind in ("one-armed", "two-armed-routed"):
        state = LabState("tlab", kind, 2, True, tmp_path, lb="haproxy", lb_pair=True)  # type: ignore[arg-type]
        path = tmp_path / f"{kind}.yaml"
        path.write_text(poolfile.render(state, state.topo()))
        result = CliRunner().invoke(
            app, ["-c", str(path), "plan", "--phase", "validate-lb"], env={"COLUMNS": "300"}
        )
        assert result.exit_code == 0, result.output
        if kind == "one-armed":
            assert "validate-lb/pair[client01]" in result.output
            assert "validate-lb/pair[client02]" not in result.output  # a Windows client
        else:
            routing = CliRunner().invoke(
                app, ["-c", str(path), "plan", "--phase", "routing"], env={"COLUMNS": "300"}
            )
            assert routing.exit_code == 0, routing.output
            for host in ("lb01", "lb02"):
                assert host in routing.output
            assert "keepalived floating the FEs' gateway 198.19.0.40" in routing.output


def test_a_single_lb_plan_has_no_pair_proof(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ocsscale.cli.main import app

    state = LabState("tlab", "one-armed", 2, True, tmp_path, lb="haproxy")
    path = tmp_path / "pool.yaml"
    path.write_text(poolfile.render(state, state.topo()))
    result = CliRunner().invoke(app, ["-c", str(path), "plan", "--phase", "validate-lb"])
    assert result.exit_code == 0, result.output
    assert "validate-lb/pair" not in result.output and "validate-lb/distribution" in result.output
