"""Read a farm file, reporting every problem as `FILE:LINE:COL: path: message`.

The file is read and parsed by the shared reader (ocsscale.yamlpos and
yamlguard, which also read the pool file): regular files only, within its limits
on size, depth, keys and aliases, and bytes that are not text named by line and
column. `load_farm`, used
by `serve`, `check` and reload alike, then asks this machine what only it can
tell (hostcheck.py), so `check` refuses everything `serve` would refuse.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..errors import ConfigError, ConfigIssue, UsageError
from ..yamlpos import PathKey, YamlDocument, load_yaml, parse_yaml, validation_issues
from .farm import Farm


class FarmFileError(UsageError):
    """A farm file that cannot be used (exit 2); str() is one line per problem,
    `FILE:LINE:COL: path: message`, without ConfigError's rule ids."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _farm_words(err: ErrorDetails, path: PathKey) -> tuple[str, str]:
    if err["type"] == "extra_forbidden":
        message = "unknown key (not part of the farm file format)"
    elif err["type"] == "missing":
        message = "required key is missing"
    else:
        message = err["msg"].removeprefix("Value error, ")
    return f"farm.{err['type']}", message


def _problems(issues: list[ConfigIssue], *, section: str | None = None) -> list[str]:
    """One line per distinct problem; a YAML syntax problem is the `yaml` section,
    one about the file itself (no position) names only the file."""
    problems: list[str] = []
    for issue in issues:
        if not issue.line and section is not None:
            problem = f"{issue.file}: {issue.message}"
        else:
            line, col = (issue.line, issue.column) if issue.line else (1, 1)
            where = section or issue.path or "(document)"
            problem = f"{issue.file}:{line}:{col}: {where}: {issue.message}"
        if problem not in problems:
            problems.append(problem)
    return problems


def _unreadable_value(text: str, source: str) -> FarmFileError:
    """A value the YAML library itself cannot convert: a number too long for an
    int (Python refuses more than sys.get_int_max_str_digits() digits)."""
    digits = sys.get_int_max_str_digits()
    found = re.search(rf"\d{{{digits},}}", text) if digits else None
    if found is None:
        return FarmFileError([f"{source}:1:1: yaml: a value that cannot be read"])
    line = text.count("\n", 0, found.start()) + 1
    col = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    return FarmFileError([f"{source}:{line}:{col}: yaml: a number with {digits} digits or more"])


def _document(
    source: str, parse: Callable[[], YamlDocument], text: Callable[[], str]
) -> YamlDocument:
    """`parse()`'s document, or a FarmFileError in our words whatever went wrong."""
    try:
        return parse()
    except ConfigError as err:
        raise FarmFileError(_problems(err.issues, section="yaml")) from None
    except RecursionError:
        raise FarmFileError([f"{source}:1:1: yaml: nested too deeply"]) from None
    except ValueError:
        raise _unreadable_value(text(), source) from None


def _validate(doc: YamlDocument) -> Farm:
    if not isinstance(doc.data, dict):
        raise FarmFileError([f"{doc.file}:1:1: (document): a farm file is a YAML mapping"])
    try:
        return Farm.model_validate(doc.data)
    except ValidationError as err:
        raise FarmFileError(_problems(validation_issues(err, doc, _farm_words))) from None


def parse_farm(text: str, source: str = "farm.yaml") -> Farm:
    """The farm in `text`, checked on its own (nothing about this machine)."""
    return _validate(_document(source, lambda: parse_yaml(text, source), lambda: text))


def load_farm(path: str | Path) -> Farm:
    """The farm file at `path`, checked as `serve` needs it on this machine."""
    from .hostcheck import host_issues

    p = Path(path)
    source = str(p)
    # The reader has read the file whole (a regular file) when a value fails.
    doc = _document(
        source, lambda: load_yaml(p, label=source), lambda: p.read_text(errors="replace")
    )
    farm = _validate(doc)
    issues = host_issues(farm, doc)
    if issues:
        raise FarmFileError(_problems(issues))
    return farm
