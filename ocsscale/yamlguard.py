"""Reading YAML that someone else may have written: limits, and errors in our words.

A pool file, profile, playbook or farm file is read by a tool that an operator
runs with credentials at hand, so a hostile or broken file must end in a clear
refusal (exit 2, file:line:col, a rule id) within a second, never a hang, a
traceback or a value echoed back. What could otherwise go wrong, and the
guard for each:

- a FIFO, a directory or a device (/dev/zero) given as the file: only regular
  files are read, opened without blocking and checked with fstat (files.py);
- a huge file: at most MAX_BYTES are read (the pure-Python parser reads about
  a megabyte a second, and a pool file is a few kilobytes);
- bytes that are not text: a NUL or undecodable byte is named by line and column;
- an alias bomb ("billion laughs"): aliases and the size of the data once every
  alias is expanded are counted while parsing, before anything is built;
- deep nesting: a depth limit, checked before the recursive composer gets there;
- a flood of keys: a key-count limit.

The limits are counted on the parser's events as the composer pulls them, so a
file that breaks one stops being read there. Every message is ours, built from
the position: ruamel's texts quote the file (a duplicated key's value, say,
which may be a password), so none is passed on. yamlpos.py turns the tree
into plain data with positions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    MappingStartEvent,
    ScalarEvent,
)
from ruamel.yaml.parser import RoundTripParser
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scanner import RoundTripScanner

from .errors import ConfigError, ConfigIssue
from .files import Unreadable, read_regular

MAX_BYTES = 256 * 1024  # the shipped pool files, profiles and playbooks are under 10 KiB
MAX_DEPTH = 32  # nested mappings and lists; a pool file uses 5
MAX_KEYS = 2_000  # mapping entries in the whole file; a pool file has about 80
MAX_ALIASES = 100  # `*name` references
MAX_NODES = 5_000  # keys, values, items with aliases expanded; a shipped playbook has 545
MAX_DIGITS = 100  # a run of digits: Python refuses to read integers past 4,300
_LONG_NUMBER = re.compile(rf"\d{{{MAX_DIGITS + 1},}}")


def read_text_file(path: Path, file: str) -> str:
    """The UTF-8 text of the regular file at `path`, or a ConfigError that says why not."""
    try:
        data = read_regular(path, MAX_BYTES)
    except Unreadable as exc:
        raise ConfigError([ConfigIssue(file, 0, 0, "", exc.rule, exc.message)]) from None
    nul = data.find(b"\0")
    if nul >= 0:
        line, col = _byte_position(data, nul)
        raise ConfigError(
            [ConfigIssue(file, line, col, "", "file.nul-byte", "a NUL byte: not a text file")]
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _byte_position(data, exc.start)
        raise ConfigError(
            [ConfigIssue(file, line, col, "", "file.not-utf8", "a byte that is not UTF-8 text")]
        ) from None
    long = _LONG_NUMBER.search(text)
    if long is not None:
        line, col = _text_position(text, long.start())
        raise ConfigError(
            [
                ConfigIssue(
                    file, line, col, "", "yaml.number-too-long",
                    f"a run of more than {MAX_DIGITS} digits: no setting takes a number that long",
                )
            ]
        )  # fmt: skip
    return text


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte `offset`."""
    before = data[:offset].decode("utf-8", errors="replace")
    return _text_position(before, len(before))


def load_root(text: str, file: str) -> Any:
    """ruamel's round-trip tree of `text`, read within the limits; any problem is
    a ConfigError at its position, in our words."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.Scanner = LimitedScanner
    yaml.Parser = LimitedParser
    try:
        return yaml.load(text)
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


def _issue_at(file: str, mark: Any, rule: str, message: str) -> ConfigIssue:
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    return ConfigIssue(file, line, col, "", rule, message)


def _text_position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character `index`."""
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
        "a character that cannot start a YAML token here (indent with spaces, not "
        "tabs; quote a value that starts with @ or `)",
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
    ("expected '<document start>'", "more after the end of the document (a stray bracket?)"),
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


class LimitExceeded(Exception):
    """Raised inside the parser; parse_yaml turns it into a ConfigIssue."""

    def __init__(self, rule: str, message: str, mark: Any) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.mark = mark


class _Frame:
    __slots__ = ("is_mapping", "items", "anchor", "start")

    def __init__(self, is_mapping: bool, anchor: str | None, start: int) -> None:
        self.is_mapping = is_mapping
        self.items = 0  # direct children so far: in a mapping, even ones are keys
        self.anchor = anchor
        self.start = start  # the expanded node count when this collection began


class LimitedScanner(RoundTripScanner):
    """ruamel's round-trip scanner with the depth limit on [ and {: the scanner
    looks up to 1,024 characters ahead for a key, at a cost that grows with the
    square of the brackets it passes, so `[[[[...` must stop here, not later."""

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:  # noqa: N803
        if self.flow_level >= MAX_DEPTH:
            raise LimitExceeded(
                "yaml.too-deep", f"nested deeper than {MAX_DEPTH} levels", self.reader.get_mark()
            )
        super().fetch_flow_collection_start(TokenClass, to_push)


class LimitedParser(RoundTripParser):
    """ruamel's round-trip parser, counting every event the composer takes."""

    def __init__(self, loader: Any) -> None:
        super().__init__(loader)
        self._stack: list[_Frame] = []
        self._sizes: dict[str, int] = {}  # anchor -> expanded node count of its node
        self._nodes = 0
        self._keys = 0
        self._aliases = 0

    def get_event(self) -> Any:
        event = super().get_event()
        if isinstance(event, ScalarEvent | AliasEvent | CollectionStartEvent):
            self._child(event)
        if isinstance(event, ScalarEvent):
            self._grow(1, event)
            if event.anchor is not None:
                self._sizes[event.anchor] = 1
        elif isinstance(event, AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise LimitExceeded(
                    "yaml.too-many-aliases",
                    f"more than {MAX_ALIASES} aliases (*name)",
                    event.start_mark,
                )
            self._grow(self._sizes.get(event.anchor, 1), event)
        elif isinstance(event, CollectionStartEvent):
            self._grow(1, event)
            self._stack.append(
                _Frame(isinstance(event, MappingStartEvent), event.anchor, self._nodes - 1)
            )
            if len(self._stack) > MAX_DEPTH:
                raise LimitExceeded(
                    "yaml.too-deep", f"nested deeper than {MAX_DEPTH} levels", event.start_mark
                )
        elif isinstance(event, CollectionEndEvent) and self._stack:
            frame = self._stack.pop()
            if frame.anchor is not None:
                self._sizes[frame.anchor] = self._nodes - frame.start
        return event

    def _child(self, event: Any) -> None:
        if not self._stack:
            return
        frame = self._stack[-1]
        if frame.is_mapping and frame.items % 2 == 0:
            self._keys += 1
            if self._keys > MAX_KEYS:
                raise LimitExceeded(
                    "yaml.too-many-keys", f"more than {MAX_KEYS} keys", event.start_mark
                )
        frame.items += 1

    def _grow(self, count: int, event: Any) -> None:
        self._nodes += count
        if self._nodes > MAX_NODES:
            raise LimitExceeded(
                "yaml.too-large",
                f"more than {MAX_NODES} keys, values and items once aliases are expanded",
                event.start_mark,
            )
