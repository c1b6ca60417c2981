"""Jinja2 over the pool file, for playbook steps.

Templates run in a sandbox with StrictUndefined: a playbook that names a key
the pool file does not have is an error, never an empty string. A string that
is exactly one `{{ expression }}` keeps the expression's type (a list stays a
list, a port stays an int); any other string renders to text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_WHOLE_EXPRESSION = re.compile(r"^\{\{(?P<expr>(?:(?!\}\}).)*)\}\}$", re.DOTALL)


class RenderError(Exception):
    """A template did not render; the plan builder adds where it is."""


class Renderer:
    def __init__(self, variables: Mapping[str, Any]) -> None:
        self._env = ImmutableSandboxedEnvironment(
            undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False
        )
        self._variables = dict(variables)

    def with_vars(self, extra: Mapping[str, Any]) -> Renderer:
        child = Renderer.__new__(Renderer)
        child._env = self._env
        child._variables = {**self._variables, **extra}
        return child

    def expression(self, source: str) -> Any:
        """Evaluate a bare Jinja2 expression (no braces), e.g. `front_ends`."""
        try:
            compiled = self._env.compile_expression(source, undefined_to_none=False)
            value = compiled(**self._variables)
            return _concrete(value)
        except (TemplateError, TypeError, ValueError, AttributeError) as exc:
            raise RenderError(f"`{source}`: {exc}") from None

    def text(self, source: str) -> str:
        try:
            return self._env.from_string(source).render(**self._variables)
        except (TemplateError, TypeError, ValueError, AttributeError) as exc:
            raise RenderError(f"`{source}`: {exc}") from None

    def value(self, value: Any) -> Any:
        """Render every string inside a JSON-like value."""
        if isinstance(value, str):
            whole = _WHOLE_EXPRESSION.match(value.strip())
            if whole:
                return self.expression(whole.group("expr").strip())
            if "{{" in value or "{%" in value:
                return self.text(value)
            return value
        if isinstance(value, Mapping):
            return {str(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def condition(self, source: str) -> bool:
        return bool(self.expression(source))


def _concrete(value: Any) -> Any:
    # StrictUndefined raises on use, but a bare undefined result must raise too.
    if isinstance(value, StrictUndefined):
        str(value)
    if isinstance(value, tuple):
        return list(value)
    return value
