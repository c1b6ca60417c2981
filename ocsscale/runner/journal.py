"""The journal: an SQLite file next to the pool file that records every step.

It is written after every step change (WAL, synchronous=FULL, one transaction
per write) so a run killed at any moment leaves an exact record: what is done,
what was being applied, and the undo record of every change, written *before*
the change is made.

Each time a phase runs it opens a *cycle*. A cycle that is still `running`
belongs to a run that was killed: the next run resumes it and skips its done
steps. A cycle that ended (`done`, `failed`) is closed: a failed phase runs
again from a new cycle (its cleanup has already put the temporary state back,
so its steps must be evaluated afresh; they are idempotent).

Entries are an append-only log ordered by `seq`; rollback walks it newest first.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..secrets import Secret
from ..statefiles import private_dir, private_file

JOURNAL_NAME = "journal.sqlite"

#: what the journal says of a run that ended without recording how (SIGKILL, power loss)
KILLED = "cut short: the process ended without recording how (killed?)"

STEP_STATUSES = ("pending", "applying", "done", "failed", "reverting", "reverted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,              -- run | rollback
    status TEXT NOT NULL,            -- running | done | failed | interrupted
    started REAL NOT NULL,
    finished REAL,
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    detail TEXT NOT NULL,            -- JSON: pool, playbook, phases (id, title) of the plan
    error TEXT
);
CREATE TABLE IF NOT EXISTS cycles (
    cycle_id INTEGER PRIMARY KEY AUTOINCREMENT,
    phase TEXT NOT NULL,
    phase_index INTEGER NOT NULL,
    run_id TEXT NOT NULL,            -- the run that opened it (a resume keeps it)
    status TEXT NOT NULL,            -- running | done | failed | reverted
    started REAL NOT NULL,
    finished REAL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    cycle_id INTEGER NOT NULL REFERENCES cycles(cycle_id),
    run_id TEXT NOT NULL,
    phase TEXT NOT NULL,
    phase_index INTEGER NOT NULL,
    step_id TEXT NOT NULL,
    action TEXT NOT NULL,
    args TEXT NOT NULL,              -- JSON
    cleanup INTEGER NOT NULL,
    status TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 1,
    changes TEXT,                    -- JSON: what diff said
    undo TEXT,                       -- JSON, written before apply; NULL: nothing to undo
    hosts TEXT,                      -- JSON, with undo: how to reach what revert touches
    evidence TEXT,                   -- JSON
    error TEXT,
    rollback_id TEXT,
    revert_evidence TEXT,
    reverted REAL
);
CREATE INDEX IF NOT EXISTS entries_by_step ON entries(cycle_id, step_id);
CREATE TABLE IF NOT EXISTS faults (
    fault_id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL REFERENCES entries(seq),  -- the step that put it in place
    kind TEXT NOT NULL,              -- service-stopped | link-down | member-drained | ...
    target TEXT NOT NULL,            -- the FE or member it breaks
    summary TEXT NOT NULL,           -- what is broken, in words
    restore TEXT NOT NULL,           -- JSON: what the action needs to take it away
    placed REAL NOT NULL,            -- written *before* the fault is put in place
    cleared REAL,                    -- NULL: in place (or being put in place)
    cleared_by TEXT                  -- the step itself | run ID | rollback ID
);
CREATE TABLE IF NOT EXISTS answers (
    answer_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,            -- the run or rollback that asked
    step TEXT,                       -- the step that asked (NULL: none known)
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    by TEXT NOT NULL,                -- who answered (--by, else the OS user; a sign-off's name)
    via TEXT NOT NULL,               -- terminal | answer (`ocsscale answer`) | flag (--yes)
    notes TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL,                -- ISO UTC, when the answer was given
    asked_at TEXT                    -- ISO UTC, when it was asked (NULL: not known)
);
"""

#: columns added since the first journal: (table, column, type); added on open
_ADDED_COLUMNS = (
    ("entries", "hosts", "TEXT"),
    ("runs", "load", "TEXT"),
    ("answers", "asked_at", "TEXT"),
)


def to_json(value: Any, what: str) -> str:
    """The one place state is serialised: only plain JSON goes in, and a
    `Secret` anywhere inside is refused by its type, so no secret can ever be
    written to the journal."""
    _check_plain(value, what)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _check_plain(value: Any, what: str) -> None:
    if isinstance(value, Secret):
        raise TypeError(f"{what} holds a secret ({value!r}); secrets never go into the journal")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{what} holds a non-finite number")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{what} has a non-string key {key!r}")
            _check_plain(item, what)
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_plain(item, what)
        return
    raise TypeError(f"{what} holds a {type(value).__name__}; only plain JSON is journaled")


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class Entry:
    seq: int
    cycle_id: int
    run_id: str
    phase: str
    phase_index: int
    step_id: str
    action: str
    args: dict[str, Any]
    cleanup: bool
    status: str
    started: float
    finished: float | None
    attempts: int
    changes: list[dict[str, str]] | None
    undo: Any
    evidence: Any
    error: str | None
    rollback_id: str | None
    #: name -> how to reach that host (transports/recorded.py); None: not recorded
    hosts: dict[str, Any] | None = None

    @property
    def has_undo(self) -> bool:
        return self.undo is not None


@dataclass(frozen=True)
class Fault:
    """Something the tool broke on purpose (a drill, a drained restart) and has
    not yet put right, as far as the journal knows."""

    fault_id: int
    seq: int
    kind: str
    target: str
    summary: str
    restore: Any
    placed: float
    cleared: float | None
    cleared_by: str | None
    #: the step that placed it
    phase: str = ""
    step_id: str = ""
    action: str = ""

    def describe(self) -> str:
        return f"{self.summary} (by step {self.step_id} of {self.phase}, journal #{self.seq})"


@dataclass(frozen=True)
class Cycle:
    cycle_id: int
    phase: str
    phase_index: int
    run_id: str
    status: str
    started: float
    finished: float | None
    error: str | None


def _serialised(cls: type) -> type:
    """Every method that touches the database runs under the journal's lock:
    steps of one wave write their records from several threads."""
    for name, method in list(vars(cls).items()):
        if not callable(method) or name.startswith("__") or name == "open":
            continue

        def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(method)
            def locked(self: Journal, *args: Any, **kwargs: Any) -> Any:
                with self._lock:
                    return method(self, *args, **kwargs)

            return locked

        setattr(cls, name, wrap(method))
    return cls


@_serialised
class Journal:
    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self._lock = threading.RLock()
        if read_only:
            # for readers (the report): never creates the file, never writes to
            # it, and reads beside a run that is writing (WAL)
            uri = path.resolve().as_uri() + "?mode=ro"
            self._db = sqlite3.connect(
                uri, uri=True, isolation_level=None, timeout=30.0, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA query_only=ON")
            return
        private_dir(path.parent)
        # Owner-only before SQLite opens it: SQLite gives the -wal and -shm files
        # the database file's permissions. One made by an older ocsscale (0644)
        # is tightened, with the -wal/-shm files it left.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            private_file(name)
        # isolation_level=None: we open every transaction ourselves
        # shared by the threads of a wave, one at a time (the lock above)
        self._db = sqlite3.connect(
            path, isolation_level=None, timeout=30.0, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        for table, column, kind in _ADDED_COLUMNS:
            have = {r["name"] for r in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in have:  # a journal written by an older ocsscale
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    @classmethod
    def open(cls, state_dir: Path) -> Journal:
        return cls(state_dir / JOURNAL_NAME)

    def close(self) -> None:
        self._db.close()

    def _write(self, sql: str, params: Sequence[Any]) -> int:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute(sql, params)
            self._db.execute("COMMIT")
        except BaseException:
            # a signal's KeyboardInterrupt/Terminated is raised between two calls:
            # after COMMIT there is nothing to roll back (the write stands), after
            # BEGIN the transaction must not stay open for the writes that follow
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return cur.lastrowid or 0

    # runs -----------------------------------------------------------------
    def start_run(
        self, run_id: str, kind: str, user: str, host: str, pid: int, detail: Mapping[str, Any]
    ) -> None:
        """Record a run starting. Called under the lock, so a run still marked
        `running` was killed before it could record its end: say so."""
        self._write(
            "UPDATE runs SET status = 'interrupted', finished = COALESCE(finished, ?),"
            " error = COALESCE(error, ?) WHERE status = 'running'",
            (time.time(), KILLED),
        )
        self._write(
            "INSERT INTO runs (run_id, kind, status, started, user, host, pid, detail)"
            " VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
            (run_id, kind, time.time(), user, host, pid, to_json(detail, "run detail")),
        )

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None:
        self._write(
            "UPDATE runs SET status = ?, finished = ?, error = ? WHERE run_id = ?",
            (status, time.time(), error, run_id),
        )

    def record_load(self, run_id: str, report: Mapping[str, Any]) -> None:
        """The run's client load (run --client-load): its requests and failures."""
        self._write(
            "UPDATE runs SET load = ? WHERE run_id = ?", (to_json(report, "client load"), run_id)
        )

    def runs(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM runs ORDER BY started, rowid").fetchall()
        return [
            {**dict(r), "detail": _load(r["detail"]), "load": _load(dict(r).get("load"))}
            for r in rows
        ]

    # cycles ---------------------------------------------------------------
    def latest_cycle(self, phase: str) -> Cycle | None:
        row = self._db.execute(
            "SELECT * FROM cycles WHERE phase = ? ORDER BY cycle_id DESC LIMIT 1", (phase,)
        ).fetchone()
        return Cycle(**dict(row)) if row else None

    def open_cycle(self, phase: str, phase_index: int, run_id: str) -> Cycle:
        cycle_id = self._write(
            "INSERT INTO cycles (phase, phase_index, run_id, status, started)"
            " VALUES (?, ?, ?, 'running', ?)",
            (phase, phase_index, run_id, time.time()),
        )
        cycle = self.cycle(cycle_id)
        assert cycle is not None
        return cycle

    def cycle(self, cycle_id: int) -> Cycle | None:
        row = self._db.execute("SELECT * FROM cycles WHERE cycle_id = ?", (cycle_id,)).fetchone()
        return Cycle(**dict(row)) if row else None

    def close_cycle(self, cycle_id: int, status: str, error: str | None = None) -> None:
        self._write(
            "UPDATE cycles SET status = ?, finished = ?, error = ? WHERE cycle_id = ?",
            (status, time.time(), error, cycle_id),
        )

    def cycles(self) -> list[Cycle]:
        rows = self._db.execute("SELECT * FROM cycles ORDER BY cycle_id").fetchall()
        return [Cycle(**dict(r)) for r in rows]

    def mark_phases_reverted(self, from_index: int) -> None:
        self._write(
            "UPDATE cycles SET status = 'reverted', finished = COALESCE(finished, ?)"
            " WHERE phase_index >= ? AND status != 'reverted'",
            (time.time(), from_index),
        )

    # entries --------------------------------------------------------------
    def latest_entry(self, cycle_id: int, step_id: str) -> Entry | None:
        row = self._db.execute(
            "SELECT * FROM entries WHERE cycle_id = ? AND step_id = ? ORDER BY seq DESC LIMIT 1",
            (cycle_id, step_id),
        ).fetchone()
        return _entry(row) if row else None

    def begin_step(
        self,
        cycle: Cycle,
        run_id: str,
        step_id: str,
        action: str,
        args: Mapping[str, Any],
        cleanup: bool,
    ) -> int:
        return self._write(
            "INSERT INTO entries (cycle_id, run_id, phase, phase_index, step_id, action, args,"
            " cleanup, status, started) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            (
                cycle.cycle_id,
                run_id,
                cycle.phase,
                cycle.phase_index,
                step_id,
                action,
                to_json(args, f"arguments of {step_id}"),
                int(cleanup),
                time.time(),
            ),
        )

    def record_undo(
        self,
        seq: int,
        changes: list[dict[str, str]],
        undo: Any,
        hosts: Mapping[str, Any] | None = None,
    ) -> None:
        """Written before apply: from here on a crash leaves something to undo.
        `hosts` says how to reach the hosts the revert needs (no secret values)."""
        self._write(
            "UPDATE entries SET status = 'applying', changes = ?, undo = ?, hosts = ?"
            " WHERE seq = ?",
            (
                to_json(changes, "changes"),
                None if undo is None else to_json(undo, "undo"),
                None if hosts is None else to_json(hosts, "hosts"),
                seq,
            ),
        )

    def retry(self, seq: int) -> None:
        self._write(
            "UPDATE entries SET status = 'applying', attempts = attempts + 1, error = NULL"
            " WHERE seq = ?",
            (seq,),
        )

    def finish_step(self, seq: int, evidence: Any, changes: list[dict[str, str]] | None) -> None:
        self._write(
            "UPDATE entries SET status = 'done', finished = ?, evidence = ?,"
            " changes = COALESCE(?, changes) WHERE seq = ?",
            (
                time.time(),
                to_json(evidence, "evidence"),
                None if changes is None else to_json(changes, "changes"),
                seq,
            ),
        )

    def fail_step(self, seq: int, error: str, *, refused: bool = False) -> None:
        """`refused`: the step was refused before it changed anything (a guard),
        so it leaves nothing to undo: its undo record is dropped."""
        if refused:
            self._write(
                "UPDATE entries SET status = 'failed', finished = ?, error = ?, undo = NULL,"
                " hosts = NULL WHERE seq = ?",
                (time.time(), error, seq),
            )
            return
        self._write(
            "UPDATE entries SET status = 'failed', finished = ?, error = ? WHERE seq = ?",
            (time.time(), error, seq),
        )

    def entries(self, *, cycle_id: int | None = None) -> list[Entry]:
        if cycle_id is None:
            rows = self._db.execute("SELECT * FROM entries ORDER BY seq").fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM entries WHERE cycle_id = ? ORDER BY seq", (cycle_id,)
            ).fetchall()
        return [_entry(r) for r in rows]

    def undoable(self, from_index: int = 0) -> list[Entry]:
        """What rollback would undo, newest first: every recorded change (also one
        whose apply failed or was cut short) not yet reverted."""
        rows = self._db.execute(
            "SELECT * FROM entries WHERE undo IS NOT NULL AND phase_index >= ?"
            " AND status IN ('applying', 'done', 'failed', 'reverting') ORDER BY seq DESC",
            (from_index,),
        ).fetchall()
        return [_entry(r) for r in rows]

    def begin_revert(self, seq: int, rollback_id: str) -> None:
        self._write(
            "UPDATE entries SET status = 'reverting', rollback_id = ?, error = NULL WHERE seq = ?",
            (rollback_id, seq),
        )

    def finish_revert(self, seq: int, evidence: Any) -> None:
        self._write(
            "UPDATE entries SET status = 'reverted', reverted = ?, revert_evidence = ?"
            " WHERE seq = ?",
            (time.time(), to_json(evidence, "revert evidence"), seq),
        )

    def skip_revert(self, seq: int, rollback_id: str, evidence: Any) -> None:
        """Mark a change reverted without reverting it: a later change of the same
        thing cancels it, or the revert of an older one puts it back."""
        self._write(
            "UPDATE entries SET status = 'reverted', rollback_id = ?, reverted = ?,"
            " revert_evidence = ?, error = NULL WHERE seq = ?",
            (rollback_id, time.time(), to_json(evidence, "revert evidence"), seq),
        )

    def revert_failed(self, seq: int, error: str) -> None:
        # stays `reverting`: the next rollback tries it again
        self._write("UPDATE entries SET error = ? WHERE seq = ?", (error, seq))

    # faults the tool puts in place on purpose ----------------------------------------
    def place_fault(self, seq: int, kind: str, target: str, summary: str, restore: Any) -> int:
        """Journaled *before* the fault is put in place: from here on a crash
        leaves a record of it, and the next command puts it right first."""
        return self._write(
            "INSERT INTO faults (seq, kind, target, summary, restore, placed)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (seq, kind, target, summary, to_json(restore, "fault restore"), time.time()),
        )

    def clear_fault(self, fault_id: int, by: str) -> None:
        self._write(
            "UPDATE faults SET cleared = ?, cleared_by = ? WHERE fault_id = ? AND cleared IS NULL",
            (time.time(), by, fault_id),
        )

    def faults_in_place(self) -> list[Fault]:
        """Faults put in place and not cleared, oldest first."""
        try:
            rows = self._db.execute(
                "SELECT f.*, e.phase AS phase, e.step_id AS step_id, e.action AS action"
                " FROM faults f JOIN entries e ON e.seq = f.seq"
                " WHERE f.cleared IS NULL ORDER BY f.fault_id"
            ).fetchall()
        except sqlite3.OperationalError:
            return []  # a journal opened read-only from before faults were journaled
        return [Fault(**{**dict(r), "restore": json.loads(r["restore"])}) for r in rows]

    # answers the operator gave (runner/asking.py) ------------------------------------
    def record_answer(self, run_id: str, answer: Mapping[str, Any]) -> None:
        self._write(
            "INSERT INTO answers (run_id, step, question, answer, by, via, notes, at, asked_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                answer.get("step"),
                str(answer["question"]),
                str(answer["answer"]),
                str(answer["by"]),
                str(answer["via"]),
                str(answer.get("notes") or ""),
                str(answer["at"]),
                None if answer.get("asked_at") is None else str(answer["asked_at"]),
            ),
        )

    def answers(self) -> list[dict[str, Any]]:
        """Every answer, oldest first."""
        try:
            rows = self._db.execute("SELECT * FROM answers ORDER BY answer_id").fetchall()
        except sqlite3.OperationalError:
            return []  # a journal opened read-only from before answers were journaled
        return [dict(r) for r in rows]

    def in_progress(self) -> Iterator[Entry]:
        rows = self._db.execute(
            "SELECT * FROM entries WHERE status IN ('pending', 'applying', 'reverting')"
            " ORDER BY seq"
        ).fetchall()
        return (_entry(r) for r in rows)


def latest_evidence(state_dir: Path, action: str) -> dict[str, Any]:
    """host -> the evidence of the latest done step of `action` that names a `host`
    argument; {} when there is no journal. Opened read-only: `plan` reads it and
    writes nothing (no journal file is created, no WAL checkpoint is made)."""
    path = state_dir / JOURNAL_NAME
    if not path.is_file():
        return {}
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error:
        return {}
    try:
        rows = db.execute(
            "SELECT args, evidence FROM entries WHERE action = ? AND status = 'done'"
            " AND evidence IS NOT NULL ORDER BY seq",
            (action,),
        ).fetchall()
    except sqlite3.Error:
        return {}
    finally:
        db.close()
    found: dict[str, Any] = {}
    for args, evidence in rows:
        host = (_load(args) or {}).get("host")
        value = _load(evidence)
        if isinstance(host, str) and isinstance(value, dict):
            found[host] = value
    return found


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(
        seq=row["seq"],
        cycle_id=row["cycle_id"],
        run_id=row["run_id"],
        phase=row["phase"],
        phase_index=row["phase_index"],
        step_id=row["step_id"],
        action=row["action"],
        args=json.loads(row["args"]),
        cleanup=bool(row["cleanup"]),
        status=row["status"],
        started=row["started"],
        finished=row["finished"],
        attempts=row["attempts"],
        changes=_load(row["changes"]),
        undo=_load(row["undo"]),
        evidence=_load(row["evidence"]),
        error=row["error"],
        rollback_id=row["rollback_id"],
        # read-only, a journal of an older ocsscale keeps its columns as they were
        # (`in row` would look among the values of a Row, not its keys)
        hosts=_load(row["hosts"]) if "hosts" in row.keys() else None,  # noqa: SIM118
    )
