"""Typed action arguments: each action declares its playbook arguments as a model.

The plan builds every action once (plan/build.py), so a wrong argument is refused
there and the error names the playbook's file and line. The shared field types
(a host name, a TCP port, seconds, an address, a DNS name, a TTL) live here, and
so does the one way a validation failure becomes a message: the argument and
what it must be, never the value (a playbook is a file like any other).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from ..errors import UsageError


def _text(value: Any) -> Any:
    # a template that rendered nothing gives None or "None": both mean "not given"
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    return value


def plain_address(value: str) -> str:
    """An address without its network prefix (the VIP is written 198.18.0.40/24)."""
    return value.split("/", 1)[0].strip()


def _address(value: Any) -> Any:
    value = _text(value)
    return plain_address(value) if isinstance(value, str) else value


def _number(value: Any) -> Any:
    # `true` is no port, TTL or number of seconds (pydantic would take it as 1)
    if isinstance(value, bool):
        raise ValueError("a truth value")
    return value


_NAME = r"^[A-Za-z0-9_.-]+$"
_TEMPLATE = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"

#: a host of the pool file (or "admin"), as the playbook names it
HostName = Annotated[
    str,
    BeforeValidator(_text),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=253, pattern=_NAME),
    Field(description="a host name of the pool file"),
]
#: a DNS name (the pool FQDN, a legacy name, the SIP domain)
DnsName = Annotated[
    str,
    BeforeValidator(_text),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=253, pattern=_NAME),
    Field(description="a DNS name"),
]
#: an IPv4/IPv6 address; a network prefix (the VIP's /24) is dropped
Address = Annotated[
    str,
    BeforeValidator(_address),
    StringConstraints(min_length=1, max_length=64, pattern=r"^[0-9A-Fa-f:.]+$"),
    Field(description="an IP address"),
]
Port = Annotated[
    int, BeforeValidator(_number), Field(ge=1, le=65535, description="a TCP port (1-65535)")
]
Seconds = Annotated[
    float, BeforeValidator(_number), Field(gt=0, le=86400, description="seconds (more than 0)")
]
Ttl = Annotated[
    int, BeforeValidator(_number), Field(ge=0, le=2147483647, description="a TTL in seconds")
]
#: a wait counted in whole seconds, 0 allowed (a watch window, a settle deadline)
WholeSeconds = Annotated[
    int,
    BeforeValidator(_number),
    Field(ge=0, le=86400, description="a whole number of seconds (0-86400)"),
]
#: a file on a host (a hosts file elsewhere than the OS's default)
FilePath = Annotated[
    str,
    BeforeValidator(_text),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=1024),
    Field(description="a file path"),
]
#: a template shipped with the tool (a checklist), by its name: no path
TemplateName = Annotated[
    str,
    BeforeValidator(_text),
    StringConstraints(strip_whitespace=True, max_length=100, pattern=_TEMPLATE),
    Field(description="the name of a template (letters, digits, - and _)"),
]
#: free text of bounded length (a checklist's name, a mode)
Text = Annotated[
    str,
    BeforeValidator(_text),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    Field(description="a non-empty string"),
]


class ActionArgs(BaseModel):
    """Base of every action's arguments: unknown arguments are refused (a typo in a
    playbook is found when the plan is built, not ignored), values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


A = TypeVar("A", bound=ActionArgs)


def parse_args(model: type[A], given: Mapping[str, Any], action: str) -> A:
    """`given` (the rendered playbook arguments) as `model`, or a UsageError that
    names the action, the argument and what it must be."""
    try:
        return model.model_validate(dict(given))
    except ValidationError as exc:
        raise UsageError(_message(model, exc, action, given)) from None


def _message(
    model: type[ActionArgs], exc: ValidationError, action: str, given: Mapping[str, Any]
) -> str:
    problems: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        key = str(error["loc"][0]) if error["loc"] else "?"
        kind = error["type"]
        if kind == "extra_forbidden":
            known = ", ".join(sorted(_aliases(model))) or "none"
            problems.append(f"{action}: '{key}' is not one of its arguments ({known})")
            continue
        if kind == "missing" or _text(given.get(key)) is None:
            problems.append(f"{action}: argument '{key}' is required")
            continue
        what = _description(model, key)
        problems.append(f"{action}: argument '{key}' must be {what}")
    return "; ".join(dict.fromkeys(problems))


def _aliases(model: type[ActionArgs]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _description(model: type[ActionArgs], key: str) -> str:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            if field.description:
                return field.description
            # an optional field (`Seconds | None`) keeps its type's metadata in the union
            members = [m for m in get_args(field.annotation) if get_origin(m) is Annotated]
            metadata = [*field.metadata, *(x for m in members for x in m.__metadata__)]
            for meta in metadata:
                described = getattr(meta, "description", None)
                if described:
                    return str(described)
            break
    return "of the right type"
