"""The operator of `run` and `rollback`: questions asked at this terminal while
the progress display is paused, and posted for `ocsscale answer` at the same
time (runner/asking.py); the first answer wins.

Without a terminal and without `--answer-timeout` the run gets the core's
NoOperator, which refuses a step that needs a person instead of hanging. With
`--answer-timeout SECONDS` a question waits that long for `ocsscale answer`.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from ..operator import NoOperator, Operator
from ..runner.asking import ChannelOperator
from .progress import RunProgress

#: a typed line longer than this is cut (nobody types that much; bounded memory)
MAX_LINE = 4096


class TerminalOperator:
    """The run's terminal as a `Desk` (runner/asking.py): standard input read
    line by line with select(), so that the answer file is watched meanwhile."""

    def __init__(self, console: Console, progress: RunProgress, fd: int | None = None) -> None:
        self.console = console
        self.progress = progress
        self.fd = sys.stdin.fileno() if fd is None else fd
        self._buffer = b""

    def tell(self, title: str, lines: Sequence[str], data: dict[str, Any] | None = None) -> None:
        # `data` is for machines (`ocsscale answer --json`): a person reads the lines
        self.progress.pause()
        body = Text("\n".join(f"{n:>3}. {line}" for n, line in enumerate(lines, 1)))
        self.console.print(Panel(body, title=Text(title, style="bold"), expand=False))
        self.progress.resume()

    def open(self) -> None:
        self.progress.pause()

    def close(self) -> None:
        self.progress.resume()

    def prompt(self, text: str) -> None:
        self.console.file.write(text)
        self.console.file.flush()

    def say(self, text: str) -> None:
        self.console.print(Text(text))

    def read_line(self, timeout: float) -> str | None:
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
            if not ready:
                return None
            chunk = os.read(self.fd, 1024)
            if not chunk:
                if self._buffer:
                    break  # a last line without its line break
                raise EOFError
            self._buffer = (self._buffer + chunk)[-MAX_LINE:]
            timeout = 0.0  # the rest of a line comes at once, or on a later call
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", errors="replace").rstrip("\r")


def operator_for(
    console: Console,
    progress: RunProgress,
    state_dir: Path,
    answer_timeout: float | None = None,
    name: str | None = None,
) -> Operator:
    """`name`: `--operator NAME`, who answers at this terminal (None: the OS user)."""
    if sys.stdin.isatty():
        return ChannelOperator(
            state_dir, TerminalOperator(console, progress), timeout=answer_timeout, name=name
        )
    if answer_timeout is not None:
        return ChannelOperator(state_dir, None, timeout=answer_timeout, name=name)
    return NoOperator(
        "this step waits for an operator's answer and standard input is not a terminal: "
        "run it from a terminal, or pass --answer-timeout SECONDS and answer with "
        "`ocsscale answer` (--yes does not answer for a person)"
    )
