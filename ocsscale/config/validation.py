"""Pydantic's errors in the pool file's words: rule ids, "did you mean", and
the validation that sets unknown keys and inline secrets aside so the rules
can still run. Where each error points in the YAML is ocsscale.yamlpos's job.
Messages never include the input value: it may be a secret written where it
does not belong.
"""

from __future__ import annotations

import copy
import difflib
import types
import typing
from typing import Any, TypeVar, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ..errors import ConfigIssue
from ..yamlpos import PathKey, YamlDocument, document_path, validation_issues

M = TypeVar("M", bound=BaseModel)

_RULE_BY_TYPE = {
    "extra_forbidden": "schema.unknown-key",
    "missing": "schema.missing-key",
    "union_tag_not_found": "schema.missing-key",
    "union_tag_invalid": "schema.not-allowed",
    "literal_error": "schema.not-allowed",
}


def issues_from_validation(
    error: ValidationError, doc: YamlDocument, model: type[BaseModel]
) -> list[ConfigIssue]:
    def describe(err: ErrorDetails, path: PathKey) -> tuple[str, str]:
        etype = err["type"]
        rule = etype if "." in etype else _RULE_BY_TYPE.get(etype, "schema.invalid")
        return rule, _message(err, tuple(err["loc"]), path, model)

    return validation_issues(error, doc, describe)


# Schema errors that do not hide what later rules need: validated again with them
# set aside, the document can still go through its rules, so a misspelt key and a
# bad topology are reported together.
_SET_ASIDE = {"extra_forbidden", "secret.inline", "secret.reference"}


def validate_document(model: type[M], doc: YamlDocument) -> tuple[M | None, list[ConfigIssue]]:
    """Validate `doc` against `model`: (instance or None, issues).

    With issues, the instance (when there is one) is the document validated
    without its unknown keys and inline secrets: good enough to run the rules on,
    never to act on.
    """
    try:
        return model.model_validate(doc.data), []
    except ValidationError as exc:
        issues = issues_from_validation(exc, doc, model)
        errors = exc.errors(include_input=False, include_url=False)
    if any(e["type"] not in _SET_ASIDE for e in errors):
        return None, issues
    data = copy.deepcopy(doc.data)
    for err in errors:
        path = document_path(doc.data, tuple(err["loc"]))
        parent: Any = data
        for part in path[:-1]:
            parent = parent[part]
        if err["type"] == "extra_forbidden":
            del parent[path[-1]]
        else:
            parent[path[-1]] = {"env": "UNSET"}  # stands in for the refused secret
    try:
        return model.model_validate(data), issues
    except ValidationError:
        return None, issues


def _message(err: Any, loc: tuple[str | int, ...], path: PathKey, model: type[BaseModel]) -> str:
    etype = err["type"]
    if etype == "extra_forbidden":
        allowed = allowed_keys(model, loc[:-1])
        key = str(path[-1]) if path else "?"
        text = f"unknown key '{key}'"
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            text += f"; did you mean '{close[0]}'?"
        elif allowed:
            text += f" (allowed here: {', '.join(allowed)})"
        return text
    if etype == "missing":
        return f"required key '{path[-1]}' is missing" if path else "required key is missing"
    if etype in ("union_tag_not_found", "union_tag_invalid"):
        return _tag_message(err, model, loc)
    msg = str(err["msg"])
    return msg[0].lower() + msg[1:] if msg else etype


def _tag_message(err: Any, model: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    """A discriminated union's tag missing or unknown (the given tag is not echoed)."""
    key = str(err.get("ctx", {}).get("discriminator", "'kind'")).strip("'")
    tags = _union_tags(_step_to(model, loc), key)
    choices = f": one of {', '.join(tags)}" if tags else ""
    if err["type"] == "union_tag_not_found":
        return f"'{key}' is missing{choices}"
    return f"'{key}' is not a known choice{choices}"


def _step_to(model: type[BaseModel], loc: tuple[str | int, ...]) -> Any:
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return None
    return current


def _union_tags(annotation: Any, key: str) -> list[str]:
    annotation = _unwrap(annotation)
    tags: list[str] = []
    for member in typing.get_args(annotation):
        field = getattr(member, "model_fields", {}).get(key)
        if field is not None:
            tags += [str(t) for t in typing.get_args(field.annotation)]
    return tags


def allowed_keys(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The keys a mapping at `loc` may hold, found by walking the model's fields."""
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [field.alias or name for name, field in current.model_fields.items()]
    return []


def _step(annotation: Any, part: str | int) -> Any:
    annotation = _unwrap(annotation)
    member = _union_member(annotation, part)
    if member is not None:
        return member  # the part was a discriminated union's tag
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = annotation.model_fields
        field = fields.get(str(part)) or next(
            (f for f in fields.values() if f.alias == part), None
        )  # a field read under another name (Profile.port_list is `ports`)
        return field.annotation if field is not None else None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional[...]."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation


def _union_member(annotation: Any, tag: str | int) -> Any:
    if typing.get_origin(annotation) not in (Union, types.UnionType):
        return None
    for member in typing.get_args(annotation):
        fields = getattr(member, "model_fields", {})
        for key in _TAG_KEYS:
            field = fields.get(key)
            if field is not None and tag in typing.get_args(field.annotation):
                return member
    return None


#: the keys that pick a member of a discriminated union in the pool file
_TAG_KEYS = ("kind", "provider", "driver")
