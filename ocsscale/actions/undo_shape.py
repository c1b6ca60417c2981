"""The undo-record shape checks (providers/undo_shape.py, where plug-ins check
the records they make), under the name the actions import them by."""

from ..providers.undo_shape import (
    MAX_TEXT,
    address,
    b64,
    flag,
    obj,
    one_of,
    record,
    same,
    text,
    texts,
    whole,
    within,
)

__all__ = [
    "MAX_TEXT",
    "address",
    "b64",
    "flag",
    "obj",
    "one_of",
    "record",
    "same",
    "text",
    "texts",
    "whole",
    "within",
]
