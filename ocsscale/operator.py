"""The person at the console, as the core sees them.

Some steps need a human: the manual load-balancer driver prints settings to
enter on an appliance and waits until they are in; a manual DNS change waits
for the operator; validate-fe holds while people test at the workstations.
Actions ask through `Context.operator`; the CLI supplies a terminal operator,
and everything else (tests, unattended runs) gets `NoOperator`, which refuses
with a clear message instead of waiting for an answer that will never come.

Nothing an operator types is trusted as proof: actions verify from outside
after every "done".

A run's questions can also be answered from another terminal (`ocsscale
answer`): runner/asking.py's ChannelOperator posts each one to the state dir
and takes the first answer, from its own terminal or from the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from .errors import UsageError


class OperatorUnavailable(UsageError):
    """A step needs a person and there is none (no terminal, --yes with no one to ask)."""


class NoAnswer(OperatorUnavailable):
    """Nobody answered within `--answer-timeout` (nobody to ask, in effect)."""


class Pending(Protocol):
    """A question asked without waiting (Operator.ask_nowait)."""

    def poll(self) -> str | None:
        """The answer once given (one of the choices), else None."""

    def cancel(self) -> None:
        """Withdraw the question (it may have been answered meanwhile: ignored)."""


class NeverAnswered:
    """The Pending of nobody: it never answers."""

    def poll(self) -> str | None:
        return None

    def cancel(self) -> None:
        return None


class Operator(Protocol):
    def tell(self, title: str, lines: Sequence[str], data: dict[str, Any] | None = None) -> None:
        """Show a checklist or instructions (nothing is asked). `data`: the same
        checklist as JSON, for a machine (the lab's operator, `answer --json`)."""

    def ask(self, question: str, choices: Sequence[str], default: str | None = None) -> str:
        """One of `choices`, as the operator answered. Raises OperatorUnavailable
        when there is no one to ask; Declined when the operator gives up."""

    def text(self, question: str, default: str = "") -> str:
        """A free-text answer (a name, a note). Same errors as `ask`."""

    def ask_nowait(self, question: str, choices: Sequence[str]) -> Pending:
        """Ask without waiting: the step goes on and polls for the answer."""


class NoOperator:
    """There is nobody to ask: every question is refused with `why`."""

    def __init__(
        self,
        why: str = "this step waits for an operator and no terminal is attached; "
        "run it from a terminal",
    ) -> None:
        self.why = why
        self.told: list[tuple[str, list[str]]] = []
        #: each tell's `data`, in the order of `told`
        self.told_data: list[dict[str, Any] | None] = []

    def tell(self, title: str, lines: Sequence[str], data: dict[str, Any] | None = None) -> None:
        self.told.append((title, list(lines)))
        self.told_data.append(None if data is None else dict(data))

    def ask(self, question: str, choices: Sequence[str], default: str | None = None) -> str:
        raise OperatorUnavailable(self.why)

    def text(self, question: str, default: str = "") -> str:
        raise OperatorUnavailable(self.why)

    def ask_nowait(self, question: str, choices: Sequence[str]) -> Pending:
        return NeverAnswered()
