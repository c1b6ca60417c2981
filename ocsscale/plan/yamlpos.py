"""Where a node sits in a YAML file, so playbook errors name file:line:col."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from ..errors import ConfigError, ConfigIssue


def load_yaml_with_positions(path: Path) -> Any:
    """The document as ruamel round-trip nodes (dict/list subclasses that keep
    their line and column); a YAML syntax error becomes a ConfigError."""
    yaml = YAML(typ="rt")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue(str(path), 0, 0, "", "file.read", f"cannot read: {exc.strerror}")]
        ) from None
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 0
        col = mark.column + 1 if mark else 0
        problem = exc.problem or "invalid YAML"
        raise ConfigError([ConfigIssue(str(path), line, col, "", "yaml.syntax", problem)]) from None


def position(doc: Any, loc: Sequence[str | int]) -> tuple[int, int]:
    """1-based (line, column) of the deepest node of `loc` that exists in `doc`."""
    line, col = 0, 0
    node = doc
    for key in loc:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(node, dict) and key in node:
                if lc is not None:
                    line, col = lc.key(key)
                    line, col = line + 1, col + 1
                node = node[key]
            elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
                if lc is not None:
                    line, col = lc.item(key)
                    line, col = line + 1, col + 1
                node = node[key]
            else:
                # pydantic adds union tags to the location; they are not in the file
                continue
        except (KeyError, TypeError, IndexError):
            break
    return line, col


def dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for key in loc:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += ("." if out else "") + key
    return out
