"""`ocsscale plan --format html|md|json`: the change pack for the approval of a
migration (what is done, where, how long, what stays manual, how it is undone),
built from the plan and the pool file alone, contacting nothing."""

from __future__ import annotations

from .model import Inputs, build
from .render import FORMATS, render, write

__all__ = ["FORMATS", "Inputs", "build", "render", "write"]
