"""YAML loading that remembers where every node was written.

Pydantic sees plain dicts and lists; the positions are kept on the side, keyed
by the node's path (a tuple of keys and list indexes), so any error found
later, by pydantic or by a rule, can name file:line:col.

The one implementation for every YAML input: the pool file and profiles
(config/), playbooks (plan/) and the engine's farm file. It depends on
nothing of ocsscale but errors.py and yamlguard.py (which reads the file and
parses it within limits), so the stand-alone engine may use it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .errors import ConfigIssue
from .yamlguard import load_root, read_text_file

PathKey = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line and column


def format_path(path: Sequence[str | int]) -> str:
    """`("front_ends", 1, "address")` -> `front_ends[1].address`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class YamlDocument:
    """A parsed YAML file: plain Python data plus the position of every node."""

    file: str
    data: Any
    values: dict[PathKey, Position] = field(default_factory=dict)
    keys: dict[PathKey, Position] = field(default_factory=dict)

    def position(self, path: Sequence[str | int]) -> Position:
        """Where the value at `path` starts; for a missing node, where its
        nearest existing parent starts (so 'missing key' points somewhere useful)."""
        p = tuple(path)
        while p:
            if p in self.values:
                return self.values[p]
            if p in self.keys:
                return self.keys[p]
            p = p[:-1]
        return self.values.get((), (1, 1))

    def key_position(self, path: Sequence[str | int]) -> Position:
        """Where the key of the mapping entry at `path` is written (for unknown keys)."""
        p = tuple(path)
        return self.keys.get(p) or self.position(p)

    def issue(
        self, path: Sequence[str | int], rule: str, message: str, *, at_key: bool = False
    ) -> ConfigIssue:
        line, col = self.key_position(path) if at_key else self.position(path)
        return ConfigIssue(self.file, line, col, format_path(path), rule, message)


def load_yaml(path: Path, *, label: str | None = None) -> YamlDocument:
    """Parse the regular file at `path` within yamlguard's limits; any problem
    becomes a ConfigError with its position."""
    file = label or str(path)
    return parse_yaml(read_text_file(path, file), file)


def parse_yaml(text: str, file: str) -> YamlDocument:
    root = load_root(text, file)
    doc = YamlDocument(file=file, data=None)
    doc.values[()] = (1, 1)
    doc.data = _plain(root, (), doc)
    return doc


#: An error's (rule, message) in the caller's words, given the error and its document path.
DescribeError = Callable[[ErrorDetails, PathKey], tuple[str, str]]


def validation_issues(
    error: ValidationError, doc: YamlDocument, describe: DescribeError
) -> list[ConfigIssue]:
    """Pydantic's errors as ConfigIssues at their YAML position: an unknown key
    at the key, anything else at its value. Inputs are left out of the errors:
    a value may be a secret written where it does not belong."""
    issues = []
    for err in error.errors(include_input=False, include_url=False):
        path = document_path(doc.data, tuple(err["loc"]))
        rule, message = describe(err, path)
        issues.append(doc.issue(path, rule, message, at_key=err["type"] == "extra_forbidden"))
    return issues


def document_path(data: Any, loc: tuple[str | int, ...]) -> PathKey:
    """A pydantic location as a path in `data`: the location is almost that path,
    except that a discriminated union adds its tag (`transport.winrm.port`) and a
    function validator its name; such parts are dropped by walking the real data."""
    path: list[str | int] = []
    current = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if _has(current, part):
            path.append(part)
            current = current[part]
        elif last and isinstance(part, str) and not part.startswith("function-"):
            path.append(part)  # a missing key: name it, its parent gives the position
        # else: a union tag or validator name that is not in the document
    return tuple(path)


def _has(container: Any, part: str | int) -> bool:
    if isinstance(container, dict):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)


def _plain(node: Any, path: PathKey, doc: YamlDocument) -> Any:
    """Convert ruamel's round-trip nodes to plain types, recording positions."""
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for key in node:
            child = (*path, key if isinstance(key, str | int) else str(key))
            try:
                kl, kc = node.lc.key(key)
                doc.keys[child] = (kl + 1, kc + 1)
                # ruamel places an empty value (`key:`) at the next token, often
                # the next line: the key is where the user must look
                vl, vc = node.lc.value(key) if node[key] is not None else (kl, kc)
                doc.values[child] = (vl + 1, vc + 1)
            except (KeyError, TypeError, AttributeError):  # merged keys (<<) carry none
                pass
            out[key] = _plain(node[key], child, doc)
        return out
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for i, item in enumerate(node):
            try:
                il, ic = node.lc.item(i)
                doc.values[(*path, i)] = (il + 1, ic + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            items.append(_plain(item, (*path, i), doc))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, _dt.date | _dt.datetime):
        return node.isoformat()
    # tagged scalars and other exotic nodes: pydantic reports them as wrong types
    return str(getattr(node, "value", node))
