"""What earlier steps did, as actions may see it: read-only (issue 19: only
runner/ reads or writes the journal).

The runner implements `History` over its journal (runner/history.py) with the
functions below, which judge the records: what a step's evidence and undo record
mean stays with the actions that wrote them. A change an action undoes itself
(the cutover watch's automatic revert) is reported to the runner as a `Reverted`
(Context.report_revert), and the runner journals it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .base import Json

#: the step that lowers a record's TTL ahead of the cutover (actions/dns.py)
LOWER_TTL_ACTION = "dns.lower_ttl"
#: the steps that move a name at the cutover (what the watch's revert puts back)
MOVE_ACTIONS = ("dns.replace", "dns.retarget_srv")


@dataclass(frozen=True)
class StepRecord:
    """One earlier step, a copy of its journal entry's fields that actions read."""

    seq: int
    action: str
    args: Mapping[str, Json]
    status: str
    started: float
    finished: float | None
    undo: Json
    evidence: Json


@dataclass(frozen=True)
class LoweredTtl:
    """When lower-ttl's wait for a name ends, and the TTL it lowered to."""

    ready_at: float
    ttl: int


@dataclass(frozen=True)
class Move:
    """A cutover change still in place: its step, undo record and evidence."""

    seq: int
    undo: Mapping[str, Json]
    evidence: Json

    @property
    def name(self) -> str:
        return str(self.undo.get("name"))


@dataclass(frozen=True)
class Reverted:
    """A cutover change an action put back itself (the watch over its budget): the
    runner marks the move's step reverted by `rollback_id`, with `evidence`."""

    seq: int
    rollback_id: str
    evidence: Mapping[str, Json]


class History(Protocol):
    """The run's record, read-only (runner/history.py over the journal)."""

    def lowered_ttl(self, name: str) -> LoweredTtl | None:
        """The last finished lower-ttl of `name` (None: never lowered)."""
        ...

    def moves_in_place(self, name: str | None = None) -> list[Move]:
        """The cutover's changes still in place (of `name` only, when given)."""
        ...


def _same(a: object, b: str) -> bool:
    return str(a or "").rstrip(".").lower() == b.rstrip(".").lower()


def lowered_ttl(records: Sequence[StepRecord], name: str) -> LoweredTtl | None:
    """When lower-ttl's wait for `name` ends, from the records (None: never lowered).

    A lower-ttl step that found the TTL already low journals no `ready_at`: its
    end plus the old TTL of its undo record (a run resumed after the change
    landed), or else plus the TTL it aimed at, is the best bound the tool knows."""
    for record in reversed(records):
        if record.action != LOWER_TTL_ACTION or record.status != "done":
            continue
        if str(record.args.get("name", "")).rstrip(".").lower() != name.lower():
            continue
        lowered_to = int(record.args.get("ttl") or 0)
        evidence = record.evidence or {}
        if "ready_at" in evidence:
            return LoweredTtl(float(evidence["ready_at"]), lowered_to)
        undo = record.undo or {}
        ttl = (undo.get("old") or {}).get("ttl") or lowered_to
        return LoweredTtl(float(record.finished or record.started) + int(ttl), lowered_to)
    return None


def moves_in_place(records: Sequence[StepRecord], name: str | None = None) -> list[Move]:
    """The cutover's changes still in place, newest first: per record (name and
    type), its last finished move with an undo record, unless reverted since."""
    seen: set[tuple[str, str]] = set()
    out = []
    for record in reversed(records):
        if record.action not in MOVE_ACTIONS or not isinstance(record.undo, dict):
            continue
        key = (str(record.undo.get("name", "")).rstrip(".").lower(), str(record.undo.get("type")))
        if key in seen:
            continue
        seen.add(key)
        if record.status == "done" and (name is None or _same(key[0], name)):
            out.append(Move(record.seq, record.undo, record.evidence))
    return out
