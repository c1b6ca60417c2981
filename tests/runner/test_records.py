"""runner/records.py: the journal as the report and the demo read it, typed,
read-only, judged before a row is read."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from ocsscale.errors import JournalError
from ocsscale.runner.records import Entry, read_records
from ocsscale.runner.session import state_dir_for

from .conftest import LocalPool
from .test_journal_evidence import _run_in_process


def test_nothing_has_run_yet(local_pool: LocalPool) -> None:
    state = state_dir_for(local_pool.pool)
    assert read_records(state) is None
    assert not state.exists() or not any(state.iterdir()), "reading created nothing"


def test_a_run_reads_as_typed_records_and_the_journal_is_not_written(
    local_pool: LocalPool,
) -> None:
    _run_in_process(local_pool)
    state = state_dir_for(local_pool.pool)
    journal = state / "journal.sqlite"
    before = hashlib.sha256(journal.read_bytes()).hexdigest()
    records = read_records(state)
    assert records is not None
    assert [r["kind"] for r in records.runs] == ["run"]
    assert [c.phase for c in records.cycles] == ["validate-fe"]
    assert len(records.entries) == 4 and {e.action for e in records.entries} == {"hosts.pin"}
    assert all(isinstance(e, Entry) and e.status == "done" for e in records.entries)
    # every pin left in place is something rollback would undo, newest first
    assert [e.seq for e in records.undoable] == sorted(
        (e.seq for e in records.entries), reverse=True
    )
    assert records.faults == () and records.answers == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        records.entries = ()  # type: ignore[misc]
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == before


def test_a_garbled_journal_is_refused(local_pool: LocalPool) -> None:
    _run_in_process(local_pool)
    state = state_dir_for(local_pool.pool)
    for extra in state.glob("journal.sqlite-*"):
        extra.unlink()
    (state / "journal.sqlite").write_bytes(b"not a journal at all")
    with pytest.raises(JournalError, match="not an SQLite database"):
        read_records(state)
