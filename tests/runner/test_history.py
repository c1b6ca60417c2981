"""The actions' read-only history over the journal (runner/history.py), and the
cutover watch's own revert reported to the runner, which journals it exactly as
before (status, rollback id, revert evidence), so rollback and report see it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ocsscale.actions.history import LoweredTtl, Reverted
from ocsscale.runner.history import JournalHistory, journal_reverts
from ocsscale.runner.journal import JOURNAL_NAME, Journal

POOL = "ocspool.contoso.test"


def _step(journal: Journal, action: str, args: dict[str, Any], undo: Any, evidence: Any) -> int:
    cycle = journal.open_cycle("cutover", 7, "run-1")
    seq = journal.begin_step(cycle, "run-1", f"cutover/{action}", action, args, False)
    journal.record_undo(seq, [], undo)
    journal.finish_step(seq, evidence, None)
    return seq


def _move(name: str, rdtype: str = "A") -> dict[str, Any]:
    return {"name": name, "type": rdtype, "old": {"values": ["198.18.2.10"], "ttl": 60}}


def test_history_answers_from_the_journal(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    history = JournalHistory(journal)
    assert history.lowered_ttl(POOL) is None
    assert history.moves_in_place() == []
    _step(journal, "dns.lower_ttl", {"name": POOL + ".", "ttl": 60}, None, {"ready_at": 1234.5})
    older = _step(journal, "dns.replace", {"name": POOL}, _move(POOL), {"changed_at": 1.0})
    newer = _step(journal, "dns.replace", {"name": POOL}, _move(POOL), {"changed_at": 2.0})
    srv = _step(journal, "dns.retarget_srv", {}, _move("_sip._tls.contoso.test", "SRV"), {})
    assert history.lowered_ttl(POOL.upper()) == LoweredTtl(1234.5, 60)
    # per record, only its last move, newest first
    assert [m.seq for m in history.moves_in_place()] == [srv, newer]
    assert [m.seq for m in history.moves_in_place(POOL + ".")] == [newer]
    assert older not in [m.seq for m in history.moves_in_place()]
    assert history.moves_in_place(POOL)[0].evidence == {"changed_at": 2.0}
    journal.close()


def test_a_reported_revert_is_journaled_as_a_revert(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    seq = _step(journal, "dns.replace", {"name": POOL}, _move(POOL), {"changed_at": 2.0})
    evidence = {"by": "cutover.watch", "reason": "4 failed probes", "restored": {"ttl": 60}}
    journal_reverts(journal)(Reverted(seq, "watch-20261207T120000", evidence))
    # the history sees it at once: the move is no longer in place
    assert JournalHistory(journal).moves_in_place() == []
    journal.close()
    db = sqlite3.connect(tmp_path / JOURNAL_NAME)
    status, rollback_id, kept, reverted = db.execute(
        "SELECT status, rollback_id, revert_evidence, reverted FROM entries WHERE seq = ?", (seq,)
    ).fetchone()
    db.close()
    assert (status, rollback_id) == ("reverted", "watch-20261207T120000")
    assert json.loads(kept) == evidence and reverted is not None
