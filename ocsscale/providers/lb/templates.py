"""The texts drivers write on an LB host (farm files, configs, units), from templates/."""

from __future__ import annotations

from typing import Any

import jinja2

from ...resources import resource_path


def render(name: str, **values: Any) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(resource_path("templates")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template(name).render(**values)
