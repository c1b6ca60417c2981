"""Pool-file variants for the rule tests: the shipped example with a few lines changed.

Line numbers are looked up in the text itself, so each test asserts the exact
position of the value at fault without hard-coding the example's layout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsscale.config import LoadedPool, load_pool
from ocsscale.errors import ConfigError, ConfigIssue

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
ONE_ARMED = (EXAMPLES / "one-armed.yaml").read_text(encoding="utf-8")
TWO_ARMED = (EXAMPLES / "two-armed-routed.yaml").read_text(encoding="utf-8")


def variant(base: str, *edits: tuple[str, str]) -> str:
    """`base` with each (old, new) replaced; each `old` must occur exactly once."""
    text = base
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text


def line_of(text: str, fragment: str, occurrence: int = 1) -> int:
    """1-based line of the `occurrence`-th line containing `fragment`."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if fragment in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{fragment!r} not in text")


def write(tmp_path: Path, text: str, name: str = "pool.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str) -> LoadedPool:
    return load_pool(write(tmp_path, text))


def issues_of(tmp_path: Path, text: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text)
    return caught.value.issues


def only_issue(tmp_path: Path, text: str, rule: str) -> ConfigIssue:
    """The single issue with `rule`; fails listing everything found otherwise."""
    issues = issues_of(tmp_path, text)
    matching = [i for i in issues if i.rule == rule]
    assert len(matching) == 1, "\n".join(i.render() for i in issues)
    return matching[0]
