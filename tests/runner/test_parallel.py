"""Steps of one playbook entry run side by side on different hosts, bounded by
forks; steps on one host keep their order; the journal stays exact; rollback
reverts independent hosts side by side too.

`test.meet` (tests/runner/testplugin) only succeeds when the expected number
of steps are under way at the same moment, so running them one after the
other fails these tests, with no clock involved."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ocsscale.errors import StepFailed
from ocsscale.runner import session
from ocsscale.runner.events import Event
from ocsscale.runner.journal import Journal
from ocsscale.runner.parallel import Stop, Wave, lanes, run_lanes, waves

from .conftest import PLUGIN_DIR, PYTHON, REPO, VALIDATE_HEAD, LocalPool

PLUGIN_PATH = str(PLUGIN_DIR)

HOSTS = ["fe01", "fe02", "client01", "client02"]

PLAYBOOK = (
    VALIDATE_HEAD
    + """\
      - id: meet
        action: test.meet
        foreach: "{hosts}"
        as: host
        args: {{host: "{{{{ host }}}}", hosts: {hosts}, dir: "@DIR@/meet", meet: {meet},
                fail: "{fail}", timeout: {timeout}}}
      - id: after
        action: test.mark
        args: {{path: "@DIR@/after", text: done}}
"""
)


def _playbook(pool: LocalPool, *, meet: int = 4, fail: str = "", timeout: float = 10) -> Path:
    (pool.dir / "meet").mkdir(exist_ok=True)
    text = PLAYBOOK.format(hosts=HOSTS, meet=meet, fail=fail, timeout=timeout)
    path = pool.dir / "playbook.yaml"
    path.write_text(text.replace("@DIR@", str(pool.dir)))
    return path


def _run(pool: LocalPool, playbook: Path, forks: int | None = None) -> list[Event]:
    events: list[Event] = []
    prepared = session.prepare(pool.pool, playbook)
    gate = session.gate_run(prepared, prepared.plan.select())
    session.execute_run(gate, events.append, command="test", options={"forks": forks})
    return events


def _statuses(pool: LocalPool) -> dict[str, str]:
    journal = Journal.open(pool.state_dir)
    try:
        return {e.step_id: e.status for e in journal.entries()}
    finally:
        journal.close()


def test_steps_of_one_entry_run_side_by_side_and_roll_back_side_by_side(
    local_pool: LocalPool,
) -> None:
    playbook = _playbook(local_pool)  # all four must be under way at once
    events = _run(local_pool, playbook)
    assert all((local_pool.dir / "meet" / h).exists() for h in HOSTS)
    assert (local_pool.dir / "after").read_text() == "done"  # the next entry, after the wave
    statuses = _statuses(local_pool)
    assert [statuses[f"validate-fe/meet[{h}]"] for h in HOSTS] == ["done"] * 4
    # every step's undo record was written before its change, as in a serial run
    journal = Journal.open(local_pool.state_dir)
    try:
        assert all(e.undo == {"existed": False} for e in journal.entries() if "meet" in e.step_id)
    finally:
        journal.close()
    started = [e.step for e in events if e.kind == "step_start"]
    assert started.index("validate-fe/after") == 4
    # rollback: the four reverts meet too (a serial rollback would fail here)
    gate = session.prepare_rollback(local_pool.pool)
    session.execute_rollback(gate, lambda e: None, command="test")
    assert not any((local_pool.dir / "meet" / h).exists() for h in HOSTS)
    assert not (local_pool.dir / "after").exists()


def test_forks_bounds_how_many_run_at_once(local_pool: LocalPool) -> None:
    # never three at once with --forks 2: the first two wait for a third in vain
    with pytest.raises(StepFailed) as failed:
        _run(local_pool, _playbook(local_pool, meet=3, timeout=1), forks=2)
    assert "never came" in failed.value.message
    statuses = _statuses(local_pool)
    assert statuses["validate-fe/meet[fe01]"] == statuses["validate-fe/meet[fe02]"] == "failed"
    assert "validate-fe/meet[client01]" not in statuses  # nothing starts after a failure


def test_an_entry_marked_parallel_false_runs_its_steps_in_turn(local_pool: LocalPool) -> None:
    playbook = _playbook(local_pool, meet=2, timeout=1)
    text = playbook.read_text().replace(
        "        as: host\n", "        as: host\n        parallel: false\n"
    )
    playbook.write_text(text)
    prepared = session.prepare(local_pool.pool, playbook)
    assert {s.wave for s in prepared.plan.phases[0].steps if "meet" in s.id} == {""}
    with pytest.raises(StepFailed) as failed:
        _run(local_pool, playbook)  # forks 16, but one after another: the two never meet
    assert "never came" in failed.value.message


def test_a_failed_change_stops_the_wave_and_the_phase_and_resumes(local_pool: LocalPool) -> None:
    playbook = _playbook(local_pool, meet=1, fail="client01")
    with pytest.raises(StepFailed) as failed:
        _run(local_pool, playbook, forks=1)
    assert "client01 fails on purpose" in failed.value.message
    statuses = _statuses(local_pool)
    assert statuses["validate-fe/meet[client01]"] == "failed"
    assert "validate-fe/meet[client02]" not in statuses  # nothing starts after a failure
    assert "validate-fe/after" not in statuses
    # fixed, the phase runs again from a new cycle: done steps read as unchanged
    events = _run(local_pool, _playbook(local_pool, meet=1))
    done = {e.step: e.data["changed"] for e in events if e.kind == "step_done"}
    assert done["validate-fe/meet[fe01]"] is False
    assert done["validate-fe/meet[client01]"] is True
    assert (local_pool.dir / "after").exists()


def test_lanes_keep_one_host_in_order_and_waves_follow_keys() -> None:
    items = [("a", {"h1"}), ("b", {"h2"}), ("c", {"h1"}), ("d", {"h3", "h2"}), ("e", set())]
    found = lanes(items, lambda i: i[1])
    assert [[i[0] for i in lane] for lane in found] == [["a", "c"], ["b", "d"], ["e"]]
    # a step touching two lanes joins them
    joined = lanes([("a", {"h1"}), ("b", {"h2"}), ("c", {"h1", "h2"})], lambda i: i[1])
    assert [[i[0] for i in lane] for lane in joined] == [["a", "b", "c"]]
    keyed = [("p", 1), ("p", 2), (None, 3), ("p", 4), ("q", 5)]
    out = waves(keyed, lambda i: i[0], lambda i: {str(i[1])})
    assert [[i[1] for i in w.items] for w in out] == [[1, 2], [3], [4], [5]]


def test_run_lanes_raises_an_error_of_a_lane_after_the_others_end() -> None:
    ended: list[str] = []

    def lane(items: tuple[str, ...], stop: Stop) -> list[BaseException]:
        if items[0] == "bad":
            raise RuntimeError("a bug")
        ended.append(items[0])
        return []

    with pytest.raises(RuntimeError):
        run_lanes(Wave((("bad",), ("ok",))), lane, forks=2)
    assert ended == ["ok"]


def test_ctrl_c_mid_wave_lets_the_steps_under_way_finish_and_starts_no_more(
    local_pool: LocalPool,
) -> None:
    meet = local_pool.dir / "meet"
    meet.mkdir()
    release = local_pool.dir / "release"
    text = PLAYBOOK.format(hosts=HOSTS, meet=2, fail="", timeout=30).replace(
        "timeout: 30}", f'timeout: 30, release: "{release}"}}'
    )
    playbook = local_pool.dir / "playbook.yaml"
    playbook.write_text(text.replace("@DIR@", str(local_pool.dir)))
    argv = [str(PYTHON), "-m", "ocsscale", "-c", str(local_pool.pool), "run", "--yes"]
    argv += ["--forks", "2", "--playbook", str(playbook)]
    env = {**os.environ, "OCSSCALE_PLUGINS": "ocsscale_testplugin", "PYTHONPATH": PLUGIN_PATH}
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(list(meet.glob("arrived-*"))) < 2:  # two steps under way, two waiting
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)  # let the interrupt land before the two are released
        release.touch()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, out + err
    assert b"Traceback" not in err, err
    statuses = _statuses(local_pool)
    under_way = [h for h in HOSTS if f"validate-fe/meet[{h}]" in statuses]
    assert len(under_way) == 2  # the other two never started
    assert all(statuses[f"validate-fe/meet[{h}]"] == "done" for h in under_way)
    assert sorted(p.name for p in meet.iterdir() if not p.name.startswith("arrived")) == sorted(
        under_way
    )
    assert proc.returncode == 130, out + err
    # the next run resumes as after a kill: the steps done are not run again, the
    # rest are; then a rollback undoes all
    events = _run(local_pool, playbook, forks=2)
    skipped = {e.step for e in events if e.kind == "step_skipped"}
    ran = {e.step for e in events if e.kind == "step_done"}
    assert all(f"validate-fe/meet[{h}]" in skipped for h in under_way)
    assert all(f"validate-fe/meet[{h}]" in ran for h in HOSTS if h not in under_way)
    assert all(p.exists() for p in (meet / h for h in HOSTS))
    gate = session.prepare_rollback(local_pool.pool)
    session.execute_rollback(gate, lambda e: None, command="test")
    assert not any((meet / h).exists() for h in HOSTS)
