"""What the runner reports while it works. The core emits these; only the CLI
turns them into Rich output (the runner never imports Rich or Typer)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..plan.stepref import StepRef

# run
RUN_START = "run_start"  # data: phases (ids), run_id, dry_run
RUN_DONE = "run_done"  # data: run_id, status
# phases
PHASE_SKIPPED = "phase_skipped"  # data: reason
PHASE_ALREADY_DONE = "phase_already_done"
PHASE_START = "phase_start"  # data: title, section, steps (count), resumed (bool)
CLEANUP_START = "cleanup_start"  # data: steps (count)
PHASE_DONE = "phase_done"
PHASE_FAILED = "phase_failed"  # data: error
# steps
STEP_START = "step_start"  # data: action, summary
STEP_SKIPPED = "step_skipped"  # data: reason (already done in this cycle)
STEP_RESUMED = "step_resumed"  # data: found (a crash mid-apply was found)
STEP_DONE = "step_done"  # data: changed (bool), changes, seconds
STEP_FAILED = "step_failed"  # data: error, seconds
STEP_DIFF = "step_diff"  # dry run: data: changes, built
# rollback
REVERT_START = "revert_start"  # data: seq, action, summary
REVERT_DONE = "revert_done"  # data: seq, seconds, already_restored (by the fault repair)
REVERT_FAILED = "revert_failed"  # data: seq, error
REVERT_SKIPPED = "revert_skipped"  # data: seq, reason (nothing to do for this change)
# faults the tool put in place on purpose and an interruption left (runner/faults.py)
FAULT_FOUND = "fault_found"  # data: kind, target, summary, placed
FAULT_RESTORED = "fault_restored"  # data: kind, target, summary, evidence, seconds
# anything an action reports through Context.emit keeps the action's own kind


@dataclass(frozen=True)
class Event:
    kind: str
    phase: str | None = None
    step: str | None = None  # the step's id (the journal's key), to show or key on
    data: Mapping[str, Any] = field(default_factory=dict)
    #: the step as the plan made it (phase, step, row, item), on the events of a
    #: step the runner walks; a revert or a fault read back from the journal has
    #: only the id
    ref: StepRef | None = None

    @classmethod
    def of(cls, kind: str, ref: StepRef, data: Mapping[str, Any] | None = None) -> Event:
        """An event of the step `ref`, its phase and id taken from it."""
        return cls(kind, ref.phase, ref.id, dict(data or {}), ref)


EventSink = Callable[[Event], None]


def discard(event: Event) -> None:
    return None
