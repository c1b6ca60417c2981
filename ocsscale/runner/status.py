"""`ocsscale status`: phases done, the step in progress and what rollback would
undo, from the journal and the lock alone (the pool file need not validate)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..actions.base import Context, registry
from ..errors import OcsscaleError, UsageError
from . import answers
from .evidence import reading
from .faults import broken_by_tool
from .journal import JOURNAL_NAME, KILLED, Entry
from .lease import lease_status
from .lock import read_lock
from .next_steps import next_steps
from .plugins import load_actions
from .rollback import needless_reverts

if TYPE_CHECKING:
    from ..config.model import Pool
    from ..config.profiles import Profile


def _entry_json(entry: Entry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "phase": entry.phase,
        "step": entry.step_id,
        "action": entry.action,
        "status": entry.status,
        "summary": "; ".join(c.get("summary", "") for c in entry.changes or []),
        "started": entry.started,
        "error": entry.error,
    }


def waiting_for(state_dir: Path) -> dict[str, Any] | None:
    """The question a run waits on (answers.py), without its checklist's lines;
    a question file ocsscale did not write is named, never read as "nothing"."""
    try:
        asked = answers.waiting(state_dir)
    except answers.AnswerFileError as exc:
        return {"error": exc.message}
    if asked is None:
        return None
    checklist = asked.pop("checklist")
    asked["checklist_title"] = checklist["title"] if checklist else None
    return asked


def _no_host(name: str) -> Any:
    raise UsageError(f"status contacts no host ({name})")


def _needless(entries: list[Entry]) -> dict[int, str]:
    """seq -> why rollback would not revert that change (rollback.needless_reverts:
    a pin and its later unpin cancel out), judged from the journal alone."""
    if not entries:
        return {}
    try:
        actions = load_actions()
    except OcsscaleError:
        actions = registry()  # a plugin that does not import: its changes are listed
    # status reads no pool file: the actions here only judge undo records (undo_chain);
    # one that reaches for the pool fails (caught by needless_reverts) and is listed
    unread = Context(pool=cast("Pool", None), profile=cast("Profile", None), host=_no_host)
    return needless_reverts(entries, unread, actions)


def status_report(
    state_dir: Path, config: Path | None = None, now: float | None = None
) -> dict[str, Any]:
    """Phases done, the step in progress and what rollback would undo; with the
    pool file's path (`config`, as the user named it), the run lease as far as it
    is known here; where the migration stands and what to run next (next_steps.py)."""
    lock = read_lock(state_dir)
    report: dict[str, Any] = {
        "journal": str(state_dir / JOURNAL_NAME),
        "lock": None
        if lock is None
        else {
            "lock_id": lock.lock_id,
            "user": lock.user,
            "host": lock.host,
            "pid": lock.pid,
            "started": lock.started,
            "command": lock.command,
            "stale": lock.stale,
        },
        "last_run": None,
        "phases": [],
        "in_progress": [],
        "lease": None if config is None else lease_status(config, lock),
        "rollback_would_undo": [],
        # changes rollback does not revert (a pin and its unpin cancel out): it
        # only removes their backups
        "rollback_cancel_out": [],
        "faults_in_place": [],
        "watch": None,
        "waiting": waiting_for(state_dir),
        "stage": None,
        "next": [],
    }
    # read-only: status never writes the journal; a missing or empty one next
    # to the evidence of a run, or one that is not a journal, is JournalError
    with reading(state_dir) as journal:
        if journal is None:
            report.update(next_steps(report, [], [], config, now))
            return report
        runs = journal.runs()
        plan_runs = [r for r in runs if r["kind"] == "run"]
        if runs:
            last = runs[-1]
            report["last_run"] = {
                k: last[k] for k in ("run_id", "kind", "status", "started", "finished", "error")
            }
            if last["status"] == "running" and (lock is None or lock.stale):
                # nobody holds the lock for it: the run was killed
                report["last_run"]["status"] = "interrupted"
                report["last_run"]["error"] = KILLED
        latest: dict[str, str] = {}
        for cycle in journal.cycles():
            latest[cycle.phase] = cycle.status
        listed = plan_runs[-1]["detail"]["phases"] if plan_runs else []
        for phase in listed:
            state = "skipped" if phase.get("skipped") else latest.get(phase["id"], "not started")
            report["phases"].append(
                {
                    "id": phase["id"],
                    "title": phase["title"],
                    "status": state,
                    "skipped": phase.get("skipped"),
                }
            )
        live = lock is not None and not lock.stale
        report.update(broken_by_tool(journal, live))
        report["in_progress"] = [_entry_json(e) for e in journal.in_progress()]
        undoable = journal.undoable()
        needless = _needless(undoable)
        report["rollback_would_undo"] = [_entry_json(e) for e in undoable if e.seq not in needless]
        report["rollback_cancel_out"] = [
            {**_entry_json(e), "reason": needless[e.seq]} for e in undoable if e.seq in needless
        ]
        report.update(next_steps(report, journal.entries(), runs, config, now))
    return report
