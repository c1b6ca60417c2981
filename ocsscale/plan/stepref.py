"""Where a step stands in the plan: its phase, its playbook step, and the
labels a `foreach` gave it (a row: the group's item, or the step's own when it
has no group; an item: the step's own within a group's row).

The planner makes these; the runner's events carry them to the CLI, which lays
steps out in rows and columns from the fields. The journal keys steps by the
string `id` derived here (`validate-fe/probe[ocsfe01@client01]`), as it always
has; `parse` reads such a string back, for entries that only have the string.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepRef:
    phase: str
    step: str  # the playbook step's id
    row: str | None = None
    item: str | None = None  # only within a row

    def __post_init__(self) -> None:
        if self.item is not None and self.row is None:
            raise ValueError("a step's item needs a row")

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(x for x in (self.row, self.item) if x is not None)

    @property
    def id(self) -> str:
        """The journal's key for the step: stable across runs."""
        labels = self.labels
        base = f"{self.phase}/{self.step}" if self.phase else self.step
        return base + (f"[{'@'.join(labels)}]" if labels else "")

    def __str__(self) -> str:
        return self.id

    @classmethod
    def parse(cls, step_id: str) -> StepRef:
        """The ref an `id` was made from. A row label holding `@` reads back as
        a row and an item (the id is the same string either way); a string the
        planner did not make is one step of no phase."""
        phase, slash, rest = step_id.partition("/")
        if not slash or not phase or "[" in phase:
            return cls("", step_id)
        step, bracket, label = rest.partition("[")
        if not bracket:
            return cls(phase, step)
        if not label.endswith("]") or not step:
            return cls("", step_id)
        row, at, item = label[:-1].partition("@")
        return cls(phase, step, row, item if at else None)
