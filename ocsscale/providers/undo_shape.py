"""Checks of an undo record's shape, for `Action.check_undo` and the plug-ins' `check_undo`.

A rollback checks every record it will replay before the first revert, so a
record of the wrong shape (a journal edited by hand, damaged, or written by
another version) stops it before anything changed instead of halfway through.
Each check raises UndoRecordError naming the key and what it should be, never
the value found: the record is input from a file.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Collection, Mapping
from typing import Any

from ..errors import UndoRecordError

#: longest text any record's name-like field may hold (a host, a path, a service)
MAX_TEXT = 4096


def record(undo: Any) -> Mapping[str, Any]:
    if not isinstance(undo, Mapping):
        raise UndoRecordError(f"the record is {_kind(undo)}, not an object of named values")
    return undo


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", str: "text"}.get(
        type(value), "a list" if isinstance(value, list) else "an object"
    )


def _get(rec: Mapping[str, Any], key: str) -> Any:
    if key not in rec:
        raise UndoRecordError(f"'{key}' is missing")
    return rec[key]


def text(rec: Mapping[str, Any], key: str, *, optional: bool = False) -> str | None:
    """A non-empty string of printable characters (or null when `optional`)."""
    value = _get(rec, key) if not optional else rec.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise UndoRecordError(f"'{key}' is {_kind(value)}, not a non-empty text")
    if not value.isprintable():
        raise UndoRecordError(f"'{key}' holds control characters")
    return value


def same(rec: Mapping[str, Any], key: str, expected: str, what: str) -> str:
    """Text equal (case aside) to what the step's arguments say: a record whose
    revert would touch another host or name than its step did is refused."""
    value = text(rec, key)
    assert value is not None
    if value.lower() != expected.lower():
        raise UndoRecordError(f"'{key}' is not {what}")
    return value


def one_of(rec: Mapping[str, Any], key: str, choices: Collection[str]) -> str:
    value = _get(rec, key)
    if not isinstance(value, str) or value not in choices:
        raise UndoRecordError(f"'{key}' is not one of {', '.join(sorted(choices))}")
    return value


def flag(rec: Mapping[str, Any], key: str) -> bool:
    value = _get(rec, key)
    if not isinstance(value, bool):
        raise UndoRecordError(f"'{key}' is {_kind(value)}, not true/false")
    return value


def whole(rec: Mapping[str, Any], key: str, *, optional: bool = False) -> int | None:
    value = _get(rec, key) if not optional else rec.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UndoRecordError(f"'{key}' is {_kind(value)}, not a whole number")
    return value


def b64(rec: Mapping[str, Any], key: str, *, optional: bool = False) -> bytes | None:
    """Base64 text, decoded (null when `optional`)."""
    value = _get(rec, key) if not optional else rec.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise UndoRecordError(f"'{key}' is {_kind(value)}, not base64 text")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise UndoRecordError(f"'{key}' is not base64") from None


def address(rec: Mapping[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = _get(rec, key) if not optional else rec.get(key)
    if value is None and optional:
        return None
    try:
        return str(ipaddress.ip_address(value if isinstance(value, str) else ""))
    except ValueError:
        raise UndoRecordError(f"'{key}' is not an IP address") from None


def obj(rec: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _get(rec, key)
    if not isinstance(value, Mapping):
        raise UndoRecordError(f"'{key}' is {_kind(value)}, not an object of named values")
    return value


def texts(rec: Mapping[str, Any], key: str) -> list[str]:
    value = _get(rec, key)
    if not isinstance(value, list) or not all(
        isinstance(v, str) and v and len(v) <= MAX_TEXT and v.isprintable() for v in value
    ):
        raise UndoRecordError(f"'{key}' is not a list of texts")
    return value


def within(key: str, check: Any, value: Any) -> Any:
    """`check(value)` for a value nested under `key`, its complaint prefixed."""
    try:
        return check(value)
    except UndoRecordError as exc:
        raise UndoRecordError(f"in '{key}': {exc.message}") from None
