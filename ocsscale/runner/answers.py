"""The answer channel: a run's question and its answers as files in the state dir.

A run that asks writes `waiting.json` (the question, its choices, the checklist
told since the previous question); `ocsscale answer`, from any terminal of the
admin machine, creates `answers/<id>.json` with O_EXCL, so the first answer
wins: the run's own terminal answers through the same O_EXCL file. Both files
are 0600 in the 0700 state dir, written whole (statefiles.py).

Every file is read strictly: bounded in size, never through a symlink, every
field of the right type and length. One that is not is refused with
AnswerFileError, which names the file and never echoes what it holds.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import stat
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import OcsscaleError, UsageError
from ..statefiles import private_dir, write_private
from .lock import pid_alive

WAITING_NAME = "waiting.json"
ANSWERS_DIR = "answers"
#: waiting.json holds a checklist (a farm's members, a DNS change): generous, bounded
MAX_WAITING_BYTES = 256 * 1024
MAX_ANSWER_BYTES = 8 * 1024
MAX_QUESTION = 2000
MAX_CHOICES = 20
MAX_LINES = 500
MAX_LINE = 2000
MAX_BY = 100
MAX_NOTES = 2000
VIAS = ("terminal", "answer")
#: what a person may type for the client tests' sign-off (`ocsscale answer pass`)
SHORT_ANSWERS = {"pass": "passed", "fail": "failed"}
#: how a confirmation was given without a question asked: `--yes` on the command line
FLAG = "flag"
#: the run's own mark in an answer file: it stopped waiting (timed out, interrupted)
WITHDRAWN = "withdrawn"

_ID = re.compile(r"[0-9a-f]{32}")
_CHOICE = re.compile(r"[a-z][a-z0-9-]{0,39}")


class AnswerFileError(UsageError):
    """waiting.json or an answer file that ocsscale did not write as it is."""


class AlreadyAnswered(OcsscaleError):
    """Somebody answered that question first (exit 1: this answer was not taken)."""


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def check_name(value: str) -> str:
    """`--operator NAME`: who answers at the run's terminal; bounded as `--by` is.
    UsageError (nothing done) when it is not a name."""
    try:
        return check_by(value)
    except ValueError:
        raise UsageError(
            f"--operator is not a name of at most {MAX_BY} characters without control "
            "characters: nothing was done"
        ) from None


def confirmed(question: str, *, by: str, via: str, asked_at: str) -> dict[str, Any]:
    """A run's or rollback's "go ahead", as an answer is journaled: typed at the
    run's terminal, or given by `--yes` (via FLAG)."""
    return {
        "step": None,
        "question": question[:MAX_QUESTION],
        "answer": "yes",
        "by": by,
        "via": via,
        "notes": "",
        "at": now_utc(),
        "asked_at": asked_at,
    }


def waiting_path(state_dir: Path) -> Path:
    return Path(state_dir) / WAITING_NAME


def answer_path(state_dir: Path, qid: str) -> Path:
    if not _ID.fullmatch(qid):
        raise AnswerFileError("a question id is 32 lowercase hex digits")
    return Path(state_dir) / ANSWERS_DIR / f"{qid}.json"


# -- checks ----------------------------------------------------------------------
def _text(value: Any, limit: int, what: str, *, empty: bool = True) -> str:
    if not isinstance(value, str) or len(value) > limit or (not empty and not value.strip()):
        raise ValueError(f"{what} is not a text of at most {limit} characters")
    if any(ord(c) < 32 and c not in "\t" for c in value):
        raise ValueError(f"{what} holds control characters")
    return value


def check_choices(choices: Sequence[str]) -> list[str]:
    found = list(choices)
    if not found or len(found) > MAX_CHOICES or len(set(found)) != len(found):
        raise ValueError("choices: 1 to 20 different words")
    for choice in found:
        if not isinstance(choice, str) or not _CHOICE.fullmatch(choice):
            raise ValueError("choices: lowercase words (a-z, 0-9, -), at most 40 characters")
    return found


def check_by(value: Any) -> str:
    return _text(value, MAX_BY, "--by", empty=False).strip()


def check_notes(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_NOTES:
        raise ValueError(f"--notes is not a text of at most {MAX_NOTES} characters")
    # notes may hold line breaks (several findings); no other control character
    if any(ord(c) < 32 and c not in "\t\n" for c in value):
        raise ValueError("--notes holds control characters")
    return value


def _checklist(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"title", "lines", "data"}:
        raise ValueError("checklist is not {title, lines, data}")
    lines = value.get("lines")
    if not isinstance(lines, list) or len(lines) > MAX_LINES:
        raise ValueError("checklist.lines is not a list")
    data = value.get("data")
    if data is not None and not isinstance(data, dict):
        raise ValueError("checklist.data is not an object")
    return {
        "title": _text(value.get("title"), MAX_LINE, "checklist.title"),
        "lines": [_text(line, MAX_LINE, "a checklist line") for line in lines],
        "data": data,
    }


def _question(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    known = {"id", "run_pid", "asked_at", "step", "question", "choices", "notes", "checklist"}
    if set(value) - known or not {"id", "run_pid", "question", "choices"} <= set(value):
        raise ValueError("its fields are not those of a question")
    qid, pid = value["id"], value["run_pid"]
    if not isinstance(qid, str) or not _ID.fullmatch(qid):
        raise ValueError("id is not 32 lowercase hex digits")
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**31:
        raise ValueError("run_pid is not a process id")
    step = value.get("step")
    notes = value.get("notes", False)
    if not isinstance(notes, bool):
        raise ValueError("notes is not true or false")
    return {
        "id": qid,
        "run_pid": pid,
        "asked_at": _text(value.get("asked_at", ""), 40, "asked_at"),
        "step": None if step is None else _text(step, 300, "step"),
        "question": _text(value["question"], MAX_QUESTION, "question", empty=False),
        "choices": check_choices(value["choices"]),
        "notes": notes,
        "checklist": _checklist(value.get("checklist")),
    }


def _answer(value: Any, qid: str) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != {"id", "answer", "by", "notes", "via", "at"}:
        raise ValueError("its fields are not those of an answer")
    if value["id"] != qid:
        raise ValueError("it answers another question")
    if value["via"] not in (*VIAS, WITHDRAWN):
        raise ValueError("via is neither terminal nor answer")
    answer = value["answer"]
    if not isinstance(answer, str) or not _CHOICE.fullmatch(answer):
        raise ValueError("answer is not a word")
    return {
        "id": qid,
        "answer": answer,
        "by": check_by(value["by"]),
        "notes": check_notes(value["notes"]),
        "via": value["via"],
        "at": _text(value["at"], 40, "at"),
    }


def _read_bounded(path: Path, limit: int) -> bytes | None:
    """The file's bytes, None when there is none. Never through a symlink, never
    a FIFO or device (which could block), never more than `limit` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AnswerFileError(f"{path} cannot be opened ({exc.strerror}): refused") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise AnswerFileError(f"{path} is not a regular file: refused")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise AnswerFileError(f"{path} is larger than {limit} bytes: refused")
    return b"".join(chunks)


def _parse(path: Path, raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise AnswerFileError(f"{path} is not JSON ocsscale wrote: refused") from None


# -- the question ---------------------------------------------------------------
def question(
    text: str,
    choices: Sequence[str],
    *,
    step: str | None = None,
    notes: bool = False,
    checklist: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A new question in waiting.json's shape (checked as a reader will check it)."""
    asked = {
        "id": uuid.uuid4().hex,
        "run_pid": os.getpid(),
        "asked_at": now_utc(),
        "step": step,
        "question": text[:MAX_QUESTION],
        "choices": list(choices),
        "notes": notes,
        "checklist": None if checklist is None else dict(checklist),
    }
    try:
        return _question(asked)
    except ValueError as exc:
        raise UsageError(f"a question that cannot be posted: {exc}") from None


def post(state_dir: Path, asked: Mapping[str, Any]) -> None:
    """Write waiting.json (OSError when the state dir cannot take it)."""
    text = json.dumps(asked, ensure_ascii=False, indent=1)
    if len(text.encode()) > MAX_WAITING_BYTES:
        # a checklist too big to post whole: the lines stay on the terminal
        asked = {**asked, "checklist": None}
        text = json.dumps(asked, ensure_ascii=False, indent=1)
    write_private(waiting_path(state_dir), text)


def waiting(state_dir: Path) -> dict[str, Any] | None:
    """What the run waits for (waiting.json, checked), or None; with `stale`: the
    run that asked is gone. AnswerFileError when the file is not one ocsscale wrote."""
    path = waiting_path(state_dir)
    raw = _read_bounded(path, MAX_WAITING_BYTES)
    if raw is None:
        return None
    try:
        found = _question(_parse(path, raw))
    except ValueError as exc:
        raise AnswerFileError(f"{path} is not a question ocsscale wrote ({exc}): refused") from None
    found["stale"] = not pid_alive(found["run_pid"])
    return found


def withdraw(state_dir: Path, qid: str) -> dict[str, Any] | None:
    """Stop waiting for `qid`: its answer file is taken with the run's own mark
    (O_EXCL, so an answer written after this is refused as too late, and one
    written before it is returned), then waiting.json is removed."""
    found: dict[str, Any] | None = None
    try:
        give(state_dir, qid, WITHDRAWN, by="ocsscale", via=WITHDRAWN)
    except AlreadyAnswered:
        try:
            found = taken(state_dir, qid)
        except AnswerFileError:
            found = None
    except OSError:
        pass  # the state dir went: nothing can answer any more
    try:
        current = waiting(state_dir)
    except AnswerFileError:
        current = None  # the run is the only writer: its own file goes
        waiting_path(state_dir).unlink(missing_ok=True)
    if current is not None and current["id"] == qid:
        waiting_path(state_dir).unlink(missing_ok=True)
    return None if found is None or found["via"] == WITHDRAWN else found


def clear(state_dir: Path) -> None:
    """What a run that ended without tidying left (a killed run's question and
    answers): removed by the next run, under the lock, before it asks anything."""
    waiting_path(state_dir).unlink(missing_ok=True)
    folder = Path(state_dir) / ANSWERS_DIR
    if folder.is_dir() and not folder.is_symlink():
        for path in folder.glob("*.json"):
            if _ID.fullmatch(path.stem):
                path.unlink(missing_ok=True)


# -- answers --------------------------------------------------------------------
def give(
    state_dir: Path, qid: str, answer: str, *, by: str, notes: str = "", via: str = "answer"
) -> dict[str, Any]:
    """Create answers/<qid>.json, once: AlreadyAnswered when somebody was first."""
    try:
        record = _answer(
            {"id": qid, "answer": answer, "by": by, "notes": notes, "via": via, "at": now_utc()},
            qid,
        )
    except ValueError as exc:
        raise UsageError(f"not an answer: {exc}") from None
    path = answer_path(state_dir, qid)
    private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise AlreadyAnswered(
            "somebody answered that question first: this answer was not taken"
        ) from None
    # written to a file nobody reads until it is whole: the reader takes only a
    # file that parses, and waits a moment for one that does not yet (taken())
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False))
        f.flush()
        os.fsync(f.fileno())
    return record


#: an answer file still being written is given this long to become whole
_PARTIAL_GRACE = 2.0


def taken(state_dir: Path, qid: str, *, first_seen: dict[str, float] | None = None) -> Any:
    """The answer to `qid`, or None. An answer file that does not parse is
    given a moment (it may be being written), then refused: AnswerFileError.
    `first_seen` keeps, between calls, when an unparsable file was first seen."""
    path = answer_path(state_dir, qid)
    raw = _read_bounded(path, MAX_ANSWER_BYTES)
    if raw is None:
        return None
    try:
        return _answer(_parse(path, raw), qid)
    except (AnswerFileError, ValueError) as exc:
        if first_seen is not None:
            since = first_seen.setdefault(qid, time.monotonic())
            if time.monotonic() - since < _PARTIAL_GRACE:
                return None
        why = str(exc) if isinstance(exc, ValueError) else "not JSON"
        raise AnswerFileError(f"{path} is not an answer ocsscale wrote ({why}): refused") from None
