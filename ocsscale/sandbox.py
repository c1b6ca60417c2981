"""The sandbox playbook templates run in: bounded in what they build and in how long
they loop.

Jinja2's sandbox keeps a template away from Python's internals, not from asking for
a gigabyte (`{{ 'a' * 10**9 }}`) or looping for hours (nested `range`s). Here:

- every value a template builds (a list or mapping written out, the result of an
  operator, a call or a filter) is at most MAX_VALUE characters or items once
  expanded (a list holding the same list twice counts it twice), measured as it is
  built; the operations that make one large value from small ones in a single step
  (`*`, `**`, `%` and `format` widths, padding, `replace`, `join`, `translate`,
  `range`, the `batch`/`slice`/`indent`/`wordwrap`/`center` filters) are checked
  *before* they run;
- loop iterations, calls and the measuring itself draw from one budget per plan
  (BUDGET), so nested loops end;
- what a template renders is cut off past MAX_TEXT characters (renderer.py streams);
- blocks that gather output out of sight of that limit (`macro`, `call`, `filter`
  and `set` blocks, recursive loops) are refused.

What exceeds a bound raises TemplateBound, whose message never holds the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from string import Formatter
from typing import Any

from jinja2 import Environment, Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_VALUE = 100_000  # characters of a string, items of a value (expanded)
MAX_TEXT = 100_000  # characters one template renders to
MAX_INT_BITS = 4096  # an int a template computes (no port or TTL comes near)
BUDGET = 200_000  # loop iterations + calls + items measured, per plan (under 0.5 s)

# %-conversions: their flags, width and precision (a `*` takes them from the arguments)
_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


class TemplateBound(SecurityError):
    """A template asked for more than the sandbox allows (the value is not quoted)."""


def _too_large() -> TemplateBound:
    return TemplateBound(f"it would build a value of more than {MAX_VALUE} characters or items")


class _Budget:
    def __init__(self, units: int) -> None:
        self.left = units

    def charge(self, units: int = 1) -> None:
        self.left -= units
        if self.left < 0:
            raise TemplateBound(
                f"the playbook's templates loop, call or build more than {BUDGET} times"
            )


def _measure(value: Any, budget: _Budget, limit: int = MAX_VALUE) -> int:
    """Characters and items of `value`, expanded (raises past `limit`)."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        budget.charge()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += 1 + item.bit_length() // 64
        elif isinstance(item, dict):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 1
            stack.extend(item)
        else:
            total += 1
        if total > limit:
            raise _too_large()
    return total


def _check_int(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_VALUE:
        raise TemplateBound(f"{what} past {MAX_VALUE}")


def _check_percent(fmt: str, args: Any) -> None:
    """`fmt % args`: no width or precision past MAX_VALUE, written or taken from args."""
    for match in _PERCENT.finditer(fmt):
        for part in match.groups():
            if part == "*":
                values = args if isinstance(args, tuple) else (args,)
                for value in values:
                    _check_int(value, "a width or precision")
            elif part is not None:
                _check_int(int(part), "a width or precision")


def _check_format(fmt: str) -> None:
    """`fmt.format(...)`: no width past MAX_VALUE, none taken from the arguments."""
    for _, field, spec, _ in Formatter().parse(fmt):
        if field is not None and spec:
            if "{" in spec:
                raise TemplateBound("a format width taken from the arguments")
            for digits in _DIGITS.findall(spec):
                _check_int(int(digits), "a width or precision")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple | dict) else 1


def _within(size: int) -> None:
    if size > MAX_VALUE:
        raise _too_large()


def _str_method_check(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Bound str methods whose result can be far larger than the string."""
    s: str = method.__self__
    name = method.__name__
    params = [*args, *kwargs.values()]
    if name in ("center", "ljust", "rjust", "zfill"):
        for value in params:
            _check_int(value, "a width")
    elif name == "expandtabs":
        tab = params[0] if params else 8
        _within(len(s) * max(1, tab if isinstance(tab, int) else 1))
    elif name == "replace" and len(params) >= 2:
        old, new = params[0], params[1]
        if isinstance(old, str) and isinstance(new, str):
            _within(len(s) + (s.count(old) if old else len(s) + 1) * len(new))
    elif name == "join" and params:
        items = params[0]
        n = len(items) if isinstance(items, list | tuple | str | dict) else MAX_VALUE + 1
        _within(len(s) * n)
    elif name == "translate" and params:
        table = params[0]
        longest = max(map(_size, table.values()), default=1) if isinstance(table, dict) else 1
        _within(len(s) * max(1, longest))


class _Transformer(NodeTransformer):
    """Puts the checks into a template's syntax tree before it is compiled."""

    _REFUSED = {
        nodes.Macro: "macros",
        nodes.CallBlock: "call blocks",
        nodes.FilterBlock: "filter blocks",
        nodes.AssignBlock: "set blocks",
    }

    def generic_visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        for kind, what in self._REFUSED.items():
            if isinstance(node, kind):
                raise TemplateBound(f"{what} are not allowed in playbook templates")
        return super().generic_visit(node, *args, **kwargs)

    @staticmethod
    def _call(helper: str, args: list[nodes.Node], lineno: int) -> nodes.Call:
        return nodes.Call(nodes.EnvironmentAttribute(helper), args, [], None, None, lineno=lineno)

    def visit_For(self, node: nodes.For) -> nodes.For:
        if node.recursive:
            raise TemplateBound("recursive loops are not allowed in playbook templates")
        node = self.generic_visit(node)
        node.iter = self._call("ocs_iterate", [node.iter], node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Call:
        node = self.generic_visit(node)
        return self._call("ocs_concat", list(node.nodes), node.lineno)

    def _built(self, node: nodes.Expr) -> nodes.Expr:
        node = self.generic_visit(node)
        if getattr(node, "ctx", "load") != "load":
            return node  # a loop's or a set's target, not a value
        return self._call("ocs_built", [node], node.lineno)

    visit_List = visit_Tuple = visit_Dict = _built


class _CodeGenerator(CodeGenerator):
    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        _Transformer().visit(node)
        super().visit_Template(node, frame)


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """ImmutableSandboxedEnvironment with the bounds of this module."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _CodeGenerator

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=self._output, **options)
        self.budget = _Budget(BUDGET)
        self.globals["range"] = self._range
        del self.globals["lipsum"]  # paragraphs of filler text on request
        self.filters = {name: self._bounded_filter(name, f) for name, f in self.filters.items()}
        # compiled once per plan: a foreach renders the same strings for every item
        self._templates: dict[str, Template] = {}
        self._expressions: dict[str, TemplateExpression] = {}

    @property
    def exhausted(self) -> bool:
        """The plan's budget is spent: every further template would fail the same way."""
        return self.budget.left < 0

    def cached_template(self, source: str) -> Template:
        if source not in self._templates:
            self._templates[source] = self.from_string(source)
        return self._templates[source]

    def cached_expression(self, source: str) -> TemplateExpression:
        if source not in self._expressions:
            self._expressions[source] = self.compile_expression(source, undefined_to_none=False)
        return self._expressions[source]

    # -- helpers the transformed templates call -------------------------------------
    def ocs_iterate(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.budget.charge()
            yield item

    def ocs_concat(self, *parts: Any) -> str:
        texts = [str(self._built(p)) for p in parts]
        _within(sum(map(len, texts)))
        return "".join(texts)

    def ocs_built(self, value: Any) -> Any:
        return self._built(value)

    def _built(self, value: Any) -> Any:
        if isinstance(value, Iterator):  # map, select, batch...: taken, item by item
            items, total = [], 0
            for item in value:
                total += _measure(item, self.budget, MAX_VALUE - total)
                items.append(item)
            return items
        _measure(value, self.budget)
        return value

    def _output(self, value: Any) -> Any:
        return self._built(value)

    def _range(self, *args: int) -> range:
        rng = range(*args)
        if len(rng) > MAX_VALUE:
            raise TemplateBound(f"a range of more than {MAX_VALUE} items")
        return rng

    # -- the sandbox's hooks --------------------------------------------------------
    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.budget.charge()
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(n, int) and n > 0 and isinstance(seq, str | list | tuple):
                    _within(_measure(seq, self.budget) * n)
            ints = all(isinstance(x, int) for x in (left, right))
            if ints and abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
                raise TemplateBound(f"a number of more than {MAX_INT_BITS} bits")
        elif operator == "**" and all(isinstance(x, int | float) for x in (left, right)):
            if abs(left) > 1 and right > 0:
                bits = max(1, int(abs(left)).bit_length()) * right
                if bits > MAX_INT_BITS:
                    raise TemplateBound(f"a number of more than {MAX_INT_BITS} bits")
        elif operator == "%" and isinstance(left, str):
            _check_percent(left, right)
        return self._built(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        __self.budget.charge()
        if getattr(__obj, "__self__", None) is __self:  # a helper of ours: it checks itself
            return super().call(__context, __obj, *args, **kwargs)  # (a loop stays lazy)
        if isinstance(getattr(__obj, "__self__", None), str):
            _str_method_check(__obj, args, kwargs)
        return __self._built(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_format(fmt)
            return str(self._built(wrapped(*args, **kwargs)))

        return checked

    def _bounded_filter(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        check = _FILTER_CHECKS.get(name)

        def bounded(*args: Any, **kwargs: Any) -> Any:
            self.budget.charge()
            if check is not None:
                # filters that take the context or eval context get it first
                values = [a for a in args if not _is_context(a)]
                check(values, kwargs)
            return self._built(func(*args, **kwargs))

        if hasattr(func, "jinja_pass_arg"):  # pass_context and the like: Jinja reads it
            bounded.jinja_pass_arg = func.jinja_pass_arg  # type: ignore[attr-defined]
        return bounded


def _is_context(value: Any) -> bool:
    """What Jinja passes a filter before its value (pass_context and the like)."""
    return isinstance(value, Context | EvalContext | Environment)


def _arg(values: list[Any], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if name in kwargs:
        return kwargs[name]
    return values[index] if len(values) > index else default


def _check_sized_filter(index: int, name: str) -> Callable[[list[Any], dict[str, Any]], None]:
    def check(values: list[Any], kwargs: dict[str, Any]) -> None:
        _check_int(_arg(values, kwargs, index, name, 0), f"a {name}")

    return check


def _check_indent(values: list[Any], kwargs: dict[str, Any]) -> None:
    text, width = _arg(values, kwargs, 0, "s", ""), _arg(values, kwargs, 1, "width", 4)
    lines = str(text).count("\n") + 1
    _within(_size(text) + lines * (width if isinstance(width, int) else _size(width)))


def _check_wordwrap(values: list[Any], kwargs: dict[str, Any]) -> None:
    text = _arg(values, kwargs, 0, "s", "")
    wrap = _arg(values, kwargs, 3, "wrapstring", None) or "\n"
    _within(_size(text) * (1 + _size(wrap)))


def _check_replace(values: list[Any], kwargs: dict[str, Any]) -> None:
    text = str(_arg(values, kwargs, 0, "s", ""))
    old, new = _arg(values, kwargs, 1, "old", ""), _arg(values, kwargs, 2, "new", "")
    if isinstance(old, str) and isinstance(new, str):
        _within(len(text) + (text.count(old) if old else len(text) + 1) * len(new))


def _check_join(values: list[Any], kwargs: dict[str, Any]) -> None:
    items, sep = _arg(values, kwargs, 0, "value", []), _arg(values, kwargs, 1, "d", "")
    n = len(items) if isinstance(items, list | tuple | str | dict) else MAX_VALUE + 1
    _within(_size(sep) * n)


def _check_format_filter(values: list[Any], kwargs: dict[str, Any]) -> None:
    fmt = _arg(values, kwargs, 0, "value", "")
    if isinstance(fmt, str):
        _check_percent(fmt, tuple(values[1:]))


_FILTER_CHECKS: dict[str, Callable[[list[Any], dict[str, Any]], None]] = {
    "center": _check_sized_filter(1, "width"),
    "batch": _check_sized_filter(1, "linecount"),
    "slice": _check_sized_filter(1, "slices"),
    "truncate": _check_sized_filter(1, "length"),
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "replace": _check_replace,
    "join": _check_join,
    "format": _check_format_filter,
}
