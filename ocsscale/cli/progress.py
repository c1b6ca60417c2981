"""Rich rendering of the runner's events and of plans (the core emits plain
events; only this module knows about Rich)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..plan.build import Plan, PlanPhase, PlanStep
from ..runner import events as ev
from ..runner.events import Event

CHANGE_MARK = {"add": "+", "change": "~", "remove": "-", "check": "?", "none": "="}
CHANGE_STYLE = {"add": "green", "change": "yellow", "remove": "red", "check": "cyan", "none": "dim"}


def step_line(step_id: str, change: str, target: str, summary: str, built: bool = True) -> Text:
    # Text objects, never markup strings: step ids contain [brackets]
    line = Text()
    line.append(f"{CHANGE_MARK.get(change, '~')} ", style=CHANGE_STYLE.get(change, ""))
    line.append(step_id, style="bold")
    line.append(f"  {target}: ", style="dim")
    line.append(summary)
    if not built:
        line.append("  [not built yet]", style="bold magenta")
    return line


def plan_tree(plan: Plan, phases: Sequence[PlanPhase]) -> Tree:
    tree = Tree(Text(f"plan for {plan.pool}  ({plan.playbook})", style="bold"))
    for phase in phases:
        head = Text()
        head.append(phase.id, style="bold blue")
        head.append(f"  {phase.title}")
        head.append(f"  ({phase.section})", style="dim")
        if phase.skipped:
            head.append(f"  skipped: {phase.skipped}", style="dim italic")
            tree.add(head)
            continue
        node = tree.add(head)
        for step in phase.steps:
            node.add(_step(step))
        if phase.cleanup:
            cleanup = node.add(Text("cleanup (always, when the phase ends)", style="italic"))
            for step in phase.cleanup:
                cleanup.add(_step(step))
    return tree


def _step(step: PlanStep) -> Text:
    summary = "; ".join(c.summary for c in step.changes)
    return step_line(step.id, step.change, step.target, summary, step.built)


def _numbered(items: Sequence[str]) -> Table:
    """A numbered list whose long lines wrap under their own text, not the number."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=5, justify="right")
    grid.add_column(overflow="fold")
    for number, item in enumerate(items, 1):
        grid.add_row(f"{number}.", Text(str(item)))
    return grid


def finding_mark(item: Any) -> tuple[str, str]:
    """The mark of one finding and its style: ✗ failed, i information (e.g. an
    optional port that does not listen), ✓ proven, ? not proven."""
    if not item.get("ok"):
        return "✗", "red"
    if item.get("info"):
        return "i", "cyan"
    if item.get("proven", True):
        return "✓", "green"
    return "?", "yellow"


def waiting_line(e: Event) -> str:
    """What a step is waiting for: a drain says it itself (`line`: who is still
    connected), a TTL wait is a countdown."""
    if e.data.get("line"):
        return str(e.data["line"])
    return (
        f"waiting for {e.data['what']} to run out everywhere: "
        f"{int(e.data['left']) + 1} s left (until {e.data['until']})"
    )


def phase_title(e: Event) -> Text:
    """The line a phase starts with."""
    title = Text()
    title.append(f"▶ {e.phase}", style="bold blue")
    title.append(f"  {e.data['title']}")
    if e.data.get("resumed"):
        title.append("  (resuming a run that was cut short)", style="yellow")
    return title


def propagating_line(e: Event) -> str:
    waiting_on = [str(w) for w in e.data.get("waiting_on", [])]
    shown = "; ".join(waiting_on[:4]) + (
        f"; {len(waiting_on) - 4} more" if len(waiting_on) > 4 else ""
    )
    return (
        f"waiting for the change to reach every name server: {int(e.data['left']) + 1} s left "
        f"(until {e.data['until']}): {shown}"
    )


class RunProgress:
    """Turns runner events into a progress bar per phase and a line per step:
    the detailed output of `run -v` (progress_table.TableProgress is the default).

    Events arrive one at a time but from the runner's worker threads, while the
    operator's questions pause and resume the display from another: the lock
    keeps each event's lines together and the display's state whole."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.task: Any = None
        self._lock = threading.RLock()

    def _print(self, renderable: Any) -> None:
        (self.progress.console if self.progress else self.console).print(renderable)

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def pause(self) -> None:
        """Stop redrawing while the operator reads or types."""
        with self._lock:
            if self.progress is not None:
                self.progress.stop()

    def resume(self) -> None:
        with self._lock:
            if self.progress is not None:
                self.progress.start()

    def __call__(self, event: Event) -> None:
        with self._lock:
            handler = getattr(self, f"_on_{event.kind}", None)
            if handler is not None:
                handler(event)
            elif event.kind not in vars(ev).values():
                # an action's own report (e.g. a checklist): show it as it came
                self._print(Text(f"    {event.step}: {event.kind} {dict(event.data)}", style="dim"))

    def _on_checklist(self, e: Event) -> None:
        """fe.checklist: the walkthrough's manual steps with this pool's values."""
        head = Text("  ☐ ", style="bold")
        head.append(str(e.data.get("title", "checklist")), style="bold")
        self._print(head)
        self._print(_numbered(e.data.get("steps", [])))
        requirements = e.data.get("requirements", [])
        if requirements:
            self._print(Text("    Ensure the following requirements are met:", style="italic"))
            self._print(_numbered(requirements))

    def _on_findings(self, e: Event) -> None:
        """Checks and probes that report one line per finding (fe.gate, probe.ports)."""
        self._print(Text(f"    {e.data.get('title', e.step)}", style="dim"))
        for item in e.data.get("findings", []):
            mark, style = finding_mark(item)
            line = Text(f"      {mark} ", style=style)
            line.append(f"{item.get('check')}: ", style="bold")
            line.append(str(item.get("message", "")))
            self._print(line)

    def _on_drill(self, e: Event) -> None:
        """lb.failover_drill: one row of the detection table."""
        d = e.data

        def secs(value: Any) -> str:
            return "unmeasured" if value is None else f"{value:.2f} s"

        line = Text(f"    {d['fe']} {d['mode']}: ", style="bold")
        line.append(
            f"out of every port after {secs(d['detect_s'])}, back after {secs(d['back_s'])}; "
            f"{d['requests']} requests, {d['failed_until_detection']} failed until detection, "
            f"{d['failed_after_detection']} after; held connections to other FEs: "
            + (", ".join(f"{k} {v} alive" for k, v in d["held_survived"].items()) or "none")
        )
        self._print(line)

    def _on_lb_drill(self, e: Event) -> None:
        """lb.pair_drill: the active LB failed, the standby took over."""
        d = e.data

        def secs(value: Any) -> str:
            return "unmeasured" if value is None else f"{value:.2f} s"

        back = secs(d.get("failback_s")) if d.get("preempt") else "none (preempt off)"
        line = Text(f"    LB {d.get('host')} {d.get('mode')}: ", style="bold")
        line.append(
            f"the VIP answered again from {d.get('standby')} after {secs(d.get('takeover_s'))}, "
            f"failback after {back}; {d.get('requests')} requests, "
            f"{d.get('failed_until_takeover')} failed until the takeover, "
            f"{d.get('failed_after_takeover')} after; held through {d.get('host')}: "
            f"{d.get('held_lost')} of {d.get('held')} lost (a full proxy)"
        )
        self._print(line)

    def _on_waiting(self, e: Event) -> None:
        """run --wait: a countdown line (or a drain's own `line`)."""
        self._print(Text(f"    {waiting_line(e)}", style="yellow"))

    def _on_propagating(self, e: Event) -> None:
        """A DNS change on its way to every name server (AD replication, a
        secondary's transfer): who still answers otherwise, and the deadline."""
        self._print(Text(f"    {propagating_line(e)}", style="yellow"))

    def _on_client_load(self, e: Event) -> None:
        """run --client-load: requests and failures per phase and source."""
        self._stop()
        sources = sorted({s for row in e.data["by_phase"].values() for s in row})
        table = Table(title=f"client load through the pool name ({e.data['rate']:g}/s per source)")
        table.add_column("phase")
        for source in sources:
            table.add_column(f"{source}: failed / requests", justify="right")
        for phase, row in e.data["by_phase"].items():
            cells = []
            for source in sources:
                tally = row.get(source)
                if tally is None:
                    cells.append(Text("-", style="dim"))
                else:
                    style = "red" if tally["failed"] else "green"
                    cells.append(Text(f"{tally['failed']} / {tally['requests']}", style=style))
            table.add_row(Text(phase), *cells)
        self.console.print(table)
        for name, why in e.data.get("not_loaded", {}).items():
            self.console.print(Text(f"  {name}: no load ({why})", style="dim"))

    def _on_phase_skipped(self, e: Event) -> None:
        self._print(Text(f"- {e.phase}: skipped ({e.data['reason']})", style="dim"))

    def _on_phase_already_done(self, e: Event) -> None:
        self._print(Text(f"= {e.phase}: already done", style="dim"))

    def _on_phase_start(self, e: Event) -> None:
        self._stop()
        self.console.print(phase_title(e))
        self.progress = Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task(e.phase or "", total=e.data["steps"])

    def _advance(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.task)

    def _on_cleanup_start(self, e: Event) -> None:
        self._print(Text("  cleanup", style="italic"))

    def _on_step_skipped(self, e: Event) -> None:
        self._print(Text(f"  = {e.step}: {e.data['reason']}", style="dim"))
        self._advance()

    def _on_step_resumed(self, e: Event) -> None:
        self._print(Text(f"  ! {e.step}: was being applied when the last run stopped; re-reading"))

    def _on_step_done(self, e: Event) -> None:
        line = Text("  ✓ ", style="green")
        line.append(str(e.step))
        changes = e.data.get("changes") or []
        what = "; ".join(c["summary"] for c in changes) if e.data["changed"] else "nothing to do"
        line.append(f"  {what}", style="" if e.data["changed"] else "dim")
        line.append(f"  ({e.data['seconds']:.1f}s)", style="dim")
        self._print(line)
        self._advance()

    def _on_step_failed(self, e: Event) -> None:
        line = Text("  ✗ ", style="bold red")
        line.append(f"{e.step}: {e.data['error']}")
        self._print(line)
        self._advance()

    def _on_step_diff(self, e: Event) -> None:
        changes = e.data["changes"]
        if not changes:
            self._print(Text(f"  = {e.step}: nothing to do", style="dim"))
        for c in changes:
            self._print(
                Text("  ").append(
                    step_line(str(e.step), c["kind"], c["target"], c["summary"], e.data["built"])
                )
            )
        self._advance()

    def _on_phase_done(self, e: Event) -> None:
        self._stop()
        self.console.print(Text(f"  {e.phase} done", style="green"))

    def _on_phase_failed(self, e: Event) -> None:
        self._stop()
        error = e.data["error"]
        what = error if error.startswith("interrupted") else f"failed: {error}"
        self.console.print(Text(f"  {e.phase} {what}", style="bold red"))

    def _on_fault_found(self, e: Event) -> None:
        """A fault the tool put in place and an interruption left: said first."""
        self._print(
            Text(
                f"! left in place when the last run stopped: {e.data['summary']} "
                f"(step {e.step}); putting it right first",
                style="bold yellow",
            )
        )

    def _on_fault_restored(self, e: Event) -> None:
        self._print(
            Text(f"  ✓ put right: {e.data['summary']} ({e.data['seconds']:.1f}s)", style="green")
        )

    def _on_revert_start(self, e: Event) -> None:
        self._print(Text(f"  ↶ {e.step}  {e.data['summary']}"))

    def _on_revert_done(self, e: Event) -> None:
        seconds = e.data["seconds"]
        if e.data.get("already_restored"):
            # the fault repair above made this revert: it was only proven now
            line = f"  ✓ {e.step}: already restored by the fault repair; verified ({seconds:.1f}s)"
        else:
            line = f"  ✓ reverted {e.step}  ({seconds:.1f}s)"
        self._print(Text(line, style="green"))

    def _on_revert_skipped(self, e: Event) -> None:
        self._print(Text(f"  · {e.step}: nothing to revert ({e.data['reason']})", style="dim"))

    def _on_revert_failed(self, e: Event) -> None:
        self._print(Text(f"  ✗ {e.step}: {e.data['error']}", style="bold red"))
