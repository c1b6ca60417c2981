"""The pool file option, shared by every command: given before the command
(`ocsscale -c FILE plan`) or after it (`ocsscale plan -c FILE`)."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer

DEFAULT_POOL = "pool.yaml"
CONFIG_HELP = "The pool file (topology, profile, credentials by reference)."


@dataclass
class AppState:
    config: Path


def app_state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if isinstance(root.obj, AppState):
        return root.obj
    return AppState(config=Path(os.environ.get("OCSSCALE_POOL", DEFAULT_POOL)))


def _config_after(ctx: typer.Context, value: Path | None) -> Path | None:
    # The root's callback has run by now (click invokes it before it parses the
    # command's own options), so the file given after the command wins.
    if value is not None:
        root = ctx.find_root()
        if isinstance(root.obj, AppState):
            root.obj.config = value
        else:
            root.obj = AppState(config=value)
    return value


def accepts_config(func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` as a command that also takes -c/--config after its name.

    The option is added to the signature Typer reads, and dropped before `func`
    is called: commands keep reading the file from `app_state(ctx)`.
    """
    signature = inspect.signature(func, eval_str=True)
    option = inspect.Parameter(
        "config_after",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(
            None,
            "-c",
            "--config",
            help=f"{CONFIG_HELP} Same as -c before the command; given here, it wins.",
            callback=_config_after,
        ),
        annotation=Optional[Path],  # noqa: UP045 - a runtime object for Typer, not a hint
    )

    @functools.wraps(func)
    def wrapper(*args: Any, config_after: Path | None = None, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), option]
    )
    wrapper.__annotations__ = {**func.__annotations__, "config_after": Optional[Path]}  # noqa: UP045
    return wrapper
