"""The actions' read-only view of the run's journal (actions/history.py's
History), and the port through which an action reports a change it reverted
itself, which the runner journals as a rollback would."""

from __future__ import annotations

from collections.abc import Callable

from ..actions import history
from ..actions.history import LoweredTtl, Move, Reverted, StepRecord
from .journal import Journal


class JournalHistory:
    """History read anew from the journal at every question (a step of this run,
    or the watch's own revert, may have changed it since)."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def _records(self) -> list[StepRecord]:
        return [
            StepRecord(e.seq, e.action, e.args, e.status, e.started, e.finished, e.undo, e.evidence)
            for e in self._journal.entries()
        ]

    def lowered_ttl(self, name: str) -> LoweredTtl | None:
        return history.lowered_ttl(self._records(), name)

    def moves_in_place(self, name: str | None = None) -> list[Move]:
        return history.moves_in_place(self._records(), name)


def journal_reverts(journal: Journal) -> Callable[[Reverted], None]:
    """Context.report_revert for a run: the move's step is marked reverted, as
    `rollback` marks the changes it puts back (begin, then finish)."""

    def report(reverted: Reverted) -> None:
        journal.begin_revert(reverted.seq, reverted.rollback_id)
        journal.finish_revert(reverted.seq, dict(reverted.evidence))

    return report
