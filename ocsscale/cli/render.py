"""Expected errors rendered in one place: one clear message and an exit code."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape

from ..errors import ConfigError, OcsscaleError

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def render_error(exc: OcsscaleError) -> int:
    if isinstance(exc, ConfigError):
        for issue in exc.issues:
            err_console.print(f"[bold red]error:[/] {escape(issue.render())}", emoji=False)
        n = len(exc.issues)
        err_console.print(f"{n} problem{'s' if n != 1 else ''} found; nothing was contacted.")
    else:
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", emoji=False)
    if exc.hint:
        err_console.print(f"hint: {escape(exc.hint)}", emoji=False)
    sys.stderr.flush()
    return exc.exit_code


def handle_errors(func):  # noqa: ANN001, ANN201 - a decorator for Typer commands
    """Render expected errors as one message + exit code, also under CliRunner."""
    import functools

    import typer

    @functools.wraps(func)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        try:
            return func(*args, **kwargs)
        except OcsscaleError as exc:
            raise typer.Exit(render_error(exc)) from None

    return wrapper
