"""YAML loading that remembers where every node was written.

Pydantic sees plain dicts and lists; the positions are kept on the side, keyed
by the node's path (a tuple of keys and list indexes), so any error found
later, by pydantic or by a rule, can name file:line:col.

The one implementation for every YAML input: the pool file and profiles
(config/), playbooks (plan/) and the engine's farm file. It depends on
nothing of ocsscale but errors.py and yamlguard.py (the limits for hostile
input), so the stand-alone engine may use it.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from .errors import ConfigError, ConfigIssue
from .yamlguard import LimitedParser, LimitedScanner, LimitExceeded, read_text_file

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
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.Scanner = LimitedScanner
    yaml.Parser = LimitedParser
    try:
        root = yaml.load(text)
    except LimitExceeded as exc:
        raise ConfigError([_issue_at(file, exc.mark, exc.rule, exc.message)]) from None
    except DuplicateKeyError as exc:
        raise ConfigError([_duplicate_key_issue(file, exc, text)]) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError([_issue_at(file, mark, "yaml.syntax", _syntax_message(exc))]) from None
    except ReaderError as exc:
        line, col = _text_position(text, exc.position)
        raise ConfigError(
            [ConfigIssue(file, line, col, "", "yaml.control-character", _control_message(exc))]
        ) from None
    except YAMLError:  # unmarked: rare, but still not a traceback
        raise ConfigError([ConfigIssue(file, 0, 0, "", "yaml.syntax", "invalid YAML")]) from None
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


def _issue_at(file: str, mark: Any, rule: str, message: str) -> ConfigIssue:
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    return ConfigIssue(file, line, col, "", rule, message)


def _text_position(text: str, index: int) -> Position:
    start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - start + 1


_KEY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}(?=\s*:)")


def _duplicate_key_issue(file: str, exc: DuplicateKeyError, text: str) -> ConfigIssue:
    """Named by the key as written, if it is a plain name: ruamel's own message
    also quotes both values, and one of them may be a password."""
    mark = exc.problem_mark
    name = None
    if mark is not None:
        lines = text.splitlines()
        if 0 <= mark.line < len(lines):
            found = _KEY_NAME.match(lines[mark.line], mark.column)
            name = found.group(0) if found else None
    what = f"key {name!r}" if name else "this key"
    return _issue_at(
        file,
        mark,
        "yaml.duplicate-key",
        f"{what} appears twice in one mapping; each key may appear once",
    )


#: ruamel's problem texts, by a fragment that has no input in it, in our words.
#: Its texts quote the input (a character, an alias name, a value), so none is shown as is.
_SYNTAX = (
    (
        "cannot start any token",
        "a character that cannot start a YAML token here (a tab? quote the value)",
    ),
    ("could not find expected ':'", "a key without ':' after it"),
    (
        "mapping values are not allowed",
        "a ':' where no key can start (quote a value that holds ': ')",
    ),
    ("undefined alias", "an alias (*name) with no anchor (&name) before it"),
    ("expected ',' or ']'", "a [list] not closed with ']' (or a missing ',')"),
    ("expected ',' or '}'", "a {mapping} not closed with '}' (or a missing ',')"),
    ("end of stream", "the file ends inside a quoted value or a bracket"),
    ("unknown escape", "an unknown escape (backslash) in a double-quoted value"),
    ("expected <block end>", "indentation does not line up with the lines above"),
    ("did not find expected key", "indentation does not line up with the lines above"),
    ("did not find expected '-'", "a list item's '-' does not line up with the items above"),
    ("expected a single document", "more than one YAML document (---): give one"),
    ("expected the node content", "a value is missing here"),
    ("unhashable", "a list or mapping used as a key"),
    ("while scanning an alias", "an alias (*name) without a name"),
    ("while scanning an anchor", "an anchor (&name) without a name"),
    ("while scanning a quoted", "a quoted value that is not closed"),
    ("while scanning a simple key", "a key without ':' after it"),
    ("while scanning a directive", "an invalid % directive"),
    ("while scanning a block scalar", "an invalid block scalar (| or >) header"),
    ("while scanning a tag", "an invalid tag (!name)"),
)


def _syntax_message(exc: MarkedYAMLError) -> str:
    said = f"{exc.problem or ''} {exc.context or ''}"
    for fragment, ours in _SYNTAX:
        if fragment in said:
            return ours
    return "invalid YAML here"


def _control_message(exc: ReaderError) -> str:
    if isinstance(exc.character, int):
        return f"a control character (U+{exc.character:04X}) that YAML does not allow"
    return "a character that YAML does not allow"


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
