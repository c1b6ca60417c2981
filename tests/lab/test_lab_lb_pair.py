"""A load-balancer pair end to end: `lab up --lb haproxy|engine --lb-pair`, the real CLI
configures the LB and keepalived on lb01 and lb02 and validates the LB through the
active one; `rollback` leaves both LB hosts as `lab up` left them and the VIP silent."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from ocsscale_lab import lbhost, link, services, system

from .conftest import RunningLab
from .fe_support import (
    VIP_ADDRESS,
    assert_untouched,
    entries,
    hosts_files,
    nothing_to_undo,
    output,
    pool_copy,
    tool,
)

pytestmark = pytest.mark.lab

HOSTS = ("lb01", "lb02")


def _lb_tree(lab: RunningLab) -> dict[str, bytes]:
    """Every file under both LB hosts' etc/, lib/ and run/ directories (logs and the
    pid files the LB processes themselves leave aside)."""
    found = {}
    for host in HOSTS:
        base = lab.state.host_dir(host)
        for sub in ("etc", "lib", "run"):
            for path in sorted((base / sub).rglob("*")):
                if path.is_file() and not path.is_socket() and path.suffix != ".pid":
                    found[str(path)] = path.read_bytes()
    return found


def _holders(lab: RunningLab) -> list[str]:
    return [
        h
        for h in HOSTS
        if f" {VIP_ADDRESS}/" in system.ip("-o", "-4", "addr", "show", ns=lab.topo.ns(h))
    ]


def _stopped(lab: RunningLab) -> bool:
    lb = lbhost.HAPROXY_SERVICE if lab.state.lb == "haproxy" else lbhost.ENGINE_SERVICE
    return all(
        services.pid_of(lab.state.directory, services.load(lab.state.directory, h, name)) is None
        for h in HOSTS
        for name in (lb, lbhost.KEEPALIVED_SERVICE)
    )


@pytest.mark.parametrize("fixture", ["one_armed_haproxy_pair_lab", "one_armed_pair_lab"])
def test_a_pair_validates_through_the_active_host_and_rolls_back(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    lab: RunningLab = request.getfixturevalue(fixture)
    pool = pool_copy(lab, tmp_path / "run")
    hosts_before = hosts_files(lab)
    tree_before = _lb_tree(lab)
    assert _holders(lab) == [] and _stopped(lab)

    result = tool(lab, pool, "run", "--through", "validate-lb", "--yes", "--no-hold", timeout=600)
    text = output(result)
    assert result.returncode == 0, text
    done = {e["step_id"]: e for e in entries(pool) if e["status"] == "done"}
    farm = done["configure-lb/farm"]["evidence"]
    assert farm["vip_holder"] == "lb01" and set(farm["hosts"]) == set(HOSTS)
    proof = done["validate-lb/pair[client01]"]["evidence"]
    assert proof["active"] == "lb01" and proof["standby"] == ["lb02"]
    assert proof["neighbour"] == proof["mac"]
    dist = done["validate-lb/distribution"]["evidence"]
    assert dist["counts"] == {"ocsfe01": 4, "ocsfe02": 4}
    for fe in ("ocsfe01", "ocsfe02"):
        # the FEs see only the floating SNAT address (the VIP here), never a host's own
        assert dist["nat"][fe]["peers"] == [VIP_ADDRESS], dist["nat"][fe]
    assert _holders(lab) == ["lb01"]
    secret = (lab.state.secrets_dir / "vrrp-secret").read_text().strip()
    assert secret not in text
    assert all(secret not in str(e.get("evidence")) for e in entries(pool))

    result = tool(lab, pool, "rollback", "--yes", timeout=420)
    assert result.returncode == 0, output(result)
    assert nothing_to_undo(pool)
    assert _holders(lab) == [] and _stopped(lab)
    assert _lb_tree(lab) == tree_before
    for host in HOSTS:
        assert (
            system.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    lab.topo.ns(host),
                    "sysctl",
                    "-n",
                    "net.ipv4.ip_nonlocal_bind",
                ]
            ).strip()
            == "0"
        )
    assert_untouched(lab, hosts_before)


def _holding(lab: RunningLab, address: str) -> list[str]:
    return [
        h
        for h in HOSTS
        if f" {address}/" in system.ip("-o", "-4", "addr", "show", ns=lab.topo.ns(h))
    ]


@pytest.mark.parametrize("fixture", ["two_armed_haproxy_pair_lab", "two_armed_pair_lab"])
def test_a_two_armed_pair_floats_the_fe_gateway_from_routing_on(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The routing phase starts keepalived on both hosts floating only the FEs'
    gateway; configure-lb adds the VIP to the same instance; rolling configure-lb back
    leaves routing's keepalived (gateway floating, no VIP), rolling routing back
    leaves both hosts as `lab up` left them."""
    lab: RunningLab = request.getfixturevalue(fixture)
    gateway = "198.19.0.40"
    pool = pool_copy(lab, tmp_path / "run")
    hosts_before = hosts_files(lab)
    tree_before = _lb_tree(lab)
    assert _holding(lab, gateway) == [] and _holders(lab) == [] and _stopped(lab)

    result = tool(lab, pool, "run", "--through", "validate-lb", "--yes", "--no-hold", timeout=600)
    text = output(result)
    assert result.returncode == 0, text
    done = {e["step_id"]: e for e in entries(pool) if e["status"] == "done"}
    enable = done["routing/enable"]["evidence"]
    assert enable["gateway_holder"] == "lb01" and enable["vip_configured"] is False
    for fe in ("ocsfe01", "ocsfe02"):  # through the floating gateway
        assert done[f"routing/directory[{fe}]"]["evidence"]["connected"]
    assert done["configure-lb/farm"]["evidence"]["vip_holder"] == "lb01"
    proof = done["validate-lb/pair[client01]"]["evidence"]
    assert proof["active"] == "lb01" and proof["standby"] == ["lb02"]
    assert done["validate-lb/distribution"]["evidence"]["counts"] == {"ocsfe01": 4, "ocsfe02": 4}
    assert _holders(lab) == ["lb01"] and _holding(lab, gateway) == ["lb01"]
    secret = (lab.state.secrets_dir / "vrrp-secret").read_text().strip()
    assert secret not in text
    assert all(secret not in str(e.get("evidence")) for e in entries(pool))
    conf = {h: lbhost.paths(lab.state, lab.topo, h)["keepalived_conf"] for h in HOSTS}

    back = tool(lab, pool, "rollback", "--to", "configure-lb", "--yes", timeout=420)
    assert back.returncode == 0, output(back)
    assert _holders(lab) == [] and _holding(lab, gateway) == ["lb01"]
    for host in HOSTS:
        text = conf[host].read_text()
        assert gateway in text and f"{VIP_ADDRESS}/" not in text and "track_script" not in text

    result = tool(lab, pool, "rollback", "--yes", timeout=420)
    assert result.returncode == 0, output(result)
    assert nothing_to_undo(pool)
    assert _holders(lab) == [] and _holding(lab, gateway) == [] and _stopped(lab)
    assert _lb_tree(lab) == tree_before
    assert_untouched(lab, hosts_before)


def _lb_running(lab: RunningLab) -> dict[str, bool]:
    lb = lbhost.HAPROXY_SERVICE if lab.state.lb == "haproxy" else lbhost.ENGINE_SERVICE
    return {
        h: services.pid_of(lab.state.directory, services.load(lab.state.directory, h, lb))
        is not None
        for h in HOSTS
    }


@pytest.mark.parametrize("fixture", ["one_armed_haproxy_pair_lab", "one_armed_pair_lab"])
def test_the_lb_drill_fails_the_active_host_and_rolls_back(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """failover-test with a pair: the active LB's process stopped, then its link cut,
    under the client load; the standby takes the VIP, no request started after the
    takeover fails, the connections held through the failed host are lost (and said
    so), and lb01 takes the VIP back (preempt). Rollback leaves both hosts as they were."""
    lab: RunningLab = request.getfixturevalue(fixture)
    pool = pool_copy(lab, tmp_path / "run")
    hosts_before = hosts_files(lab)
    tree_before = _lb_tree(lab)
    assert _holders(lab) == [] and _stopped(lab)

    result = tool(
        lab, pool, "run", "--through", "failover-test", "--yes", "--no-hold", timeout=1500
    )
    text = output(result)
    assert result.returncode == 0, text
    drills = [e for e in entries(pool) if e["action"] == "lb.pair_drill" and e["status"] == "done"]
    assert sorted(d["evidence"]["mode"] for d in drills) == ["link", "service"], text
    for drill in drills:
        row = drill["evidence"]
        assert row["host"] == "lb01" and row["standby"] == "lb02", row
        assert row["holders_before"] == {"lb01": True, "lb02": False}, row
        assert row["holders_during"]["lb02"] is True, row
        if row["mode"] == "link":
            assert row["holders_during"]["lb01"] is None  # not read over a cut link
        else:
            assert row["holders_during"]["lb01"] is False
        assert row["holders_after"] == {"lb01": True, "lb02": False}, row
        assert row["takeover_s"] is not None and row["failback_s"] is not None
        assert row["failed_after_takeover"] == 0 and row["failed_after_failback"] == 0
        assert row["after_takeover_requests"] >= 40
        # a full proxy: what was held through the failed host is lost, and said so
        assert row["held"] > 0 and row["held_lost"] == row["held"], row
        assert "lost" in row["held_note"]
        assert "lb-fault" in row["load"]["labels"] and "after-takeover" in row["load"]["labels"]
    assert _holders(lab) == ["lb01"] and all(_lb_running(lab).values())

    result = tool(lab, pool, "rollback", "--yes", timeout=600)
    assert result.returncode == 0, output(result)
    assert nothing_to_undo(pool)
    assert _holders(lab) == [] and _stopped(lab)
    assert _lb_tree(lab) == tree_before
    assert_untouched(lab, hosts_before)


#: the LB drill alone, after the farm: what a kill mid-drill leaves, and its repair
DRILL_PLAYBOOK = """\
version: 1
phases:
  - id: configure-lb
    title: Configure the load balancer farm
    section: test
    steps:
      - id: farm
        action: lb.apply_farm
  - id: failover-test
    title: The LB drill
    section: test
    steps:
      - id: lb-drill
        action: lb.pair_drill
        args: {mode: link}
"""


def test_a_kill_while_the_active_lbs_link_is_cut_is_put_right_by_rollback(
    one_armed_haproxy_pair_lab: RunningLab, tmp_path: Path
) -> None:
    """SIGKILL while lb01's link is cut: `status` names the fault with its repair.
    The run lease is on lb01 (the lab's pool file puts it there): rollback refuses,
    changing nothing, until lb01 is reachable; once the operator has plugged its
    cable (the pool file's link_up_command), rollback puts the fault right and
    reverts: both LB hosts as they were, the VIP silent."""
    from .test_lab_interrupts import Runs, _link_up, _names_fault, _open_fault, _unlock

    lab = one_armed_haproxy_pair_lab
    pool = pool_copy(lab, tmp_path / "run")
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(DRILL_PLAYBOOK, encoding="utf-8")
    tree_before = _lb_tree(lab)
    runs = Runs(lab, pool, playbook, tmp_path)
    try:
        log = runs.start()
        runs.wait_for("lb01's link cut", lambda: bool(_open_fault(pool, "lb-link-down")), log)
        # the fault is journaled before it is put in place: wait until it is
        runs.wait_for("lb01's link down", lambda: not _link_up(lab, "lb01"), log)
        runs.signal(signal.SIGKILL, log)
        assert not _link_up(lab, "lb01")
        _names_fault(lab, pool, "lb-link-down", "lb01", "failover-test/lb-drill")
        _unlock(lab, pool)
    finally:
        runs.kill()
    refused = tool(lab, pool, "rollback", "--yes", timeout=300)
    said = output(refused)
    assert refused.returncode != 0 and "lease" in said and "lb01" in said, said
    assert not _link_up(lab, "lb01")  # nothing was changed
    assert link.main(["--lab", lab.state.name, "--host", "lb01", "up"]) == 0
    rolled = tool(lab, pool, "rollback", "--yes", timeout=600)
    assert rolled.returncode == 0, output(rolled)
    assert "put right" in output(rolled)
    assert _link_up(lab, "lb01") and _link_up(lab, "lb02")
    assert nothing_to_undo(pool)
    assert _holders(lab) == [] and _stopped(lab)
    assert _lb_tree(lab) == tree_before
