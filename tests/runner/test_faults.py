"""Faults the tool puts in place on purpose, interrupted at the worst moment.

A real `ocsscale run` with the test plugin's `test.fault` (a file that exists
while the fault is in place, put there through Context.faults as a drill
does), killed or signalled inside each window: while the fault is being put
in place, while it is in place, while it is being taken away.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from ocsscale.runner import signals

from .conftest import REPO, LocalPool
from .test_crash_resume import _entries, _ocsscale, _run, _wait_for

PLAYBOOK = """\
version: 1
phases:
  - id: preflight
    title: Preflight
    section: test
    steps:
      - id: pool-file
        action: pool.check
  - id: failover-test
    title: Failover drills
    section: test
    steps:
      - id: before
        action: test.mark
        args: {path: "@DIR@/before", text: "before"}
      - id: drill
        action: test.fault
        args:
          broken: "@DIR@/broken"
          release: "@DIR@/release"
          log: "@DIR@/fault.log"
          put_delay: @PUT@
          take_delay: @TAKE@
      - id: after
        action: test.mark
        args: {path: "@DIR@/after", text: "after"}
"""


def _setup(pool: LocalPool, put: float = 0, take: float = 0, action: str = "test.fault") -> None:
    text = PLAYBOOK.replace("@DIR@", str(pool.dir)).replace("test.fault", action)
    text = text.replace("@PUT@", str(put)).replace("@TAKE@", str(take))
    (pool.dir / "playbook.yaml").write_text(text)


def _log(pool: LocalPool) -> list[str]:
    path = pool.dir / "fault.log"
    return path.read_text().splitlines() if path.exists() else []


def _faults(pool: LocalPool) -> list[dict[str, object]]:
    db = sqlite3.connect(pool.state_dir / "journal.sqlite", timeout=30)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM faults ORDER BY fault_id")]
    finally:
        db.close()


def _start(pool: LocalPool, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _ocsscale(pool, env, "run", "--yes"),
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _signal_when(pool: LocalPool, proc: subprocess.Popen[str], line: str, signum: int) -> str:
    """Send `signum` once the fault log shows `line`; the run's output."""
    try:
        _wait_for(lambda: line in _log(pool) or proc.poll() is not None)
        assert proc.poll() is None, "the run ended before the window"
        os.kill(proc.pid, signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    return out + err


def _status(pool: LocalPool, env: dict[str, str]) -> tuple[dict[str, object], str]:
    as_json = _run(_ocsscale(pool, env, "status", "--json")[:-2], env)
    assert as_json.returncode == 0, as_json.stderr
    text = _run(_ocsscale(pool, env, "status")[:-2], env)
    assert text.returncode == 0, text.stderr
    return json.loads(as_json.stdout), text.stdout


def _unlock(pool: LocalPool, env: dict[str, str]) -> None:
    lock = json.loads((pool.state_dir / "lock").read_text())
    done = _run(_ocsscale(pool, env, "unlock", lock["lock_id"])[:-2], env)
    assert done.returncode == 0, done.stderr


def test_a_killed_fault_is_named_by_status_and_put_right_first_by_run(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    pool = local_pool
    _setup(pool)
    _signal_when(pool, _start(pool, plugin_env), "in place", signal.SIGKILL)
    assert (pool.dir / "broken").exists()
    report, text = _status(pool, plugin_env)
    [fault] = report["faults_in_place"]
    assert fault["kind"] == "file-broken" and fault["step"] == "failover-test/drill"
    assert "ocsscale run" in fault["repair"] and "ocsscale rollback" in fault["repair"]
    assert "left broken by the tool" in text and "broken (test fault)" in text
    # the status line comes before the phase table: it is the most urgent thing
    assert text.index("left broken by the tool") < text.index("phases")
    planned = _run(_ocsscale(pool, plugin_env, "plan"), plugin_env)
    assert planned.returncode == 0 and "left broken by the tool" in planned.stdout
    reported = _run(
        _ocsscale(pool, plugin_env, "report", "--format", "json", "-o", "-")[:-2], plugin_env
    )
    assert reported.returncode == 0, reported.stderr
    assert json.loads(reported.stdout)["notes"][0].startswith("Left broken by the tool")
    _unlock(pool, plugin_env)

    (pool.dir / "release").write_text("go")
    resumed = _run(_ocsscale(pool, plugin_env, "run", "--yes"), plugin_env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "left in place when the last run stopped" in resumed.stdout
    # put right before anything else, then the drill ran again, whole
    assert _log(pool) == [
        "put started",
        "put done",
        "in place",
        "restore_fault file-broken",
        "put started",
        "put done",
        "in place",
        "take started",
        "take done",
    ]
    assert not (pool.dir / "broken").exists()
    assert all(f["cleared"] is not None for f in _faults(pool))
    before = [e for e in _entries(pool) if e["step_id"] == "failover-test/before"]
    assert len(before) == 1  # not redone
    assert (pool.dir / "after").read_text() == "after"
    report, _ = _status(pool, plugin_env)
    assert report["faults_in_place"] == []


def test_rollback_puts_a_killed_fault_right_before_anything_else(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    pool = local_pool
    _setup(pool)
    _signal_when(pool, _start(pool, plugin_env), "in place", signal.SIGKILL)
    _unlock(pool, plugin_env)
    rolled = _run(_ocsscale(pool, plugin_env, "rollback", "--yes", "-v")[:-2], plugin_env)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    out = rolled.stdout
    assert "put right first" in out
    assert out.index("put right:") < out.index("reverted failover-test/before")
    assert _log(pool)[-3:] == ["restore_fault file-broken", "revert", "verify_reverted"]
    assert not (pool.dir / "broken").exists() and not (pool.dir / "before").exists()
    assert all(f["cleared"] is not None for f in _faults(pool))


def test_a_drills_revert_after_its_fault_repair_is_proven_not_replayed(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    """A drill's fault is its only change: the rollback's fault repair already made
    its revert, and the line says so (a drill's revert again would restart its
    services, or ask for the cable a second time)."""
    pool = local_pool
    _setup(pool, action="test.drill_fault")
    _signal_when(pool, _start(pool, plugin_env), "in place", signal.SIGKILL)
    _unlock(pool, plugin_env)
    rolled = _run(_ocsscale(pool, plugin_env, "rollback", "--yes", "-v")[:-2], plugin_env)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    out = " ".join(rolled.stdout.split())
    assert _log(pool)[-2:] == ["restore_fault file-broken", "verify_reverted"]
    listed = "failover-test/drill break"  # the list before the reverts says so too
    assert f"{listed} {pool.dir}/broken for a while (put back by the fault repair first" in out
    assert "failover-test/drill already restored by the fault repair: verifying" in out, out
    assert "✓ failover-test/drill: already restored by the fault repair; verified" in out, out
    assert "reverted failover-test/drill" not in out
    assert "reverted failover-test/before" in out  # the others as before
    (drill,) = [e for e in _entries(pool) if e["step_id"] == "failover-test/drill"]
    assert drill["status"] == "reverted"
    assert json.loads(drill["revert_evidence"])["revert"] == {
        "already_restored": "already restored by the fault repair"
    }


@pytest.mark.parametrize(
    ("window", "signum", "code"),
    [
        ("put started", signal.SIGINT, 130),
        ("put started", signal.SIGHUP, 129),
        ("in place", signal.SIGINT, 130),
        ("take started", signal.SIGINT, 130),
        ("take started", signal.SIGTERM, 143),
    ],
    ids=["ctrl-c-putting", "sighup-putting", "ctrl-c-in-place", "ctrl-c-taking", "term-taking"],
)
def test_a_signal_never_leaves_the_fault_in_place(
    local_pool: LocalPool, plugin_env: dict[str, str], window: str, signum: int, code: int
) -> None:
    pool = local_pool
    # the shielded moves take a while, so the signal lands inside them
    _setup(pool, put=1.0, take=1.0)
    if window == "take started":
        (pool.dir / "release").write_text("go")
    proc = _start(pool, plugin_env)
    text = _signal_when(pool, proc, window, signum)
    assert proc.returncode == code, text
    assert "Traceback" not in text
    # the move under way finished, then the fault was taken away, then the run ended
    assert _log(pool)[-2:] == ["take started", "take done"], _log(pool)
    assert not (pool.dir / "broken").exists()
    assert [f["cleared"] is not None for f in _faults(pool)] == [True]
    assert not (pool.dir / "lock").exists()
    # resumable: the drill runs again, `before` is not redone
    (pool.dir / "release").write_text("go")
    resumed = _run(_ocsscale(pool, plugin_env, "run", "--yes"), plugin_env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len([e for e in _entries(pool) if e["step_id"] == "failover-test/before"]) == 1
    assert (pool.dir / "after").read_text() == "after"


REFUSED = """\
version: 1
phases:
  - id: cutover
    title: Cut over
    section: test
    steps:
      - id: first
        action: test.mark
        args: {path: "@DIR@/first", text: "first"}
      - id: guarded
        action: test.refuse
"""


def test_a_refused_change_leaves_nothing_for_rollback(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    pool = local_pool
    (pool.dir / "playbook.yaml").write_text(REFUSED.replace("@DIR@", str(pool.dir)))
    refused = _run(_ocsscale(pool, plugin_env, "run", "--yes"), plugin_env)
    assert refused.returncode == 1 and "nothing was changed" in refused.stderr
    [entry] = [e for e in _entries(pool) if e["step_id"] == "cutover/guarded"]
    assert entry["status"] == "failed" and entry["undo"] is None
    report, _ = _status(pool, plugin_env)
    assert [e["step"] for e in report["rollback_would_undo"]] == ["cutover/first"]
    # the older change is reverted; the refused one is never "put back"
    rolled = _run(_ocsscale(pool, plugin_env, "rollback", "--yes")[:-2], plugin_env)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert not (pool.dir / "first").exists()


def test_a_shield_holds_a_signal_until_its_end_and_a_third_breaks_through() -> None:
    order: list[str] = []
    with signals.handled():
        with pytest.raises(KeyboardInterrupt), signals.shielded():
            os.kill(os.getpid(), signal.SIGINT)
            order.append("still shielded")
        assert order == ["still shielded"]
        with pytest.raises(signals.Terminated) as raised:
            with signals.shielded(deliver=False) as held:
                os.kill(os.getpid(), signal.SIGHUP)
            order.append("held for the caller")
            held.deliver()
        assert raised.value.exit_code == 129
        with pytest.raises(KeyboardInterrupt), signals.shielded():
            for _ in range(signals.BREAK_THROUGH):
                os.kill(os.getpid(), signal.SIGINT)
            order.append("never reached")  # pragma: no cover
        assert order == ["still shielded", "held for the caller"]
    # outside a run the process's own handlers are back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_error_in_the_block_gives_way_to_a_held_interrupt(tmp_path: Path) -> None:
    with signals.handled():
        with pytest.raises(KeyboardInterrupt) as raised, signals.shielded():
            os.kill(os.getpid(), signal.SIGINT)
            raise RuntimeError("the restore failed")
        assert isinstance(raised.value.__cause__, RuntimeError)
