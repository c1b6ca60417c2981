"""Commands built from typed parts, with quoting for sh and PowerShell in one place.

A part may be a `Secret`: the command then renders two ways, the real text
(`render`) that goes to the host and the masked text (`masked`) that is the
only form logs, evidence and error messages ever see.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..secrets import MASK, Secret

Part = str | Secret

_SH_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def sh_quote(s: str) -> str:
    if s and _SH_SAFE.fullmatch(s):  # not match+$: "$" also matches before a final newline
        return s
    return "'" + s.replace("'", "'\"'\"'") + "'"


def ps_quote(s: str) -> str:
    """A PowerShell single-quoted literal: nothing inside is expanded."""
    # PowerShell also treats typographic single quotes as quote characters.
    return "'" + re.sub(r"(['\u2018\u2019\u201a\u201b])", r"\1\1", s) + "'"


def _text(part: Part, reveal: bool) -> str:
    if isinstance(part, Secret):
        return part.reveal() if reveal else MASK
    return part


@dataclass(frozen=True)
class ShCommand:
    """An argv for a POSIX shell: each part is quoted, so no part is ever parsed."""

    argv: tuple[Part, ...]

    @classmethod
    def of(cls, *argv: Part) -> ShCommand:
        return cls(tuple(argv))

    def render(self) -> str:
        return " ".join(sh_quote(_text(p, True)) for p in self.argv)

    def masked(self) -> str:
        return " ".join(sh_quote(_text(p, False)) for p in self.argv)

    def __str__(self) -> str:
        return self.masked()


@dataclass(frozen=True)
class PsScript:
    """A PowerShell script body plus named parameters bound as quoted literals.

    The body refers to parameters as `$Name`; values are never spliced into the
    body, so a hostile value cannot change what the script does.
    """

    body: str
    params: Mapping[str, Part] = field(default_factory=dict)

    def _prelude(self, reveal: bool) -> str:
        lines = []
        for name, value in self.params.items():
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise ValueError(f"bad PowerShell parameter name {name!r}")
            lines.append(f"${name} = {ps_quote(_text(value, reveal))}")
        return "\n".join(lines)

    def render(self) -> str:
        pre = self._prelude(True)
        return f"{pre}\n{self.body}" if pre else self.body

    def masked(self) -> str:
        pre = self._prelude(False)
        return f"{pre}\n{self.body}" if pre else self.body

    def __str__(self) -> str:
        return self.masked()


def secrets_in(parts: Sequence[Part] | Mapping[str, Part]) -> list[Secret]:
    values = parts.values() if isinstance(parts, Mapping) else parts
    return [p for p in values if isinstance(p, Secret)]
