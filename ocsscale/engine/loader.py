"""Read a farm file, reporting every problem as `FILE:LINE:COL: path: rule`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from .farm import Farm


class FarmFileError(Exception):
    """A farm file that cannot be used; str() is one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _path_text(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _position(root: Any, loc: tuple[int | str, ...], at_key: bool = False) -> tuple[int, int]:
    """Deepest node on `loc` that exists in the YAML, as 1-based (line, column).

    A value's position is the most useful, except for an unknown key (`at_key`),
    where the key itself is what the user must fix."""
    node: Any = root
    line, col = (getattr(root, "lc", None) and (root.lc.line, root.lc.col)) or (0, 0)
    for i, part in enumerate(loc):
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            use_key = node[part] is None or (at_key and i == len(loc) - 1)
            pos = node.lc.key(part) if use_key else node.lc.value(part)
            line, col = pos
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line, col = node.lc.item(part)
            node = node[part]
        else:
            break
    return line + 1, col + 1


def parse_farm(text: str, source: str = "farm.yaml") -> Farm:
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise FarmFileError([f"{source}:{line}:{col}: yaml: {err.problem or err}"]) from None
    if not isinstance(data, CommentedMap):
        raise FarmFileError([f"{source}:1:1: (document): a farm file is a YAML mapping"])
    try:
        return Farm.model_validate(_plain(data))
    except ValidationError as err:
        problems: list[str] = []
        for e in err.errors():
            loc = tuple(e["loc"])
            line, col = _position(data, loc, at_key=e["type"] == "extra_forbidden")
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = "unknown key (not part of the farm file format)"
            elif e["type"] == "missing":
                msg = "required key is missing"
            problem = f"{source}:{line}:{col}: {_path_text(loc)}: {msg}"
            if problem not in problems:
                problems.append(problem)
        raise FarmFileError(problems) from None


def _plain(node: Any) -> Any:
    """ruamel's round-trip types to plain dict/list so pydantic sees ordinary data."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, int) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def load_farm(path: str | Path) -> Farm:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise FarmFileError([f"{p}: cannot read farm file: {err.strerror}"]) from None
    return parse_farm(text, source=str(p))
