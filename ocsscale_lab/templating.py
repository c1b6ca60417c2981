"""The lab's configuration templates (templates/lab/*.j2), rendered with Jinja2."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jinja2

from ocsscale.resources import resource_path


def template_dir() -> Path:
    return resource_path("templates") / "lab"


def render(name: str, **values: Any) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    return env.get_template(name).render(**values)


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)
