"""The report model rendered: one self-contained HTML page (inline CSS and SVG,
no script, nothing fetched), Markdown (tables, no pictures), or JSON (the
model itself); and written atomically.

HTML is rendered with Jinja2's autoescape on: evidence, errors and names come
from the journal and are untrusted, so each one shows as text. The SVGs are
drawn by svg.py, which escapes every text it places, and are the only values
marked safe.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from .. import statefiles
from ..errors import UsageError
from ..resources import resource_path
from . import charts, topology

FORMATS = ("html", "md", "json")


def _templates() -> Path:
    return resource_path("templates") / "report"


def duration(seconds: Any) -> str:
    if seconds is None:
        return "-"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    minutes, s = divmod(round(s), 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def record(rec: Any) -> str:
    """A DNS record set as one line: values (TTL n s)."""
    if not rec:
        return "-"
    values = ", ".join(rec.get("values") or []) or "no record"
    ttl = rec.get("ttl")
    return values if ttl is None else f"{values} (TTL {ttl} s)"


def status_class(status: Any) -> str:
    text = str(status or "")
    if text in ("done", "reverted"):
        return "ok"
    if text in ("failed", "interrupted"):
        return "bad"
    if text.startswith("skipped") or text == "not started":
        return "muted"
    return "warn"  # running, applying, pending, reverting


def md_cell(value: Any) -> str:
    """A Markdown table cell: one line, pipes escaped, HTML shown as text."""
    if value is None or value == "":
        return "-"
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|")


def md_fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _env(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_templates())),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        duration=duration, record=record, status_class=status_class, cell=md_cell, fence=md_fence
    )
    return env


def _pictures(model: dict[str, Any]) -> dict[str, Any]:
    pool = model["pool"]
    return {
        "topology_svg": Markup(topology.draw(pool)) if pool else None,
        "distribution_svgs": [Markup(charts.distribution(d)) for d in model["distribution"]],
        "timeline_svg": (lambda s: Markup(s) if s else None)(charts.timeline(model["load"])),
    }


def _steps_by_phase(model: dict[str, Any]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for step in model["steps"]:
        if not groups or groups[-1]["phase"] != step["phase"]:
            groups.append({"phase": step["phase"], "steps": []})
        groups[-1]["steps"].append(step)
    return groups


def render(model: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(model, indent=2, ensure_ascii=False) + "\n"
    if fmt == "html":
        template = _env(True).get_template("report.html.j2")
        return template.render(r=model, groups=_steps_by_phase(model), **_pictures(model))
    if fmt == "md":
        template = _env(False).get_template("report.md.j2")
        return template.render(r=model, groups=_steps_by_phase(model))
    raise UsageError(f"no report format {fmt} (formats: {', '.join(FORMATS)})")


def write_atomic(path: Path, text: str, *, private: bool = False) -> None:
    """Write `text` to `path` whole or not at all (statefiles.write_atomic).
    private: in the state directory, 0600 in a 0700 directory like the journal."""
    path = Path(path)
    if not private and not path.parent.is_dir():
        raise UsageError(f"cannot write the report: the directory {path.parent} does not exist")
    try:
        if private:
            statefiles.write_private(path, text)
        else:
            statefiles.write_atomic(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write the report {path}: {exc.strerror or exc}") from None
