"""lb.drain_restart against the bundled engine on the lab's lb01, through the real CLI.

A connection held open through the VIP on the banner port (the pool-member
stand-in names itself in the banner) is the session the drain waits for: with
it held, a short drain times out (nothing restarted, the member ready again);
with it released while the run waits, the FE is restarted drained (every new
connection meanwhile lands on the other FE) and comes back ready; a run killed
while it drains leaves the member in drain, and rollback sets it ready.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO, RunningLab
from .fe_support import (
    DRAIN_FE,
    connect_through_vip,
    entries,
    fe_pid,
    hold_on_fe,
    lb_look,
    lb_untouched,
    member_at_lb,
    nothing_to_undo,
    output,
    pool_copy,
    tool,
    tool_argv,
)

pytestmark = pytest.mark.lab

OTHER = "ocsfe02"

PLAYBOOK = """\
version: 1
phases:
  - id: cutover
    title: Restart one front end drained at the load balancer
    section: test
    steps:
      - id: restart
        action: lb.drain_restart
        args: {{fe: {fe}, drain_timeout: {timeout}}}
"""


def _playbook(directory: Path, timeout: int) -> Path:
    path = directory / f"drain-{timeout}.yaml"
    path.write_text(PLAYBOOK.format(fe=DRAIN_FE, timeout=timeout))
    return path


def _wait_drained_at_lb(lab: RunningLab, pool: Path, proc: subprocess.Popen[bytes]) -> None:
    def watch(driver: Any) -> bool:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if driver.stats()[DRAIN_FE].admin == "drain":
                return True
            time.sleep(0.2)
        return False

    assert lb_look(lab, pool, watch), f"{DRAIN_FE} never went to drain (run exit {proc.poll()})"


def _start_run(lab: RunningLab, pool: Path, playbook: Path) -> subprocess.Popen[bytes]:
    argv = tool_argv(
        lab, pool, "run", "--phase", "cutover", "--playbook", str(playbook), "--yes", "--no-hold"
    )
    # lab exec, `ip netns exec` and the wrapper all exec: the pid is the run's own
    return subprocess.Popen(
        [sys.executable, "-m", "ocsscale", *argv],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _restart_entries(pool: Path) -> list[dict[str, Any]]:
    return [e for e in entries(pool) if e["step_id"] == "cutover/restart"]


def test_drain_restart_waits_for_sessions_restarts_and_is_never_left_drained(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    pool = pool_copy(lab, tmp_path / "run")
    quick, patient = _playbook(tmp_path, 2), _playbook(tmp_path, 300)
    result = tool(lab, pool, "run", "--phase", "configure-lb", "--yes", "--no-hold")
    assert result.returncode == 0, output(result)
    proc: subprocess.Popen[bytes] | None = None
    try:
        # 1. a session that stays: the drain times out, nothing restarted, ready again
        held = hold_on_fe(lab)
        pid = fe_pid(lab)
        try:
            result = tool(
                lab, pool, "run", "--phase", "cutover", "--playbook", str(quick), "--yes",
                "--no-hold",
            )  # fmt: skip
        finally:
            held.close()
        text = output(result)
        assert result.returncode == 1, text
        assert f"{DRAIN_FE} still has 1 session(s) at lb01" in text, text
        assert "its services were not restarted, and it is ready again" in text, text
        assert "Traceback" not in text
        assert member_at_lb(lab, pool).admin == "ready"
        assert fe_pid(lab) == pid

        # 2. the session ends while the run waits: drained, restarted, ready again
        held = hold_on_fe(lab)
        proc = _start_run(lab, pool, patient)
        try:
            _wait_drained_at_lb(lab, pool, proc)
            landed = []
            for _ in range(6):  # drained: every new connection goes to the other FE
                sock, server = connect_through_vip(lab)
                sock.close()
                landed.append(server)
            assert landed == [OTHER] * 6, landed
            assert proc.poll() is None, "the run did not wait for the held session"
        finally:
            held.close()
        assert proc.wait(timeout=180) == 0
        proc = None
        (done,) = [e for e in _restart_entries(pool) if e["status"] == "done"]
        evidence = done["evidence"]
        assert evidence["drained"] is True and evidence["sessions_at_drain"] == 1, evidence
        assert evidence["admin_after"] == "ready"
        assert evidence["restart"]["restarted"], evidence
        assert fe_pid(lab) not in (None, pid)  # restarted for real
        member = member_at_lb(lab, pool)
        assert member.admin == "ready" and member.up_everywhere()

        # 3. a run killed while it drains leaves the member drained: rollback readies it
        result = tool(lab, pool, "rollback", "--to", "cutover", "--yes")
        assert result.returncode == 0, output(result)
        held = hold_on_fe(lab)
        try:
            proc = _start_run(lab, pool, patient)
            _wait_drained_at_lb(lab, pool, proc)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            proc = None
        finally:
            held.close()
        assert member_at_lb(lab, pool).admin == "drain"
        assert _restart_entries(pool)[-1]["status"] == "applying"
        lock_id = json.loads((pool.parent / ".ocsscale" / "lock").read_text())["lock_id"]
        result = tool(lab, pool, "unlock", lock_id)
        assert result.returncode == 0, output(result)
        result = tool(lab, pool, "rollback", "--to", "cutover", "--yes")
        assert result.returncode == 0, output(result)
        assert member_at_lb(lab, pool).admin == "ready"
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        lock = pool.parent / ".ocsscale" / "lock"
        if lock.exists():
            tool(lab, pool, "unlock", json.loads(lock.read_text())["lock_id"])
        result = tool(lab, pool, "rollback", "--yes")
    assert result.returncode == 0, output(result)
    assert nothing_to_undo(pool)
    lb_untouched(lab)
