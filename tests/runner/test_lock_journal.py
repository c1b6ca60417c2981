"""The run lock (holder, stale detection, unlock) and the journal's guarantees."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ocsscale.errors import EXIT_LOCKED, LockHeld, UsageError
from ocsscale.runner.journal import Journal, to_json
from ocsscale.runner.lock import RunLock, read_lock, unlock
from ocsscale.secrets import Secret


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_second_lock_is_refused_naming_the_holder(tmp_path: Path) -> None:
    with RunLock(tmp_path, "ocsscale run") as info:
        with pytest.raises(LockHeld) as err:
            RunLock(tmp_path, "ocsscale rollback").acquire()
        assert err.value.exit_code == EXIT_LOCKED == 3
        assert f"pid {os.getpid()}" in err.value.message
        assert info.lock_id in err.value.message and info.user in err.value.message
        assert "stale" not in err.value.message
    assert read_lock(tmp_path) is None  # released on exit


def test_stale_lock_is_reported_and_only_its_id_clears_it(tmp_path: Path) -> None:
    lock = RunLock(tmp_path, "ocsscale run")
    info = lock.acquire()
    # make it look like a run that was killed: same host, a pid that is gone
    data = json.loads((tmp_path / "lock").read_text())
    data["pid"] = _dead_pid()
    (tmp_path / "lock").write_text(json.dumps(data))

    with pytest.raises(LockHeld) as err:
        RunLock(tmp_path, "ocsscale run").acquire()
    assert "stale" in err.value.message
    assert err.value.hint == f"ocsscale unlock {info.lock_id}"

    with pytest.raises(UsageError):
        unlock(tmp_path, "00000000")
    assert read_lock(tmp_path) is not None
    assert unlock(tmp_path, info.lock_id).lock_id == info.lock_id
    assert read_lock(tmp_path) is None
    with pytest.raises(UsageError, match="no lock"):
        unlock(tmp_path, info.lock_id)
    # the old holder's release does not remove someone else's new lock
    newer = RunLock(tmp_path, "ocsscale run")
    newer.acquire()
    lock.release()
    assert read_lock(tmp_path) is not None
    newer.release()


def test_unlock_refuses_a_live_holder(tmp_path: Path) -> None:
    with RunLock(tmp_path, "ocsscale run") as info, pytest.raises(LockHeld, match="still running"):
        unlock(tmp_path, info.lock_id)


def test_journal_refuses_secrets_and_non_json_by_type() -> None:
    assert to_json({"a": [1, "x", None, True, 1.5]}, "evidence") == (
        '{"a": [1, "x", null, true, 1.5]}'
    )
    with pytest.raises(TypeError, match="secret"):
        to_json({"password": Secret("hunter2", "env:X")}, "undo")
    with pytest.raises(TypeError, match="bytes"):
        to_json({"raw": b"\x00"}, "undo")
    with pytest.raises(TypeError, match="non-string key"):
        to_json({1: "x"}, "evidence")


def test_journal_is_durable_and_keeps_the_undo_written_before_apply(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    try:
        assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        cycle = journal.open_cycle("validate-fe", 3, "run-1")
        seq = journal.begin_step(cycle, "run-1", "validate-fe/pin[a]", "hosts.pin", {}, False)
        assert journal.latest_entry(cycle.cycle_id, "validate-fe/pin[a]").status == "pending"
        journal.record_undo(seq, [{"kind": "add", "target": "a", "summary": "s"}], {"old": 1})
    finally:
        journal.close()
    # another connection (a later process) sees it
    again = Journal.open(tmp_path)
    try:
        entry = again.latest_entry(cycle.cycle_id, "validate-fe/pin[a]")
        assert (entry.status, entry.undo) == ("applying", {"old": 1})
        assert [e.seq for e in again.undoable()] == [seq]
        assert [e.seq for e in again.undoable(from_index=4)] == []
    finally:
        again.close()


class _SignalAfter:
    """The journal's connection, with a signal's KeyboardInterrupt raised right
    after one statement has run, as the handler raises it between two calls."""

    def __init__(self, db: Any, statement: str) -> None:
        self.db, self.statement = db, statement

    def execute(self, sql: str, *args: Any) -> Any:
        cur = self.db.execute(sql, *args)
        if sql == self.statement:
            self.statement = ""
            raise KeyboardInterrupt
        return cur

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


@pytest.mark.parametrize(("statement", "kept"), [("COMMIT", True), ("BEGIN IMMEDIATE", False)])
def test_a_signal_inside_a_journal_write_leaves_the_interrupt_and_a_usable_journal(
    tmp_path: Path, statement: str, kept: bool
) -> None:
    """Ctrl-C or SIGHUP landing just after COMMIT once ended a run with an internal
    error ("cannot rollback - no transaction is active") instead of exit 130/129."""
    journal = Journal.open(tmp_path)
    try:
        cycle = journal.open_cycle("cutover", 8, "run-1")
        seq = journal.begin_step(cycle, "run-1", "cutover/replace", "dns.replace", {}, False)
        real = journal._db
        journal._db = _SignalAfter(real, statement)
        with pytest.raises(KeyboardInterrupt):
            journal.record_undo(seq, [], {"old": 1})
        journal._db = real
        assert not real.in_transaction
        entry = journal.latest_entry(cycle.cycle_id, "cutover/replace")
        assert (entry.status == "applying") is kept
        journal.fail_step(seq, "interrupted")  # the writes that follow still work
        assert journal.latest_entry(cycle.cycle_id, "cutover/replace").status == "failed"
    finally:
        journal.close()


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_journal_and_lock_are_owner_only(tmp_path: Path) -> None:
    """The journal holds hosts files' before-images: only its owner may read it."""
    old = os.umask(0o022)  # the usual umask, which alone would give 0644 files
    try:
        state = tmp_path / ".ocsscale"
        with RunLock(state, "test"):
            assert _mode(state / "lock") == 0o600
            journal = Journal.open(state)
            journal.start_run("r1", "run", "u", "h", 1, {})
            files = sorted(p.name for p in state.iterdir() if p.name.startswith("journal"))
            assert files == ["journal.sqlite", "journal.sqlite-shm", "journal.sqlite-wal"]
            for name in files:
                assert _mode(state / name) == 0o600, name
            journal.close()
        assert _mode(state) == 0o700

        # a journal written by an older ocsscale (0644 in a 0755 directory) is tightened
        os.chmod(state, 0o755)
        os.chmod(state / "journal.sqlite", 0o644)
        Journal.open(state).close()
        assert _mode(state) == 0o700 and _mode(state / "journal.sqlite") == 0o600
    finally:
        os.umask(old)
