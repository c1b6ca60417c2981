"""The operator at a terminal: questions asked while the progress display is paused.

Used only when standard input is a terminal; otherwise the run gets the core's
NoOperator, which refuses a step that needs a person instead of hanging.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from ..errors import Declined
from ..operator import NoOperator, Operator
from .progress import RunProgress


class TerminalOperator:
    def __init__(self, console: Console, progress: RunProgress) -> None:
        self.console = console
        self.progress = progress

    def tell(self, title: str, lines: Sequence[str], data: Mapping[str, Any] | None = None) -> None:
        self.progress.pause()
        body = Text("\n".join(f"{n:>3}. {line}" for n, line in enumerate(lines, 1)))
        self.console.print(Panel(body, title=Text(title, style="bold"), expand=False))
        self.progress.resume()

    def _prompt(self, question: str, **kwargs: object) -> str:
        self.progress.pause()
        try:
            return str(typer.prompt(question, **kwargs))  # type: ignore[arg-type]
        except (typer.Abort, EOFError, KeyboardInterrupt):
            raise Declined("the operator gave no answer: nothing more was changed") from None
        finally:
            self.progress.resume()

    def ask(self, question: str, choices: Sequence[str], default: str | None = None) -> str:
        # typer vendors its own click: no click.Choice, but a Literal is checked
        # against its values and shown as "(a, b)", asking again on anything else
        one_of = Literal[tuple(choices)]  # type: ignore[valid-type]
        return self._prompt(question, type=one_of, default=default)

    def text(self, question: str, default: str = "") -> str:
        return self._prompt(question, default=default, show_default=bool(default))


def operator_for(console: Console, progress: RunProgress) -> Operator:
    if sys.stdin.isatty():
        return TerminalOperator(console, progress)
    return NoOperator(
        "this step waits for an operator's answer and standard input is not a terminal: "
        "run it from a terminal (--yes does not answer for a person)"
    )
