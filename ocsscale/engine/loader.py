"""Read a farm file, reporting every problem as `FILE:LINE:COL: path: message`."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..errors import ConfigError, ConfigIssue
from ..yamlpos import PathKey, parse_yaml, validation_issues
from .farm import Farm


class FarmFileError(Exception):
    """A farm file that cannot be used; str() is one line per problem."""

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
    """One line per distinct problem; a YAML syntax problem is the `yaml` section."""
    problems: list[str] = []
    for issue in issues:
        line, col = (issue.line, issue.column) if issue.line else (1, 1)
        where = section or issue.path or "(document)"
        problem = f"{issue.file}:{line}:{col}: {where}: {issue.message}"
        if problem not in problems:
            problems.append(problem)
    return problems


def parse_farm(text: str, source: str = "farm.yaml") -> Farm:
    try:
        doc = parse_yaml(text, source)
    except ConfigError as err:
        raise FarmFileError(_problems(err.issues, section="yaml")) from None
    if not isinstance(doc.data, dict):
        raise FarmFileError([f"{source}:1:1: (document): a farm file is a YAML mapping"])
    try:
        return Farm.model_validate(doc.data)
    except ValidationError as err:
        raise FarmFileError(_problems(validation_issues(err, doc, _farm_words))) from None


def load_farm(path: str | Path) -> Farm:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise FarmFileError([f"{p}: cannot read farm file: {err.strerror}"]) from None
    return parse_farm(text, source=str(p))
