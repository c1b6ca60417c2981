"""Credentials by reference, and a value type that never prints itself.

The pool file only ever holds references (an environment variable or a file
path). `Secret` keeps the resolved value out of repr/str/format, so logs, the
journal, reports and exception texts can only ever see the masked form.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

from .errors import SecretError
from .files import Unreadable, read_regular

MASK = "********"
MAX_SECRET_FILE_BYTES = 64 * 1024  # a password or a TSIG key, not a file to stream


class Secret:
    __slots__ = ("_value", "_source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self._source = source  # e.g. "env:OCS_ADMIN_PASSWORD": safe to show

    def reveal(self) -> str:
        """The clear value: pass it straight to the library that needs it."""
        return self._value

    @property
    def source(self) -> str:
        return self._source

    def __repr__(self) -> str:
        return f"Secret({self._source})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._source)

    def __reduce__(self):  # never pickled or copied into state files
        raise TypeError("a Secret cannot be serialised")


# The environment variables credentials are read from, gathered as pool files are
# loaded and references resolved: every command the tool starts runs without them
# (a link command, a local service command has no business with a WinRM password).
_CREDENTIAL_VARIABLES: set[str] = set()
_VARIABLES_LOCK = threading.Lock()  # steps run side by side


def note_credential_variables(names: Iterable[str]) -> None:
    """Record `names` as variables that hold credentials (see child_environment)."""
    with _VARIABLES_LOCK:
        _CREDENTIAL_VARIABLES.update(names)


def child_environment() -> dict[str, str]:
    """The environment for a command the tool starts: its own, without the
    variables any credential of a loaded pool file (or the journal) refers to."""
    with _VARIABLES_LOCK:
        hidden = set(_CREDENTIAL_VARIABLES)
    return {k: v for k, v in os.environ.items() if k not in hidden}


def resolve_env(name: str) -> Secret:
    note_credential_variables([name])
    value = os.environ.get(name)
    if value is None:
        raise SecretError(f"environment variable {name} is not set (a credential refers to it)")
    return Secret(value, f"env:{name}")


def resolve_file(path: str, *, base: Path | None = None) -> Secret:
    p = Path(os.path.expanduser(path))
    if not p.is_absolute() and base is not None:
        p = base / p
    try:
        value = read_regular(p, MAX_SECRET_FILE_BYTES).decode("utf-8").rstrip("\r\n")
    except Unreadable as exc:
        raise SecretError(f"secret file {p}: {exc.message}") from None
    except UnicodeDecodeError:  # its message would quote a byte of the secret
        raise SecretError(f"secret file {p}: not UTF-8 text") from None
    return Secret(value, f"file:{p}")


def mask_in(text: str, secrets: list[Secret]) -> str:
    """Replace every occurrence of a secret's value in text (for captured output)."""
    for s in secrets:
        v = s.reveal()
        if v:
            text = text.replace(v, MASK)
    return text
