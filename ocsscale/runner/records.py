"""A state directory's journal for its readers outside the runner (the report, the
lab's demo): read once, read-only, into typed records.

Only runner/ opens the journal (tests/test_architecture.py); what others need of it
is here, so its tables, its file and its writes stay the runner's own. The journal is
judged before a row is read (runner/evidence.py): one that cannot be trusted is
JournalError (exit 2), and so is a row that cannot be read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .evidence import reading
from .journal import KILLED, Cycle, Entry, Fault

__all__ = ["KILLED", "Cycle", "Entry", "Fault", "JournalRecords", "read_records"]


@dataclass(frozen=True)
class JournalRecords:
    """Every record of one journal, each in the order the journal keeps it."""

    #: runs and rollbacks, oldest first: run_id, kind, status, started, finished,
    #: user, host, pid, detail (pool, playbook, phases), error, load (client load)
    runs: tuple[Mapping[str, Any], ...]
    cycles: tuple[Cycle, ...]
    #: every step, by seq
    entries: tuple[Entry, ...]
    #: what rollback would undo, newest first
    undoable: tuple[Entry, ...]
    #: faults the tool put in place on purpose and has not cleared, oldest first
    faults: tuple[Fault, ...]
    #: the operator's answers (runner/asking.py), oldest first
    answers: tuple[Mapping[str, Any], ...]


def read_records(state_dir: Path) -> JournalRecords | None:
    """The journal of `state_dir`, or None when nothing has run yet there.
    Never creates or writes it; JournalError when it cannot be trusted."""
    with reading(state_dir) as journal:
        if journal is None:
            return None
        # inside `reading`: a row that cannot be read is JournalError, not a traceback
        return JournalRecords(
            runs=tuple(journal.runs()),
            cycles=tuple(journal.cycles()),
            entries=tuple(journal.entries()),
            undoable=tuple(journal.undoable()),
            faults=tuple(journal.faults_in_place()),
            answers=tuple(journal.answers()),
        )
