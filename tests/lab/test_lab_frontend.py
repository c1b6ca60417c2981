"""The front-end phases end to end: the real CLI on the lab's admin host drives
real sshd, BIND, the pool members and the WinRM stand-in.

Each test works on its own copy of the lab's pool file, so each has its own
journal and lock while the labs themselves are shared.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from ocsscale.config.profiles import load_profile
from ocsscale.probes import tcp_probe
from ocsscale_lab import hostsvc, system

from .conftest import REPO, RunningLab
from .fe_support import (
    assert_untouched,
    entries,
    hosts_files,
    output,
    pool_copy,
    status,
    tool,
    tool_argv,
)

pytestmark = pytest.mark.lab

PORTS = load_profile(hostsvc.PROFILE).ports


def _done(pool: Path) -> dict[str, dict]:
    return {e["step_id"]: e for e in entries(pool) if e["status"] == "done"}


def test_front_end_phases_pass_then_rollback_leaves_every_hosts_file_as_it_was(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    pool = pool_copy(lab, tmp_path / "run")
    before = hosts_files(lab)

    result = tool(lab, pool, "run", "--through", "validate-fe", "--yes", "--no-hold", lab_exec=True)
    text = output(result)
    assert result.returncode == 0, text
    assert "- routing: skipped" in text
    assert "Configuring New Front End Servers: ocsfe01 (ocsfe01.lab.test)" in text
    assert "set the Subject Name to ocspool.lab.test and add ocsfe02.lab.test and" in text

    done = _done(pool)
    for fe in ("ocsfe01", "ocsfe02"):
        address = lab.address(fe)
        gate = done[f"configure-fe/gate[{fe}]"]["evidence"]
        assert all(f["ok"] for f in gate["findings"]), gate["findings"]
        checks = {f["check"] for f in gate["findings"]}
        assert {"dns.a", "dns.ptr", "address.static", "directory", "cert.san"} <= checks
        other = "ocsfe02" if fe == "ocsfe01" else "ocsfe01"
        peer = next(f for f in gate["findings"] if f["check"] == f"peer.{other}")
        assert f"sees {address} (no NAT)" in peer["message"]
        for client in ("client01", "client02"):
            evidence = done[f"validate-fe/probe[{fe}@{client}]"]["evidence"]
            assert evidence["resolved"] == [address]
            ports = {p["port"]: p for p in evidence["ports"]}
            assert sorted(ports) == sorted(PORTS)
            for port in ports.values():
                assert port["ok"] and port["answered_by"] == fe and port["server"] == fe, port
                assert port["identified_by"] == "answer", port
                # the FE itself was restarted after its pin: it resolves the pool to itself
                assert port["pool_resolved"] == address, port
            assert evidence["restart_proven"] is True
            assert sorted(evidence["identified_ports"]) == sorted(PORTS)
            if client == "client02":  # Windows: TCP from the client, the protocol from admin
                assert not evidence["streams_from_client"]
                assert all(p["tcp_check_from_client"] is True for p in ports.values())
                assert all(p["probed_from"].startswith("admin") for p in ports.values())
            else:
                assert evidence["streams_from_client"]
                assert all(p["probed_from"] == "client01" for p in ports.values())

    # the phase's cleanup already removed every pin and restarted the FEs
    assert_untouched(lab, before)
    banner = lab.inside(
        "admin", lambda: tcp_probe(lab.address("ocsfe01"), 135, banner_wait=2.0, timeout=5.0)
    )
    assert banner.pool_resolved == lab.address("ocsfe00")

    report = status(lab, pool)
    phases = {p["id"]: p["status"] for p in report["phases"]}
    assert phases["preflight"] == phases["configure-fe"] == phases["validate-fe"] == "done"
    assert phases["routing"] == "skipped"
    assert report["rollback_would_undo"]

    rolled = tool(lab, pool, "rollback", "--yes")
    assert rolled.returncode == 0, output(rolled)
    assert_untouched(lab, before)
    report = status(lab, pool)
    assert report["rollback_would_undo"] == []
    assert report["last_run"]["kind"] == "rollback" and report["last_run"]["status"] == "done"


def _wait_until_done(pool: Path, step: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if step in _done(pool):
                return
        except Exception:  # noqa: BLE001 - the journal is still being created
            pass
        time.sleep(0.02)
    raise AssertionError(f"the run ended or stalled before {step} was done")


def test_killed_run_over_ssh_resumes_after_unlock_and_rolls_back_byte_identical(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    pool = pool_copy(lab, tmp_path / "crash")
    before = hosts_files(lab)
    kill_after = "validate-fe/pin[ocsfe01@client01]"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [
        sys.executable,
        "-m",
        "ocsscale",
        *tool_argv(lab, pool, "run", "--through", "validate-fe", "--yes", "--no-hold"),
    ]
    # lab exec, `ip netns exec` and the wrapper all exec: the pid is the run's own
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_until_done(pool, kill_after, proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    first = _done(pool)
    assert kill_after in first and "validate-fe/probe[ocsfe02@client02]" not in first
    assert b"ocspool.lab.test" in hosts_files(lab)["client01"]  # pinned when it was killed

    report = status(lab, pool)
    assert report["lock"]["stale"] is True
    refused = tool(lab, pool, "run", "--through", "validate-fe", "--yes", "--no-hold")
    assert refused.returncode == 3 and "stale" in output(refused)
    lock_id = json.loads((pool.parent / ".ocsscale" / "lock").read_text())["lock_id"]
    unlocked = tool(lab, pool, "unlock", lock_id)
    assert unlocked.returncode == 0, output(unlocked)

    resumed = tool(lab, pool, "run", "--through", "validate-fe", "--yes", "--no-hold")
    assert resumed.returncode == 0, output(resumed)
    assert "resuming a run that was cut short" in output(resumed)
    after = entries(pool)
    for step, entry in first.items():
        mine = [e for e in after if e["step_id"] == step]
        assert len(mine) == 1 and mine[0]["run_id"] == entry["run_id"], step
    assert "validate-fe/probe[ocsfe02@client02]" in _done(pool)
    assert_untouched(lab, before)

    rolled = tool(lab, pool, "rollback", "--yes")
    assert rolled.returncode == 0, output(rolled)
    assert_untouched(lab, before)


def _forwarding(lab: RunningLab) -> str:
    ns = lab.topo.ns("lb01")
    return system.run(["ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.ip_forward"]).strip()


def _reaches(lab: RunningLab, host: str, address: str, port: int) -> bool:
    def connect() -> bool:
        try:
            socket.create_connection((address, port), timeout=1.0).close()
        except OSError:
            return False
        return True

    return lab.inside(host, connect)


def test_routing_phase_turns_forwarding_on_and_rollback_turns_it_off(
    two_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = two_armed_lab
    pool = pool_copy(lab, tmp_path / "routing")
    directory = lab.address("dc01")
    system.sysctl(lab.topo.ns("lb01"), "net.ipv4.ip_forward", "0")  # as `lab up --no-lb-forwarding`
    try:
        assert not _reaches(lab, "ocsfe01", directory, 135)
        result = tool(lab, pool, "run", "--phase", "routing", "--yes")
        assert result.returncode == 0, output(result)
        assert _forwarding(lab) == "1"
        done = _done(pool)
        enable = next(e for e in entries(pool) if e["step_id"] == "routing/enable")
        assert json.loads(enable["undo"])["value"] == "0"
        assert done["routing/enable"]["evidence"]["vip_configured"] is False
        for fe in ("ocsfe01", "ocsfe02"):
            probe = done[f"routing/directory[{fe}]"]["evidence"]
            assert probe["connected"] and probe["address"] == directory and probe["port"] == 135
            assert _reaches(lab, fe, directory, 135)

        again = tool(lab, pool, "run", "--phase", "routing", "--yes")
        assert again.returncode == 0 and "already done" in output(again)

        rolled = tool(lab, pool, "rollback", "--yes")
        assert rolled.returncode == 0, output(rolled)
        assert _forwarding(lab) == "0"
        assert not _reaches(lab, "ocsfe01", directory, 135)
    finally:
        system.sysctl(lab.topo.ns("lb01"), "net.ipv4.ip_forward", "1")


def test_generic_tls_validation_probes_tls_through_each_clients_pin(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    pool = pool_copy(lab, tmp_path / "generic")
    pool.write_text(pool.read_text().replace("profile: ocs2007r2", "profile: generic-tls"))
    before = hosts_files(lab)
    result = tool(lab, pool, "run", "--phase", "validate-fe", "--yes", "--no-hold")
    assert result.returncode == 0, output(result)
    done = _done(pool)
    for fe in ("ocsfe01", "ocsfe02"):
        for client in ("client01", "client02"):
            evidence = done[f"validate-fe/probe[{fe}@{client}]"]["evidence"]
            assert evidence["resolved"] == [lab.address(fe)]
            probe = evidence["probe"]
            assert probe["ok"] and probe["host"] == lab.address(fe) and probe["port"] == 443
            assert f"{fe}.lab.test" in probe["certificate"]["san_dns"]
            assert ("admin" in evidence["how"]) == (client == "client02")
    assert_untouched(lab, before)
    rolled = tool(lab, pool, "rollback", "--yes")
    assert rolled.returncode == 0, output(rolled)
    assert_untouched(lab, before)


def test_validation_without_the_restart_is_caught_by_the_fe_s_stale_view(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    """A playbook that forgets to restart the FE after the pin fails validate-fe:
    the pool member still resolves the pool name as it did when it started."""
    lab = one_armed_lab
    pool = pool_copy(lab, tmp_path / "norestart", front_ends=["ocsfe01"], test_clients=["client01"])
    yaml = YAML()
    playbook = yaml.load((REPO / "playbooks" / "ocs2007r2.yaml").read_text())
    validate = next(p for p in playbook["phases"] if p["id"] == "validate-fe")
    group = validate["steps"][0]
    group["steps"] = [step for step in group["steps"] if step["id"] != "restart"]
    forgetful = tmp_path / "no-restart.yaml"
    with forgetful.open("w") as f:
        yaml.dump(playbook, f)
    before = hosts_files(lab)

    result = tool(
        lab,
        pool,
        "run",
        "--phase",
        "validate-fe",
        "--playbook",
        str(forgetful),
        "--yes",
        "--no-hold",
    )
    text = output(result)
    assert result.returncode == 1, text
    error = next(line for line in text.splitlines() if line.startswith("error:"))
    assert "validate-fe/probe[ocsfe01@client01]" in error
    assert f"ocsfe01 resolves ocspool.lab.test to {lab.address('ocsfe00')}" in error
    assert "its services were not restarted after the change" in error
    assert_untouched(lab, before)
    rolled = tool(lab, pool, "rollback", "--yes")
    assert rolled.returncode == 0, output(rolled)
    assert_untouched(lab, before)
