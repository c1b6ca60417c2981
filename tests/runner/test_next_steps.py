"""`status`'s `stage` and `next` (runner/next_steps.py), from journals written
through the journal's own methods in each state the walkthrough passes: nothing
run, a phase not started, a phase failed or cut short, a rollback cut short,
the cutover and the decommission waiting for an old TTL, a run holding for an
answer, a dead run's lock; each command as the user must type it."""

from __future__ import annotations

import json
import os
import shlex
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from ocsscale.plan.playbook import PHASE_IDS
from ocsscale.runner import answers
from ocsscale.runner.journal import Journal
from ocsscale.runner.lock import LOCK_NAME
from ocsscale.runner.status import status_report

NOW = 2_000_000_000.0
POOL = Path("my pools/pool.yaml")  # as the user named it: relative, with a space
BASE = "ocsscale -c 'my pools/pool.yaml'"
NAME = "ocspool.lab.test"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / ".ocsscale"


def _status(state: Path, now: float = NOW) -> dict[str, Any]:
    report = status_report(state, POOL, now=now)
    return {"stage": report["stage"], "next": report["next"]}


def _first(state: Path, now: float = NOW) -> str:
    return str(_status(state, now)["next"][0]["command"])


class Walk:
    """A journal written as runs write it: one run per call, phase cycles, steps."""

    def __init__(self, state: Path, skipped: tuple[str, ...] = ("routing",)) -> None:
        self.journal = Journal.open(state)
        self.skipped = skipped
        self.n = 0

    def run(self, *phases: tuple[str, str], playbook: str | None = None, end: str = "done") -> None:
        """A run of (phase, cycle status) pairs; `end`: the run's status (running: killed)."""
        self.n += 1
        run_id = f"run-{self.n}"
        detail = self._detail([p for p, _ in phases], playbook)
        self.journal.start_run(run_id, "run", "ops", socket.gethostname(), 1, detail)
        for phase, status in phases:
            cycle = self.journal.open_cycle(phase, PHASE_IDS.index(phase), run_id)
            seq = self.journal.begin_step(cycle, run_id, f"{phase}/step", "test.noop", {}, False)
            self.journal.record_undo(
                seq, [{"kind": "add", "target": "x", "summary": "s"}], {"a": 1}
            )
            self.journal.finish_step(seq, {}, None)
            if status != "running":
                self.journal.close_cycle(cycle.cycle_id, status)
        if end != "running":
            self.journal.finish_run(run_id, end, None if end == "done" else "it broke")

    def _detail(self, selected: list[str], playbook: str | None = None) -> dict[str, Any]:
        """A run's detail as execute_run writes it: every phase of the plan."""
        return {
            "phases": [
                {"id": p, "title": p, "skipped": "no routing" if p in self.skipped else None}
                for p in PHASE_IDS
            ],
            "selected": selected,
            "playbook_given": playbook,
        }

    def step(self, phase: str, action: str, args: dict, evidence: dict, undo: Any = None) -> None:
        """A finished step of `action` in a run of `phase` of its own."""
        self.n += 1
        run_id = f"run-{self.n}"
        detail = self._detail([phase])
        self.journal.start_run(run_id, "run", "ops", socket.gethostname(), 1, detail)
        cycle = self.journal.open_cycle(phase, PHASE_IDS.index(phase), run_id)
        seq = self.journal.begin_step(cycle, run_id, f"{phase}/x", action, args, False)
        self.journal.record_undo(seq, [{"kind": "change", "target": "dns", "summary": "s"}], undo)
        self.journal.finish_step(seq, evidence, None)
        self.journal.close_cycle(cycle.cycle_id, "done")
        self.journal.finish_run(run_id, "done")

    def rollback(self, to: str | None, end: str) -> None:
        self.n += 1
        rid = f"rollback-{self.n}"
        self.journal.start_run(rid, "rollback", "ops", socket.gethostname(), 1, {"to": to})
        if end != "running":
            self.journal.finish_run(rid, end, "it broke")

    def close(self) -> None:
        self.journal.close()


def _before(phase: str) -> list[tuple[str, str]]:
    return [(p, "done") for p in PHASE_IDS[: PHASE_IDS.index(phase)] if p != "routing"]


def _lock(state: Path, pid: int, lock_id: str = "1f2e3d4c") -> None:
    state.mkdir(parents=True, exist_ok=True)
    info = {
        "lock_id": lock_id,
        "user": "ops",
        "host": socket.gethostname(),
        "pid": pid,
        "started": NOW - 60,
        "command": "ocsscale run --phase validate-fe",
    }
    (state / LOCK_NAME).write_text(json.dumps(info))


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_nothing_run_yet_starts_with_preflight(state: Path) -> None:
    found = _status(state)
    assert found["next"][0]["command"] == f"{BASE} run --phase preflight"
    assert "nothing has run yet" in found["stage"]


def test_the_first_phase_not_started_is_next_in_the_walkthrough_order(state: Path) -> None:
    walk = Walk(state)
    walk.run(("preflight", "done"))
    # lower-ttl run ahead of the window, as the walkthrough's operator does
    walk.run(("lower-ttl", "done"))
    walk.close()
    found = _status(state)
    assert found["next"][0]["command"] == f"{BASE} run --phase configure-fe"
    assert found["stage"] == "preflight, lower-ttl done; configure-fe has not started"


def test_a_playbook_given_to_the_last_run_is_given_again(state: Path) -> None:
    walk = Walk(state)
    walk.run(("preflight", "done"), playbook="/srv/ocs/my playbook.yaml")
    walk.close()
    assert (
        _first(state) == f"{BASE} run --phase configure-fe --playbook '/srv/ocs/my playbook.yaml'"
    )


@pytest.mark.parametrize("how", ["failed", "killed"])
def test_a_stopped_phase_is_resumed_or_rolled_back(state: Path, how: str) -> None:
    walk = Walk(state)
    if how == "failed":
        walk.run(*_before("validate-fe"), ("validate-fe", "failed"), end="failed")
    else:  # SIGKILL: the cycle and the run never closed, no lock left
        walk.run(*_before("validate-fe"), ("validate-fe", "running"), end="running")
    walk.close()
    found = _status(state)
    resume, back = found["next"]
    assert resume["command"] == f"{BASE} run --phase validate-fe"
    assert back["command"] == f"{BASE} rollback --to validate-fe"
    assert "resume validate-fe" in resume["why"]
    said = "failed" if how == "failed" else "was cut short"
    assert found["stage"] == f"the phase validate-fe {said}"


def test_the_lock_of_a_dead_run_is_cleared_first(state: Path) -> None:
    walk = Walk(state)
    walk.run(*_before("validate-fe"), ("validate-fe", "running"), end="running")
    walk.close()
    _lock(state, _dead_pid())
    unlock, resume, _ = _status(state)["next"]
    assert unlock["command"] == f"{BASE} unlock 1f2e3d4c"
    assert resume["command"] == f"{BASE} run --phase validate-fe"


def test_a_live_run_has_nothing_to_run_next(state: Path) -> None:
    walk = Walk(state)
    walk.run(("preflight", "running"), end="running")
    walk.close()
    _lock(state, os.getpid())
    found = _status(state)
    assert found["next"] == []
    assert "a run is going on (`ocsscale run --phase validate-fe`" in found["stage"]


def test_a_run_holding_for_an_answer_names_the_answer_commands(state: Path) -> None:
    walk = Walk(state)
    walk.run(*_before("validate-fe"), ("validate-fe", "running"), end="running")
    walk.close()
    _lock(state, os.getpid())
    asked = answers.question(
        "Result of the client tests through ocsfe01",
        ["passed", "failed"],
        step="validate-fe/hold[ocsfe01]",
        notes=True,
    )
    answers.post(state, asked)
    found = _status(state)
    assert "holds at validate-fe/hold[ocsfe01] for an answer" in found["stage"]
    assert [s["command"] for s in found["next"]] == [
        f"{BASE} answer pass --id {asked['id']}",
        f"{BASE} answer fail --id {asked['id']}",
    ]
    assert "--notes TEXT" in found["next"][0]["why"]


def test_the_cutover_waits_for_the_lowered_ttl_then_runs_without_wait(state: Path) -> None:
    walk = Walk(state)
    walk.run(*_before("lower-ttl"))
    ready = {"ready_at": NOW + 600}
    walk.step("lower-ttl", "dns.lower_ttl", {"name": NAME, "ttl": 3}, ready)
    walk.step("lower-ttl", "dns.lower_ttl", {"name": f"sip.{NAME}", "ttl": 3}, {"ready_at": NOW})
    walk.close()
    found = _status(state)
    (step,) = found["next"]
    assert step["command"] == f"{BASE} run --phase cutover --wait"
    assert step["ready_at"] == time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(NOW + 600))
    assert f"cutover may start at {step['ready_at']}" in step["why"]
    assert found["stage"] == f"cutover waits for the old TTL until {step['ready_at']}"
    # once the old TTL has run out: the plain command
    assert _first(state, now=NOW + 601) == f"{BASE} run --phase cutover"


def test_a_cutover_refused_by_the_ttl_guard_is_resumed_with_wait(state: Path) -> None:
    walk = Walk(state)
    walk.step("lower-ttl", "dns.lower_ttl", {"name": NAME, "ttl": 3}, {"ready_at": NOW + 60})
    walk.run(*_before("cutover"), ("cutover", "failed"), end="failed")
    walk.close()
    resume = _status(state)["next"][0]
    assert resume["command"] == f"{BASE} run --phase cutover --wait"
    assert "cutover may start at" in resume["why"]


def test_decommission_waits_for_the_old_ttl_since_the_cutover(state: Path) -> None:
    walk = Walk(state)
    walk.run(*_before("cutover"))
    undo = {"name": NAME, "type": "A", "old": {"values": ["198.18.0.30"], "ttl": 3600}}
    evidence = {"changed_at": NOW - 600, "old": {"values": ["198.18.0.30"], "ttl": 3600}}
    walk.step("cutover", "dns.replace", {"name": NAME}, evidence, undo)
    walk.close()
    found = _status(state)
    assert found["next"][0]["command"] == f"{BASE} run --phase decommission --wait"
    assert "the old TTL since the cutover" in found["next"][0]["why"]
    assert found["stage"].startswith("decommission waits for the old TTL until ")
    assert _first(state, now=NOW + 3001) == f"{BASE} run --phase decommission"


def test_every_phase_done_leaves_the_report(state: Path) -> None:
    walk = Walk(state)
    walk.run(*_before("decommission"), ("decommission", "done"))
    walk.close()
    found = _status(state)
    assert found["stage"] == "every phase is done: the migration is complete"
    assert found["next"][0]["command"] == f"{BASE} report"


def test_a_rollback_cut_short_is_run_again_with_its_phase(state: Path) -> None:
    walk = Walk(state)
    walk.run(*_before("cutover"), ("cutover", "done"))
    walk.rollback("cutover", "failed")
    walk.close()
    assert _first(state) == f"{BASE} rollback --to cutover"


def test_every_command_is_one_the_shell_splits_back_to_the_pool_file(state: Path) -> None:
    walk = Walk(state)
    walk.run(*_before("validate-fe"), ("validate-fe", "failed"), end="failed")
    walk.close()
    for step in _status(state)["next"]:
        argv = shlex.split(step["command"])
        assert argv[:3] == ["ocsscale", "-c", str(POOL)]
