"""Options given before the command (`ocsscale -c FILE plan`), shared by every command."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import typer

DEFAULT_POOL = "pool.yaml"


@dataclass
class AppState:
    config: Path


def app_state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if isinstance(root.obj, AppState):
        return root.obj
    return AppState(config=Path(os.environ.get("OCSSCALE_POOL", DEFAULT_POOL)))
