"""What the live area of `run` and `rollback` draws (progress_table keeps it
live): the phase's table, rows x columns with a mark per step or per port, and
a rollback's counts. Each draw works on a copy of the state taken under the
owner's state lock, which is held for nothing else: Rich's refresh thread and
the runner's worker threads never wait on each other."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from .progress_state import DONE, FAILED, MARK_STYLE, RUNNING, SKIPPED, StepState, count_text


def styled(pieces: Iterable[tuple[str, str]], text: Text | None = None) -> Text:
    """(text, mark) pieces appended to `text`, each in its mark's style."""
    text = text if text is not None else Text()
    for chunk, mark in pieces:
        text.append(chunk, style=MARK_STYLE.get(mark, ""))
    return text


def _cell(steps: list[StepState], findings: bool) -> Text:
    """One cell: a mark per step, or (a column with findings) a line per item."""
    if not findings:
        if len(steps) == 1:
            return Text(steps[0].state, style=MARK_STYLE[steps[0].state])
        return styled(count_text(s.state for s in steps))
    lines = Text()
    for n, step in enumerate(steps):
        if n:
            lines.append("\n")
        if step.item:
            lines.append(f"{step.item} ", style="bold")
        if step.state != DONE or not step.findings:
            lines.append(f"{step.state} ", style=MARK_STYLE[step.state])
        styled(step.marks(), lines)
    return lines


class LiveTable:
    """What Live redraws: the phase's table, built from a copy of its state."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        with self.owner.state_lock:
            phase = self.owner.phase
            if phase is None:
                return
            rows, columns, cells = phase.layout(phase.cleanup)
            cells = {k: [_copy(s) for s in v] for k, v in cells.items()}
            counts = phase.counts()
            waiting, cleanup = list(phase.waiting.values())[-1:], phase.cleanup
            title, started, total = phase.id, phase.started, phase.total
        if rows:
            yield table_of(rows, columns, cells, height=options.height or console.height)
        done = counts[DONE] + counts[FAILED] + counts[SKIPPED]
        line = Text(f"  {title}{' cleanup' if cleanup else ''}: ", style="bold blue")
        line.append(f"{done}/{total} steps, {counts[RUNNING]} running, ")
        line.append(f"{time.monotonic() - started:.0f} s", style="dim")
        for what in waiting:
            line.append(f"  {what}", style="yellow")
        yield line


def _copy(step: StepState) -> StepState:
    return dataclasses.replace(step, findings=list(step.findings))


def table_of(
    rows: list[str],
    columns: list[str],
    cells: dict[tuple[str, str], list[StepState]],
    height: int = 50,
) -> Table:
    """The table: rows x columns; rows whose steps all passed make room for the
    others when the table would not fit the terminal."""
    with_findings = {c for (_, c), steps in cells.items() if any(s.findings for s in steps)}

    def finished(row: str) -> bool:
        return all(s.state in (DONE, SKIPPED) for c in columns for s in cells.get((row, c), []))

    def lines(row: str) -> int:
        return max(len(cells.get((row, c), [])) if c in with_findings else 1 for c in columns)

    room = max(3, height - 6)
    hidden = 0
    shown = list(rows)
    while sum(lines(r) for r in shown) > room and any(finished(r) for r in shown):
        shown.remove(next(r for r in shown if finished(r)))
        hidden += 1
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("", style="bold", no_wrap=True)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in shown:
        table.add_row(
            Text(row or "·"),
            *(_cell(cells.get((row, c), []), c in with_findings) for c in columns),
        )
    if hidden:
        table.caption = f"{hidden} finished row(s) not shown"
    return table


class LiveReverts:
    """What Live redraws during a rollback: per phase, what is reverted and in flight."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        with self.owner.state_lock:
            reverts = self.owner.reverts
            if reverts is None:
                return
            lines = [(phase, reverts.pieces(phase)) for phase in reverts.phases]
            flying = list(reverts.in_flight)
        for phase, pieces in lines:
            yield styled(pieces, Text(f"  ↶ {phase}: "))
        for step in flying[:5]:
            yield Text(f"    {RUNNING} {step}", style="yellow")
