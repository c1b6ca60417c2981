"""Whether the journal can be trusted, before anything reads or writes it.

The journal is the only record of what a run changed and how to undo it. One
that is missing or empty must not read as "nothing has run" when `.ocsscale/`
holds what only a run leaves (EVIDENCE): `status` would say all is clean,
`rollback` that there is nothing to undo, and `run` would start afresh with
the hosts cut over. A file in its place that is not a journal (not SQLite, or
tables of another shape) is refused always. Either way the command stops with
JournalError (exit 2) before it reads a row or writes a byte; with no journal
and no evidence, nothing has run yet.
"""

from __future__ import annotations

import fnmatch
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import JournalError, OcsscaleError
from .journal import _ADDED_COLUMNS, _SCHEMA, JOURNAL_NAME, Journal
from .lease import RECORD_NAME as LEASE_RECORD
from .lock import LOCK_NAME, read_lock

#: What only a run, or a command after one, leaves in .ocsscale/: (name
#: pattern, what it is). debug.log is not here: a crash of any command writes it.
#: Anything else that is not listed as harmless counts too (fail closed).
EVIDENCE = (
    (f"{JOURNAL_NAME}?*", "another file of the journal (its write-ahead log, a copy)"),
    (LOCK_NAME, "a run's lock"),
    (f".{LOCK_NAME}.*", "a lock being taken"),
    (LEASE_RECORD, "a run's lease record"),
    (f".{LEASE_RECORD}.*", "a run's lease record being written"),
    ("failover-procedure.*", "the failover procedure validate-lb writes"),
    ("report.*", "a report"),
    ("waiting.json", "a run's question (`ocsscale answer`)"),
    (".waiting.json.*", "a run's question being written"),
    ("answers", "the answers to a run's questions"),
    ("*.bak", "a backup"),
    ("*backup*", "a backup"),
)

#: runner/lease.RECORD_NAME: the lease a run takes with its lock, before the journal

#: what says nothing of a run: the journal itself (judged on its own) and crash logs
HARMLESS = (JOURNAL_NAME, "debug.log")

#: report.FORMAT -> what its head says when it was made with no journal (the
#: pool file's plan alone, before any run): such a report is no evidence
_PLAN_ONLY_REPORTS = {
    "report.html": b"<span>journal none yet</span>",
    "report.md": b"and journal none yet.",
    "report.json": b'\n  "journal": null,\n',
}
_REPORT_HEAD = 64 * 1024

#: entries of .ocsscale/ looked at, at most (a directory of a million files is not read)
_MAX_ENTRIES = 10_000

#: the tables every journal has, and their columns as the first ocsscale made them
_CORE_TABLES = ("runs", "cycles", "entries")

_SQLITE_MAGIC = b"SQLite format 3\x00"

_WHAT_TO_DO = (
    "put the journal back from a copy (with its -wal file, if it had one); only if nothing "
    "has run against these hosts, move the .ocsscale directory aside and start again"
)


def _core_columns() -> dict[str, set[str]]:
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_SCHEMA)
        columns = {t: {r[1] for r in db.execute(f"PRAGMA table_info({t})")} for t in _CORE_TABLES}
    finally:
        db.close()
    for table, column, _kind in _ADDED_COLUMNS:
        columns.get(table, set()).discard(column)  # an older journal lacks it: readers cope
    return columns


def evidence_found(state_dir: Path, *, holding_lock: bool = False) -> list[str]:
    """What in `state_dir` says a run has been, as labels of EVIDENCE (never the
    names found: they are not echoed). `holding_lock`: the caller's own lock
    does not count."""
    try:
        scan = os.scandir(state_dir)
    except FileNotFoundError:
        return []
    except OSError:
        return ["a directory that cannot be listed"]  # fail closed
    found: list[str] = []
    others = 0
    with scan:
        for n, item in enumerate(scan):
            if n >= _MAX_ENTRIES:
                break
            name = item.name
            if name in HARMLESS or _plan_only_report(Path(item.path)):
                continue
            if holding_lock and any(
                name == own or fnmatch.fnmatchcase(name, f".{own}.*")
                for own in (LOCK_NAME, LEASE_RECORD)
            ):
                continue  # our own run's, written before its journal
            label = next((what for p, what in EVIDENCE if fnmatch.fnmatchcase(name, p)), None)
            if name == LOCK_NAME:
                label = _lock_label(state_dir)
            if label is None:
                others += 1
            elif label not in found:
                found.append(label)
    if others:
        found.append(f"{others} other file{'s' if others > 1 else ''} ocsscale did not expect")
    return found


def _lock_label(state_dir: Path) -> str:
    """The lock, with its LOCK_ID when it reads as one: `status` is refused too,
    and `ocsscale unlock LOCK_ID` needs it."""
    try:
        info = read_lock(state_dir)
    except OcsscaleError:
        info = None
    lock_id = "" if info is None else str(info.lock_id)
    if re.fullmatch(r"[0-9a-f]{4,32}", lock_id):
        return f"a run's lock, LOCK_ID {lock_id}"
    return "a run's lock"


def _plan_only_report(path: Path) -> bool:
    marker = _PLAN_ONLY_REPORTS.get(path.name)
    if marker is None:
        return False
    try:
        with path.open("rb") as f:
            return marker in f.read(_REPORT_HEAD)
    except OSError:
        return False  # unread: it counts (fail closed)


def _garbled(path: Path, why: str) -> JournalError:
    return JournalError(
        f"the journal {path} {why}; it was not read and nothing was changed",
        hint=_WHAT_TO_DO,
    )


def _tables(path: Path) -> dict[str, set[str]]:
    """table -> columns of the SQLite file `path`, opened read-only."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.Error:
        raise _garbled(path, "cannot be opened as SQLite") from None
    try:
        names = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {t: {r[1] for r in db.execute(f'PRAGMA table_info("{t}")')} for t in names}
    except sqlite3.Error as exc:
        raise _garbled(path, f"is not a readable SQLite database ({type(exc).__name__})") from None
    finally:
        db.close()


def _state(path: Path) -> str:
    """missing | empty (0 bytes, or SQLite without a table) | journal; JournalError
    for a file that is not a journal."""
    try:
        if not path.exists() and not path.is_symlink():
            return "missing"
        if not path.is_file():
            raise _garbled(path, "is not a file")
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise _garbled(path, f"cannot be read ({type(exc).__name__})") from None
    if not head:
        return "empty"
    if head != _SQLITE_MAGIC:
        raise _garbled(path, "is not an SQLite database (damaged, or another file in its place)")
    tables = _tables(path)
    if not tables:
        return "empty"
    for table, columns in _core_columns().items():
        if table not in tables or not columns <= tables[table]:
            raise _garbled(path, "holds tables of another shape: it is not an ocsscale journal")
    return "journal"


def check_journal(state_dir: Path, *, holding_lock: bool = False) -> bool:
    """True: a journal to read. False: nothing has run yet (no journal, or an
    empty one, and no evidence of a run). JournalError (exit 2) otherwise.
    Reads only; creates nothing."""
    path = state_dir / JOURNAL_NAME
    state = _state(path)
    if state == "journal":
        return True
    found = evidence_found(state_dir, holding_lock=holding_lock)
    if not found:
        return False
    what = "is not there" if state == "missing" else "is empty"
    raise JournalError(
        f"the journal {path} {what}, but {state_dir} holds what a run leaves "
        f"({'; '.join(found)}): what ran and how to undo it cannot be known, so nothing "
        "was read or changed",
        hint=_WHAT_TO_DO,
    )


def check_rows(state_dir: Path) -> None:
    """check_journal, and every row of it read once (read-only): a run must not
    find halfway that a row it needs cannot be read."""
    with reading(state_dir) as journal:
        if journal is not None:
            journal.runs()
            journal.cycles()
            journal.entries()


@contextmanager
def reading_file(path: Path) -> Iterator[Journal | None]:
    """A journal file named by the operator (a rehearsal's, perhaps a copy under
    another name) opened read-only; None when it is empty. JournalError when it
    is missing or not a journal."""
    state = _state(path)
    if state == "missing":
        raise JournalError(f"there is no journal at {path}")
    if state == "empty":
        yield None
        return
    with _read_only(path) as journal:
        yield journal


@contextmanager
def reading(state_dir: Path) -> Iterator[Journal | None]:
    """The journal opened read-only (never created, never written), or None
    when nothing has run yet. Rows that cannot be read are JournalError too."""
    if not check_journal(state_dir):
        yield None
        return
    with _read_only(state_dir / JOURNAL_NAME) as journal:
        yield journal


@contextmanager
def _read_only(path: Path) -> Iterator[Journal]:
    """The journal file at `path` opened read-only; what cannot be opened or read
    is JournalError."""
    try:
        journal = Journal(path, read_only=True)
    except sqlite3.Error:
        raise _garbled(path, "cannot be opened as SQLite") from None
    try:
        yield journal
    except (sqlite3.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        # ValueError: a JSON column that is not JSON; the others: JSON of another shape
        raise _garbled(path, f"has rows that cannot be read ({type(exc).__name__})") from None
    finally:
        journal.close()
