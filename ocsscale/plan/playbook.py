"""Playbooks: the procedure as data.

A playbook (`playbooks/<profile>.yaml`) lists phases in the walkthrough's
order; each phase lists steps, and each step names an action and its
arguments. Strings in a step are Jinja2 templates over the pool file (see
`render.py`). A step may `foreach` over a list, and a `group` runs several
steps once per item (e.g. every step of validate-fe once per front end, one
front end at a time). A phase's `cleanup` steps run whenever the phase ends,
also when it fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from ..errors import ConfigError, ConfigIssue, UsageError
from ..resources import resource_path
from ..yamlpos import YamlDocument, format_path, load_yaml

#: The walkthrough's phases, in the order they must run.
PhaseId = Literal[
    "preflight",
    "routing",
    "configure-fe",
    "validate-fe",
    "configure-lb",
    "validate-lb",
    "failover-test",
    "lower-ttl",
    "cutover",
    "decommission",
]
PHASE_IDS: tuple[str, ...] = get_args(PhaseId)

_ID_PATTERN = r"^[a-z0-9][a-z0-9.-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class StepSpec(_Strict):
    """One action. `target`/`change`/`summary` describe the step in the plan
    while its action is not built yet; a built action describes itself."""

    id: str = Field(pattern=_ID_PATTERN)
    action: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
    args: dict[str, Any] = Field(default_factory=dict)
    foreach: str | None = None  # a Jinja2 expression giving a list
    as_: str = Field(default="item", alias="as", pattern=r"^[a-z_][a-z0-9_]*$")
    label: str | None = None  # template for the [label] of each item's step id
    when: str | None = None  # a Jinja2 expression; false -> the step is left out
    target: str | None = None
    change: Literal["add", "change", "remove", "check"] | None = None
    summary: str | None = None
    #: false: this entry's steps run one after another even where the action could run
    #: them side by side (restarts of front ends the load balancer already sends to)
    parallel: bool = True


class GroupSpec(_Strict):
    """Several steps run once per item, one item at a time."""

    group: str = Field(pattern=_ID_PATTERN)  # a name for messages; not part of step ids
    foreach: str
    as_: str = Field(default="item", alias="as", pattern=r"^[a-z_][a-z0-9_]*$")
    label: str | None = None
    when: str | None = None
    steps: list[StepSpec] = Field(min_length=1)


def _kind(value: Any) -> str:
    return "group" if isinstance(value, dict) and "group" in value else "step"


StepOrGroup = Annotated[
    Annotated[StepSpec, Tag("step")] | Annotated[GroupSpec, Tag("group")],
    Discriminator(_kind),
]


class PhaseSpec(_Strict):
    id: PhaseId
    title: str
    section: str  # the walkthrough section this phase follows
    when: str | None = None
    skip_reason: str | None = None
    steps: list[StepOrGroup] = Field(default_factory=list)
    cleanup: list[StepOrGroup] = Field(default_factory=list)


class PlaybookSpec(_Strict):
    version: Literal[1]
    description: str | None = None
    phases: list[PhaseSpec] = Field(min_length=1)


class Playbook:
    """A validated playbook plus its source, so later errors can name a position."""

    def __init__(self, spec: PlaybookSpec, path: Path, doc: YamlDocument) -> None:
        self.spec = spec
        self.path = path
        self._doc = doc

    def where(self, loc: tuple[str | int, ...]) -> tuple[int, int]:
        return _where(self._doc, loc)

    def issue(self, loc: tuple[str | int, ...], rule: str, message: str) -> ConfigIssue:
        line, col = self.where(loc)
        return ConfigIssue(str(self.path), line, col, format_path(loc), rule, message)


def _where(doc: YamlDocument, loc: tuple[str | int, ...]) -> tuple[int, int]:
    # a mapping entry is named by its key (a step's `args:`, not its first
    # argument); a list item by where the item starts
    return doc.key_position(loc)


def load_playbook(path: Path) -> Playbook:
    doc = load_yaml(path)
    try:
        spec = PlaybookSpec.model_validate(doc.data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_input=False, include_url=False):
            # the step/group union adds its tag to the location; it is not in the file
            loc = tuple(k for k in err["loc"] if k not in ("step", "group"))
            line, col = _where(doc, loc)
            rule = f"playbook.{err['type']}"
            issues.append(ConfigIssue(str(path), line, col, format_path(loc), rule, err["msg"]))
        raise ConfigError(issues) from None
    playbook = Playbook(spec, path, doc)
    _check_order(playbook)
    return playbook


def _check_order(playbook: Playbook) -> None:
    issues = []
    seen: list[int] = []
    for i, phase in enumerate(playbook.spec.phases):
        index = PHASE_IDS.index(phase.id)
        if seen and index <= seen[-1]:
            issues.append(
                playbook.issue(
                    ("phases", i, "id"),
                    "playbook.phase-order",
                    f"phase {phase.id} is out of order or repeated; phases run in the order "
                    + ", ".join(PHASE_IDS),
                )
            )
        seen.append(index)
    if issues:
        raise ConfigError(issues)


def find_playbook(profile_source: str, profile_name: str, override: Path | None = None) -> Path:
    """The playbook to use: an explicit path (`--playbook`); else, for a profile
    file of the user's own, `<stem>.playbook.yaml` beside it; else the shipped
    `playbooks/<profile name>.yaml`."""
    if override is not None:
        if not override.is_file():
            raise UsageError(f"playbook {override} does not exist")
        return override
    if profile_source:
        own = Path(profile_source)
        beside = own.with_name(own.stem + ".playbook.yaml")
        if beside.is_file():
            return beside
    shipped = resource_path("playbooks") / f"{profile_name}.yaml"
    if shipped.is_file():
        return shipped
    names = sorted(p.stem for p in resource_path("playbooks").glob("*.yaml"))
    raise UsageError(
        f"no playbook for profile {profile_name}",
        hint="shipped playbooks: "
        + (", ".join(names) or "none")
        + "; or give one with --playbook FILE",
    )
