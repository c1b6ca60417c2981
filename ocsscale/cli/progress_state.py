"""What the compact run output keeps of the runner's events: per phase, every
step's state and the marks of its findings, arranged in rows and columns for
the live table, and the few lines that sum a phase up when it ends.

Plain Python, no Rich: progress_table draws it. Steps of one phase may be in
flight at once (the runner runs a group's steps in parallel), so nothing here
assumes a step ends before the next one starts: every event names its step,
and the step's place (column, row, item) is read from the structure the plan
gave it (plan/stepref.py), never decoded from its id.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..plan.stepref import StepRef
from .progress import finding_mark

RUNNING, DONE, FAILED, SKIPPED = "…", "✓", "✗", "="
#: the order marks are counted in, and their styles
MARK_STYLE = {
    DONE: "green",
    FAILED: "bold red",
    RUNNING: "yellow",
    SKIPPED: "dim",
    "i": "cyan",
    "?": "yellow",
}
#: notes (findings marked i or ?) shown when a phase ends; the rest are counted
NOTES_SHOWN = 6

_PORT = re.compile(r"^port (\d+)\b")


def place(step_id: str | None, ref: StepRef | None) -> tuple[str, str, str | None]:
    """(column, row, item) of a step.

    validate-fe's `probe` of `ocsfe01` by `client01` is column `probe`, row
    `ocsfe01` (the group's member), item `client01`; `restart` of `ocsfe01` is
    column `restart`, row `ocsfe01`; a step without a label is in row ''. A step
    known by its id alone (no plan made it) is a column of its own."""
    if ref is None:
        return str(step_id), "", None
    return ref.step, ref.row or "", ref.item


def check_label(check: str) -> str:
    """A finding's short name in a cell: `port 5061 (sip-tls)` is `5061`."""
    port = _PORT.match(check)
    return port.group(1) if port else check


def count_text(marks: Iterable[str]) -> list[tuple[str, str]]:
    """`3✓ 1✗` as (text, mark) pieces, in MARK_STYLE's order."""
    counted = Counter(marks)
    found = [m for m in MARK_STYLE if counted[m]]
    return [(f"{' ' if n else ''}{counted[m]}{m}", m) for n, m in enumerate(found)]


@dataclass
class StepState:
    id: str
    column: str
    row: str
    item: str | None
    cleanup: bool
    state: str = RUNNING
    #: how a finished step ended: "changed", "checked" (a read-only check) or "nothing to do"
    outcome: str = ""
    summary: str = ""
    error: str | None = None
    #: (check, mark, message) per finding, in the order the action reported them
    findings: list[tuple[str, str, str]] = field(default_factory=list)

    def marks(self) -> list[tuple[str, str]]:
        """`11✓, 5069 i, 8404 i` as (text, mark) pieces: passes counted, the rest named."""
        passed = sum(1 for _, mark, _ in self.findings if mark == DONE)
        pieces = [(f"{passed}{DONE}", DONE)] if passed else []
        for check, mark, _ in self.findings:
            if mark != DONE:
                pieces.append((f"{', ' if pieces else ''}{check_label(check)} {mark}", mark))
        return pieces

    def failed_findings(self) -> list[tuple[str, str]]:
        """(check, message) of every failed finding the step's error does not already say."""
        said = self.error or ""
        return [
            (check, message)
            for check, mark, message in self.findings
            if mark == FAILED and not (check in said and message in said)
        ]


@dataclass
class Note:
    mark: str
    check: str
    message: str  # the first one: the others differ only in host or address
    steps: int = 1


@dataclass
class PhaseState:
    id: str
    title: str
    total: int
    started: float = field(default_factory=time.monotonic)
    cleanup: bool = False
    #: `run --wait`'s countdown, by the step that waits (shown under the table)
    waiting: dict[str, str] = field(default_factory=dict)
    steps: dict[str, StepState] = field(default_factory=dict)
    notes: dict[tuple[str, str], Note] = field(default_factory=dict)

    def step(self, step_id: str | None, ref: StepRef | None = None) -> StepState:
        key = str(step_id)
        if key not in self.steps:
            column, row, item = place(step_id, ref)
            self.steps[key] = StepState(key, column, row, item, self.cleanup)
        return self.steps[key]

    def note(self, mark: str, check: str, message: str) -> None:
        known = self.notes.get((mark, check))
        if known is None:
            self.notes[(mark, check)] = Note(mark, check, message)
        else:
            known.steps += 1

    def add_findings(
        self,
        step_id: str | None,
        findings: Iterable[Mapping[str, Any]],
        ref: StepRef | None = None,
    ) -> None:
        step = self.step(step_id, ref)
        for item in findings:
            mark, _ = finding_mark(item)
            check, message = str(item.get("check", "")), str(item.get("message", ""))
            step.findings.append((check, mark, message))
            if mark in ("i", "?"):
                self.note(mark, check, message)

    # -- the live table ------------------------------------------------------
    def layout(
        self, cleanup: bool
    ) -> tuple[list[str], list[str], dict[tuple[str, str], list[StepState]]]:
        """Rows and columns in the order they first appeared, and the steps of each
        cell, of the phase's steps or (once it runs, the live table shows them) its
        cleanup's."""
        rows: dict[str, None] = {}
        columns: dict[str, None] = {}
        cells: dict[tuple[str, str], list[StepState]] = {}
        for step in (s for s in self.steps.values() if s.cleanup == cleanup):
            rows.setdefault(step.row)
            columns.setdefault(step.column)
            cells.setdefault((step.row, step.column), []).append(step)
        return list(rows), list(columns), cells

    def counts(self) -> Counter[str]:
        return Counter(s.state for s in self.steps.values())

    # -- when the phase ends -------------------------------------------------
    def column_summary(self, cleanup: bool) -> list[list[tuple[str, str]]]:
        """Per column: `probe 4✓ (ports 44✓ 8i)` as (text, mark) pieces."""
        by_column: dict[str, list[StepState]] = {}
        for step in self.steps.values():
            if step.cleanup == cleanup:
                by_column.setdefault(step.column, []).append(step)
        lines = []
        for column, steps in by_column.items():
            pieces = [(f"{column} ", "")] + count_text(s.state for s in steps)
            found = [mark for s in steps for _, mark, _ in s.findings]
            if found:
                pieces.append((" (findings ", ""))
                pieces += count_text(found)
                pieces.append((")", ""))
            lines.append(pieces)
        return lines

    def headline(self) -> str:
        """`30 steps: 18 changed, 4 checked, 8 nothing to do, 2 already done, in 14 s`."""
        steps = list(self.steps.values())
        outcomes = Counter(s.outcome for s in steps if s.state == DONE)
        parts = [
            f"{outcomes[o]} {o}" for o in ("changed", "checked", "nothing to do") if outcomes[o]
        ]
        counts = self.counts()
        for state, what in ((SKIPPED, "already done"), (FAILED, "failed"), (RUNNING, "cut short")):
            if counts[state]:
                parts.append(f"{counts[state]} {what}")
        seconds = time.monotonic() - self.started
        return f"{len(steps)} steps: {', '.join(parts) or 'none run'}, in {seconds:.0f} s"

    def notes_shown(self) -> tuple[list[Note], int]:
        notes = list(self.notes.values())
        return notes[:NOTES_SHOWN], max(0, len(notes) - NOTES_SHOWN)


@dataclass
class RevertState:
    """A rollback's reverts, by phase (several may be in flight at once)."""

    phases: dict[str, Counter[str]] = field(default_factory=dict)
    in_flight: dict[str, str] = field(default_factory=dict)  # step -> its phase

    def mark(self, phase: str | None, step: str | None, state: str) -> None:
        key = phase or "-"
        counted = self.phases.setdefault(key, Counter())
        if state == RUNNING:
            self.in_flight[str(step)] = key
        else:
            counted[state] += 1
            self.in_flight.pop(str(step), None)

    def pieces(self, phase: str) -> list[tuple[str, str]]:
        counted = self.phases[phase]
        pieces = [(f"{counted[DONE]} reverted", DONE if counted[DONE] else "")]
        if counted[SKIPPED]:
            pieces.append((f", {counted[SKIPPED]} nothing to revert", SKIPPED))
        if counted[FAILED]:
            pieces.append((f", {counted[FAILED]} failed", FAILED))
        running = sum(1 for p in self.in_flight.values() if p == phase)
        if running:
            pieces.append((f", {running} in flight", RUNNING))
        return pieces
