"""The change pack's one model rendered three ways: a self-contained HTML page
(the report's stylesheet and topology picture, inline; no script, nothing
fetched), Markdown, or JSON (the model itself).

HTML is rendered with autoescape on, so every value from the pool file shows
as text; the topology SVG (report/topology.py, which escapes what it places)
is the only value marked safe.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from .. import statefiles
from ..errors import UsageError
from ..report import topology
from ..report.render import duration, md_cell, md_fence
from ..resources import resource_path

FORMATS = ("html", "md", "json")


def _env(autoescape: bool) -> jinja2.Environment:
    templates = resource_path("templates")
    env = jinja2.Environment(
        # the report's folder too: its stylesheet is shared (style.css)
        loader=jinja2.FileSystemLoader([str(templates / "changepack"), str(templates / "report")]),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(duration=duration, cell=md_cell, fence=md_fence)
    return env


def render(model: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(model, indent=2, ensure_ascii=False) + "\n"
    if fmt == "html":
        picture = Markup(topology.draw(model["pool"]))
        return _env(True).get_template("changepack.html.j2").render(c=model, topology_svg=picture)
    if fmt == "md":
        return _env(False).get_template("changepack.md.j2").render(c=model)
    raise UsageError(f"no change pack format {fmt} (formats: {', '.join(FORMATS)})")


def write(path: Path, text: str, state_dir: Path) -> None:
    """Write the change pack to `path` whole or not at all. Never into the state
    directory: a file there that ocsscale does not expect reads as a run's evidence."""
    path = Path(path)
    parent = path.parent.resolve()
    if parent == state_dir.resolve():
        raise UsageError(f"the change pack does not go in {state_dir}: give -o a path outside it")
    if not parent.is_dir():
        raise UsageError(
            f"cannot write the change pack: the directory {path.parent} does not exist"
        )
    try:
        statefiles.write_atomic(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write the change pack {path}: {exc.strerror or exc}") from None
