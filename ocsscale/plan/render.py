"""Jinja2 over the pool file, for playbook steps.

Templates run in a sandbox with StrictUndefined: a playbook that names a key
the pool file does not have is an error, never an empty string. A string that
is exactly one `{{ expression }}` keeps the expression's type (a list stays a
list, a port stays an int); any other string renders to text. The sandbox is
bounded (sandbox.py): what a template builds, how long it loops, what it renders.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError

from ..sandbox import MAX_TEXT, BoundedEnvironment, TemplateBound

_WHOLE_EXPRESSION = re.compile(r"^\{\{(?P<expr>(?:(?!\}\}).)*)\}\}$", re.DOTALL)
#: what a template may raise: each is the playbook's error (exit 2), never a crash.
#: ArithmeticError: 1/0, a float overflow; RecursionError: a deeply nested expression
_FAILURES = (
    TemplateError,
    TypeError,
    ValueError,
    AttributeError,
    LookupError,
    ArithmeticError,
    RecursionError,
    MemoryError,
)
_SHOWN = 80  # characters of a template, or of an error's text, that a message quotes


class RenderError(Exception):
    """A template did not render; the plan builder adds where it is."""


def short_text(text: str) -> str:
    """`text` on one line, cut to what a message may quote."""
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _failed(source: str, exc: BaseException) -> RenderError:
    # an error's text may quote a value the template built (int() of a long
    # string): only a bound's own message is shown whole, and it quotes none
    reason = str(exc) if isinstance(exc, TemplateBound) else short_text(str(exc))
    return RenderError(f"`{short_text(source)}`: {reason}")


class Renderer:
    def __init__(self, variables: Mapping[str, Any]) -> None:
        self._env = BoundedEnvironment(
            undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False
        )
        self._variables = dict(variables)

    @property
    def exhausted(self) -> bool:
        """The plan's template budget is spent (sandbox.BUDGET)."""
        return self._env.exhausted

    def with_vars(self, extra: Mapping[str, Any]) -> Renderer:
        child = Renderer.__new__(Renderer)
        child._env = self._env
        child._variables = {**self._variables, **extra}
        return child

    def expression(self, source: str) -> Any:
        """Evaluate a bare Jinja2 expression (no braces), e.g. `front_ends`."""
        try:
            value = self._env.cached_expression(source)(**self._variables)
            return _concrete(value)
        except _FAILURES as exc:
            raise _failed(source, exc) from None

    def text(self, source: str) -> str:
        try:
            parts: list[str] = []
            size = 0
            # streamed, so a loop that writes without end stops at the limit
            for part in self._env.cached_template(source).generate(**self._variables):
                size += len(part)
                if size > MAX_TEXT:
                    raise TemplateBound(f"it renders to more than {MAX_TEXT} characters")
                parts.append(part)
            return "".join(parts)
        except _FAILURES as exc:
            raise _failed(source, exc) from None

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
