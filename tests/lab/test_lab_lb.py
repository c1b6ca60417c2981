"""The load-balancer phases end to end: the real CLI on the lab's admin host drives
the bundled engine on lb01 over SSH, and every LB change is rolled back.

Each test works on its own copy of the lab's pool file (its own journal) and
leaves the shared lab's LB as it found it: stopped, no farm, no VIP.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from ocsscale.actions.lb_drill import AFTER_REQUESTS, BEFORE_REQUESTS
from ocsscale_lab import hostsvc, services

from .conftest import RunningLab
from .fe_support import (
    VIP_ADDRESS,
    assert_untouched,
    entries,
    hosts_files,
    lb_untouched,
    nothing_to_undo,
    output,
    pool_copy,
    tool,
)

pytestmark = pytest.mark.lab


def _done(pool: Path) -> dict[str, dict]:
    return {e["step_id"]: e for e in entries(pool) if e["status"] == "done"}


def _edit(pool: Path, change) -> None:  # type: ignore[no-untyped-def]
    yaml = YAML()
    data = yaml.load(pool.read_text())
    change(data)
    with pool.open("w") as f:
        yaml.dump(data, f)


def test_lb_phases_configure_validate_drill_then_rollback_leave_nothing(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    pool = pool_copy(lab, tmp_path / "run")
    hosts_before = hosts_files(lab)

    result = tool(lab, pool, "run", "--through", "validate-lb", "--yes", "--no-hold", timeout=420)
    text = output(result)
    assert result.returncode == 0, text
    done = _done(pool)
    farm = done["configure-lb/farm"]["evidence"]
    assert farm["readback"]["members"] == {
        "ocsfe01": {"address": "198.18.0.41", "weight": 1},
        "ocsfe02": {"address": "198.18.0.42", "weight": 1},
    }
    assert farm["readback"]["check_ports"] == [444, 5061]
    assert farm["readback"]["idle_timeout"] == 1800
    assert farm["vip_added"].startswith(f"{VIP_ADDRESS}/24 on eth0")
    for fe in ("ocsfe01", "ocsfe02"):
        assert all(p["ok"] for p in done[f"configure-lb/hairpin[{fe}]"]["evidence"]["ports"])
    dist = done["validate-lb/distribution"]["evidence"]
    assert dist["counts"] == {"ocsfe01": 4, "ocsfe02": 4}
    for fe in ("ocsfe01", "ocsfe02"):
        nat = dist["nat"][fe]
        # SNAT: the FE sees the LB's SNAT address, never a client's; DNAT: its own address
        assert nat["proven"] and nat["peers"] == [VIP_ADDRESS] and not nat["from_clients"], nat
        assert nat["from_snat"] >= 4 and not nat["local_not_own"], nat
        alone = done[f"validate-lb/isolate[{fe}]"]["evidence"]
        assert all(p["ok"] and p["answered_by"] in (fe, None) for p in alone["ports"])
        assert any(p["answered_by"] == fe for p in alone["ports"])
    probe = done["validate-lb/probe[client01]"]["evidence"]
    assert probe["resolved"] == [VIP_ADDRESS] and all(p["ok"] for p in probe["ports"])

    result = tool(lab, pool, "run", "--phase", "failover-test", "--yes", "--no-hold", timeout=600)
    text = output(result)
    assert result.returncode == 0, text
    drills = [e["evidence"] for e in entries(pool) if e["action"] == "lb.failover_drill"]
    assert sorted((d["fe"], d["mode"]) for d in drills) == sorted(
        (fe, mode)
        for fe in ("ocsfe01", "ocsfe02")
        for mode in ("service:5061", "service:444", "link")
    )
    for d in drills:
        other = "ocsfe02" if d["fe"] == "ocsfe01" else "ocsfe01"
        assert d["detect_s"] is not None and d["back_s"] is not None, d
        assert d["failed_after_detection"] == 0 and d["failed_before_fault"] == 0, d
        assert d["held_survived"] == {other: 2}, d
        assert d["requests"] > 20, d
        # the windows are counts of requests, each counted where it started
        labels = d["load"]["labels"]
        assert labels["after-detection"]["requests"] >= AFTER_REQUESTS, labels
        assert labels["before"]["requests"] >= BEFORE_REQUESTS, labels
        assert "in-flight" not in labels and {"detection", "return"} <= set(d["stages_s"]), d
    procedure = tmp_path / "run" / ".ocsscale" / "failover-procedure.md"
    assert "ocsfe01 (198.18.0.41)" in procedure.read_text()

    result = tool(lab, pool, "rollback", "--yes", timeout=420)
    assert result.returncode == 0, output(result)
    assert nothing_to_undo(pool)
    lb_untouched(lab)
    assert_untouched(lab, hosts_before)


def test_unequal_weights_two_armed_distribution_and_rollback(
    two_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = two_armed_lab
    pool = pool_copy(lab, tmp_path / "run")
    _edit(pool, lambda d: d["front_ends"][0].__setitem__("weight", 2))
    result = tool(lab, pool, "run", "--phase", "configure-lb", "--yes", "--no-hold", timeout=300)
    assert result.returncode == 0, output(result)
    result = tool(lab, pool, "run", "--phase", "validate-lb", "--yes", "--no-hold", timeout=300)
    text = output(result)
    assert result.returncode == 0, text
    dist = _done(pool)["validate-lb/distribution"]["evidence"]
    assert dist["weights"] == {"ocsfe01": 2, "ocsfe02": 1}
    assert dist["connections"] == 8
    assert abs(dist["counts"]["ocsfe01"] - 16 / 3) <= 1 and sum(dist["counts"].values()) == 8
    inside = "198.19.0.40"  # two-armed: the LB's front-end arm is the SNAT address
    for fe in ("ocsfe01", "ocsfe02"):
        assert dist["nat"][fe]["peers"] == [inside], dist["nat"][fe]
    result = tool(lab, pool, "rollback", "--yes", timeout=300)
    assert result.returncode == 0, output(result)
    lb_untouched(lab)


def test_engine_not_installed_is_refused_before_any_change(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    pool = pool_copy(lab, tmp_path / "run")
    _edit(pool, lambda d: d["load_balancer"]["driver"].__setitem__("command", "/opt/none/ocsscale"))
    result = tool(lab, pool, "run", "--phase", "configure-lb", "--yes", "--no-hold")
    text = output(result)
    assert result.returncode == 1, text
    assert "lb01: the engine is not installed" in text
    assert "Traceback" not in text
    lb_untouched(lab)


def test_a_member_the_lb_reports_down_stops_the_phase_and_rollback_works(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    pool = pool_copy(lab, tmp_path / "run")
    fe = services.load(lab.state.directory, "ocsfe02", hostsvc.FOCUS)
    services.stop(lab.state.directory, fe)
    try:
        result = tool(lab, pool, "run", "--phase", "configure-lb", "--yes", "--no-hold")
        text = output(result)
        assert result.returncode == 1, text
        assert "member(s) not up after" in text and "ocsfe02 (down" in text, text
    finally:
        services.start(lab.state.directory, fe)
    result = tool(lab, pool, "rollback", "--yes")
    assert result.returncode == 0, output(result)
    lb_untouched(lab)


def test_lb_host_unreachable_mid_phase_names_it_and_rollback_works(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    pool = pool_copy(lab, tmp_path / "run")
    sshd = services.load(lab.state.directory, "lb01", "sshd")
    stopped = threading.Event()

    def cut_when_farm_is_done() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if any(e["step_id"] == "configure-lb/farm" and e["status"] == "done"
                       for e in entries(pool)):  # fmt: skip
                    services.stop(lab.state.directory, sshd)
                    # and its sessions: the run's open connection to lb01 breaks now
                    pids = subprocess.run(
                        ["ip", "netns", "pids", lab.topo.ns("lb01")],
                        capture_output=True, text=True, check=False,
                    ).stdout.split()  # fmt: skip
                    for pid in pids:
                        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                        if b"sshd" in cmdline:
                            os.kill(int(pid), signal.SIGKILL)
                    stopped.set()
                    return
            except Exception:  # noqa: BLE001 - the journal may not exist yet
                pass
            time.sleep(0.05)

    watcher = threading.Thread(target=cut_when_farm_is_done, daemon=True)
    watcher.start()
    try:
        result = tool(lab, pool, "run", "--phase", "configure-lb", "--yes", "--no-hold")
        watcher.join(5)
        text = output(result)
        assert stopped.is_set(), text
        assert result.returncode == 1, text
        assert "lb01" in text and "Traceback" not in text, text
    finally:
        services.start(lab.state.directory, sshd)
    result = tool(lab, pool, "rollback", "--yes")
    assert result.returncode == 0, output(result)
    lb_untouched(lab)


def test_haproxy_two_armed_configure_validate_drill_then_rollback(
    two_armed_haproxy_lab: RunningLab, tmp_path: Path
) -> None:
    """The same phases with Debian's HAProxy as the LB: per-port health from its
    runtime API decides the drill's detection time."""
    lab = two_armed_haproxy_lab
    pool = pool_copy(lab, tmp_path / "run")
    hosts_before = hosts_files(lab)
    result = tool(lab, pool, "run", "--phase", "configure-lb", "--yes", "--no-hold", timeout=300)
    assert result.returncode == 0, output(result)
    farm = _done(pool)["configure-lb/farm"]["evidence"]
    assert farm["readback"]["members"]["ocsfe01"] == {"address": "198.19.0.41", "weight": 1}
    result = tool(lab, pool, "run", "--phase", "validate-lb", "--yes", "--no-hold", timeout=400)
    assert result.returncode == 0, output(result)
    dist = _done(pool)["validate-lb/distribution"]["evidence"]
    assert dist["counts"] == {"ocsfe01": 4, "ocsfe02": 4}
    assert dist["nat"]["ocsfe01"]["peers"] == ["198.19.0.40"]
    result = tool(lab, pool, "run", "--phase", "failover-test", "--yes", "--no-hold", timeout=600)
    assert result.returncode == 0, output(result)
    drills = [e["evidence"] for e in entries(pool) if e["action"] == "lb.failover_drill"]
    assert len(drills) == 6
    for d in drills:
        assert d["detect_s"] is not None and d["failed_after_detection"] == 0, d
    result = tool(lab, pool, "rollback", "--yes", timeout=400)
    assert result.returncode == 0, output(result)
    lb_untouched(lab)
    assert_untouched(lab, hosts_before)
