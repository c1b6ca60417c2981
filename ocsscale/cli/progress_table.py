"""The default output of `run` and `rollback`: a live table per phase.

Rows are what a step is for (the front end of a per-FE group, or the host of a
step run on every host), columns the playbook's steps, and a cell its step's
mark, or for checks that report findings (the probes), a mark per port: `11✓,
5069 i` counts the ports that passed and names the rest. When the phase ends
the table gives way to a few lines; what each port said is in the journal, in
`ocsscale report`, and under `-v` (progress.RunProgress, today's detail).

A failure is printed in full as soon as it is known, above the table, and a
phase that fails leaves the table as it stood (where it failed, FE by client).
Without a terminal (CI, a pipe, a file) nothing is redrawn: the same lines are
printed (failures at once, each phase's summary), none per step or per port.

Events come one at a time from the runner's worker threads while Rich's own
thread redraws the table (progress_views): the state is changed, and copied
for a draw, under a lock that is held for nothing else, so the two never wait
on each other.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from ..runner.events import Event
from .progress import RunProgress, phase_title, propagating_line, waiting_line
from .progress_state import (
    DONE,
    FAILED,
    MARK_STYLE,
    RUNNING,
    SKIPPED,
    PhaseState,
    RevertState,
    StepState,
)
from .progress_views import LiveReverts, LiveTable, styled, table_of

#: without a terminal, a countdown line at most this often (seconds left)
_WAIT_EVERY = 60


class TableProgress(RunProgress):
    """The compact output (see the module docstring); `run -v` uses RunProgress."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.interactive = console.is_interactive
        self.phase: PhaseState | None = None
        self.reverts: RevertState | None = None
        self.live: Live | None = None
        self.paused = False
        self.state_lock = threading.Lock()  # held only to change or copy the state
        self._waits: dict[str, float] = {}
        self._shown: dict[str, tuple[str, ...]] = {}

    def view(self) -> Any:
        """What the live area shows now (also without a terminal, for tests)."""
        return LiveTable(self) if self.phase is not None else LiveReverts(self)

    # -- the live area ---------------------------------------------------------
    def _print(self, renderable: Any) -> None:
        self.console.print(renderable)  # above the live table while it runs

    def _show(self) -> None:
        if not self.interactive or self.paused or self.live is not None:
            return
        if self.phase is None and self.reverts is None:
            return
        # stdout and stderr (a library's warning) are printed above the table by
        # Live itself: written past it, they would leave stale lines behind
        self.live = Live(self.view(), console=self.console, transient=True, refresh_per_second=4)
        self.live.start()

    def _stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.refresh()

    def pause(self) -> None:
        with self._lock:
            self.paused = True
            self._stop()

    def resume(self) -> None:
        with self._lock:
            self.paused = False
            self._show()

    def close(self) -> None:
        with self._lock:
            self._stop()
            if self.reverts is not None:
                self._revert_summary()
                self.reverts = None

    def __call__(self, event: Event) -> None:
        with self._lock:
            super().__call__(event)
            self._refresh()

    # -- phases ----------------------------------------------------------------
    def _on_phase_start(self, e: Event) -> None:
        self._stop()
        self.console.print(phase_title(e))
        with self.state_lock:
            self.phase = PhaseState(str(e.phase), str(e.data["title"]), int(e.data["steps"]))
        self._show()

    def _on_cleanup_start(self, e: Event) -> None:
        with self.state_lock:
            if self.phase is not None:
                self.phase.cleanup = True

    def _end_phase(self) -> PhaseState | None:
        self._stop()
        with self.state_lock:
            phase, self.phase = self.phase, None
        return phase

    def _summary(self, phase: PhaseState, head: Text | None) -> None:
        if head is not None:
            self.console.print(head.append(f": {phase.headline()}", style="dim"))
        for cleanup in (False, True):
            columns = phase.column_summary(cleanup)
            if not columns:
                continue
            line = Text("    ").append("cleanup: " if cleanup else "", style="italic")
            for n, column in enumerate(columns):
                if n:
                    line.append(" · ", style="dim")
                styled(column, line)
            self.console.print(line)
        shown, more = phase.notes_shown()
        for note in shown:
            line = Text(f"    {note.mark} ", style=MARK_STYLE[note.mark])
            line.append(f"{note.check}: ", style="bold")
            line.append(note.message)
            if note.steps > 1:
                line.append(f"  ({note.steps} steps)", style="dim")
            self.console.print(line)
        if more:
            self.console.print(
                Text(f"    ... and {more} more notes: `ocsscale report`, or run with -v", "dim")
            )

    def _on_phase_done(self, e: Event) -> None:
        phase = self._end_phase()
        head = Text(f"  {e.phase} done", style="green")
        if phase is None:
            self.console.print(head)
        else:
            self._summary(phase, head)

    def _on_phase_failed(self, e: Event) -> None:
        phase = self._end_phase()
        if phase is not None:
            # where it failed, front end by client: the table as it stood
            rows, columns, cells = phase.layout(cleanup=False)
            if rows:
                self.console.print(table_of(rows, columns, cells, height=self.console.height))
            self._summary(phase, None)
        error = e.data["error"]
        what = error if error.startswith("interrupted") else f"failed: {error}"
        self.console.print(Text(f"  {e.phase} {what}", style="bold red"))

    # -- steps -----------------------------------------------------------------
    def _step(self, e: Event, state: str | None = None, **values: Any) -> StepState | None:
        with self.state_lock:
            if self.phase is None:
                return None
            step = self.phase.step(e.step, e.ref)
            if state is not None:
                step.state = state
            if state != RUNNING:
                self.phase.waiting.pop(step.id, None)  # its countdown is over
            for key, value in values.items():
                setattr(step, key, value)
            return step

    def _on_step_start(self, e: Event) -> None:
        self._step(e, RUNNING, summary=str(e.data.get("summary", "")))

    def _on_step_skipped(self, e: Event) -> None:
        # already done when a run resumes: counted in the phase's summary
        if self._step(e, SKIPPED) is None:
            self._print(Text(f"  = {e.step}: {e.data['reason']}", style="dim"))

    def _on_step_done(self, e: Event) -> None:
        changes = e.data.get("changes") or []
        if not e.data["changed"]:
            outcome = "nothing to do"
        elif all(c.get("kind") == "check" for c in changes):
            outcome = "checked"
        else:
            outcome = "changed"
        step = self._step(e, DONE, outcome=outcome)
        if step is None:
            super()._on_step_done(e)
            return
        for check, message in step.failed_findings():
            self._failure(f"{e.step}: {check}", message)

    def _on_step_failed(self, e: Event) -> None:
        step = self._step(e, FAILED, error=str(e.data["error"]))
        self._failure(str(e.step), str(e.data["error"]))
        for check, message in step.failed_findings() if step is not None else []:
            self._failure(f"  {check}", message)

    def _failure(self, what: str, why: str) -> None:
        line = Text("  ✗ ", style="bold red")
        line.append(f"{what}: {why}")
        self._print(line)

    def _on_findings(self, e: Event) -> None:
        findings = list(e.data.get("findings", []))
        with self.state_lock:
            phase = self.phase
            if phase is not None:
                phase.add_findings(e.step, findings, e.ref)
        if phase is None:
            super()._on_findings(e)
        elif len(findings) == 1 and findings[0].get("ok") and not findings[0].get("info"):
            # a step's one result (a sign-off, the watch window): its own line
            super()._on_findings(e)

    def _on_waiting(self, e: Event) -> None:
        left = float(e.data["left"])
        what = waiting_line(e)
        with self.state_lock:
            if self.phase is not None:
                self.phase.waiting[str(e.step)] = what
        if self.interactive and self.phase is not None:
            return
        last = self._waits.get(str(e.step))
        if last is None or last - left >= _WAIT_EVERY:
            self._waits[str(e.step)] = left
            self._print(Text(f"    {what}", style="yellow"))

    def _on_propagating(self, e: Event) -> None:
        """The live line of a DNS change on its way (progress.propagating_line):
        in the live area on a terminal, else printed when its servers change."""
        what = propagating_line(e)
        with self.state_lock:
            if self.phase is not None:
                self.phase.waiting[str(e.step)] = what
        if self.interactive and self.phase is not None:
            return
        key = f"propagating:{e.step}"
        waiting_on = tuple(str(w) for w in e.data.get("waiting_on", []))
        if self._shown.get(key) != waiting_on:
            self._shown[key] = waiting_on
            self._print(Text(f"    {what}", style="yellow"))

    # -- rollback --------------------------------------------------------------
    def _revert(self, e: Event, state: str) -> None:
        with self.state_lock:
            if self.reverts is None:
                self.reverts = RevertState()
            self.reverts.mark(e.phase, e.step, state)
        self._show()

    def _on_revert_start(self, e: Event) -> None:
        self._revert(e, RUNNING)

    def _on_revert_done(self, e: Event) -> None:
        self._revert(e, DONE)

    def _on_revert_skipped(self, e: Event) -> None:
        self._revert(e, SKIPPED)  # why: in rollback's list before it began, or -v

    def _on_revert_failed(self, e: Event) -> None:
        self._revert(e, FAILED)
        self._failure(str(e.step), str(e.data["error"]))

    def _revert_summary(self) -> None:
        reverts = self.reverts
        if reverts is None:
            return
        for phase in reverts.phases:
            self.console.print(styled(reverts.pieces(phase), Text(f"  ↶ {phase}: ")))


def progress_for(console: Console, *, verbose: bool) -> RunProgress:
    """The live table, or with -v today's line per step and per port."""
    return RunProgress(console) if verbose else TableProgress(console)
