"""From a playbook and a pool file to a plan: every phase, step, target and change.

Building a plan never connects to anything: built actions describe their
change with `describe()` (from the pool file alone), and steps whose action
is not built yet are kept, flagged, with the playbook's own description.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..actions.base import Action, Change, Context
from ..errors import ConfigError, ConfigIssue, OcsscaleError, TransportError, UsageError
from .playbook import PHASE_IDS, GroupSpec, PhaseSpec, Playbook, StepSpec
from .render import Renderer, RenderError, short_text
from .stepref import StepRef

#: items one `foreach` may give, and steps one playbook may expand to: far above any
#: pool (the pool file itself holds at most 5,000 values), far below a hang
MAX_FOREACH = 1_000
MAX_PLAN_STEPS = 10_000
MAX_LABEL = 200  # characters of an item's label in a step id


class _Stop(Exception):
    """Building cannot usefully go on (the template budget is spent)."""


class _TooManySteps(Exception):
    def __init__(self, loc: tuple[str | int, ...], ref: StepRef) -> None:
        self.loc, self.step_id = loc, ref.id


@dataclass(frozen=True)
class PlanStep:
    ref: StepRef  # phase, step, row, item: what the runner's events carry
    action: str
    args: Mapping[str, Any]  # rendered: plain JSON, no secrets
    built: bool
    cleanup: bool
    changes: tuple[Change, ...]
    #: the playbook entry this step was expanded from (its `foreach` and the
    #: group's item): steps of one entry may run side by side (runner/parallel.py)
    wave: str = ""

    @property
    def id(self) -> str:
        """e.g. validate-fe/pin[ocsfe01@client01]: the journal's key, stable across runs."""
        return self.ref.id

    @property
    def phase(self) -> str:
        return self.ref.phase

    @property
    def target(self) -> str:
        seen: list[str] = []
        for change in self.changes:
            if change.target not in seen:
                seen.append(change.target)
        return ", ".join(seen)

    @property
    def change(self) -> str:
        kinds = {c.kind for c in self.changes}
        if len(kinds) == 1:
            return kinds.pop()
        return "change" if kinds else "none"

    @property
    def summary(self) -> str:
        text = "; ".join(c.summary for c in self.changes)
        return f"(cleanup) {text}" if self.cleanup else text

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "target": self.target,
            "change": self.change,
            "summary": self.summary,
            "built": self.built,
        }


@dataclass(frozen=True)
class PlanPhase:
    id: str
    index: int  # position in PHASE_IDS: the order rollback --to relies on
    title: str
    section: str
    skipped: str | None  # the reason, when the phase does not apply
    steps: tuple[PlanStep, ...]
    cleanup: tuple[PlanStep, ...]

    @property
    def all_steps(self) -> tuple[PlanStep, ...]:
        return self.steps + self.cleanup

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "skipped": self.skipped,
            "steps": [s.to_json() for s in self.all_steps],
        }


@dataclass(frozen=True)
class Plan:
    pool: str  # the pool FQDN
    playbook: str  # path of the playbook it was built from
    phases: tuple[PlanPhase, ...]

    def phase(self, phase_id: str) -> PlanPhase:
        for phase in self.phases:
            if phase.id == phase_id:
                return phase
        known = ", ".join(p.id for p in self.phases)
        raise UsageError(f"no phase {phase_id} in this playbook (phases: {known})")

    def select(self, *, only: str | None = None, through: str | None = None) -> list[PlanPhase]:
        """The phases a command covers: one (`--phase`), the first ones up to
        and including one (`--through`), or all."""
        if only and through:
            raise UsageError("give --phase or --through, not both")
        if only:
            return [self.phase(only)]
        if through:
            last = self.phase(through)
            return [p for p in self.phases if p.index <= last.index]
        return list(self.phases)

    def to_json(self, phases: Sequence[PlanPhase] | None = None) -> dict[str, Any]:
        chosen = self.phases if phases is None else phases
        return {"pool": self.pool, "phases": [p.to_json() for p in chosen]}


def not_built(phases: Sequence[PlanPhase]) -> list[PlanStep]:
    return [s for p in phases if not p.skipped for s in p.all_steps if not s.built]


def _no_connection(name: str) -> Any:
    raise TransportError(f"the plan does not connect to hosts (asked for {name})")


class _Builder:
    def __init__(
        self,
        playbook: Playbook,
        renderer: Renderer,
        pool: Any,
        profile: Any,
        actions: Mapping[str, type[Action]],
        facts: Mapping[str, Any] | None = None,
    ) -> None:
        self.playbook = playbook
        self.renderer = renderer
        self.actions = actions
        # facts: what earlier runs read from the hosts (the journal's preflight evidence,
        # host -> evidence), so a step can name what it will touch; never a connection
        self.ctx = Context(
            pool=pool, profile=profile, host=_no_connection, preflight=dict(facts or {})
        )
        self.issues: list[ConfigIssue] = []
        self.made = 0  # steps expanded so far

    def fail(self, loc: tuple[str | int, ...], rule: str, message: str) -> None:
        self.issues.append(self.playbook.issue(loc, rule, message))
        if self.renderer.exhausted:
            raise _Stop  # every template after this one would fail the same way

    def phase(self, i: int, spec: PhaseSpec) -> PlanPhase:
        loc: tuple[str | int, ...] = ("phases", i)
        skipped = None
        if spec.when is not None:
            try:
                applies = self.renderer.condition(spec.when)
            except RenderError as exc:
                self.fail((*loc, "when"), "playbook.template", str(exc))
                applies = True
            if not applies:
                skipped = spec.skip_reason or f"its condition `{spec.when}` does not hold"
        steps: list[PlanStep] = []
        cleanup: list[PlanStep] = []
        if skipped is None:
            for j, item in enumerate(spec.steps):
                steps += self.entries(spec.id, item, (*loc, "steps", j), False)
            for j, item in enumerate(spec.cleanup):
                cleanup += self.entries(spec.id, item, (*loc, "cleanup", j), True)
        seen: set[str] = set()
        for step in steps + cleanup:
            if step.id in seen:
                self.fail(loc, "playbook.step-id", f"step id {step.id} occurs twice")
            seen.add(step.id)
        return PlanPhase(
            id=spec.id,
            index=PHASE_IDS.index(spec.id),
            title=spec.title,
            section=spec.section,
            skipped=skipped,
            steps=tuple(steps),
            cleanup=tuple(cleanup),
        )

    def entries(
        self, phase: str, item: StepSpec | GroupSpec, loc: tuple[str | int, ...], cleanup: bool
    ) -> list[PlanStep]:
        if isinstance(item, StepSpec):
            return self.each(item, loc, self.renderer, [], phase, cleanup)
        out: list[PlanStep] = []
        expanded = self.expand(self.renderer, item.foreach, item.as_, item.label, item.when, loc)
        for renderer, label in expanded:
            for k, step in enumerate(item.steps):
                out += self.each(step, (*loc, "steps", k), renderer, [label], phase, cleanup)
        return out

    def expand(
        self,
        base: Renderer,
        foreach: str | None,
        name: str,
        label: str | None,
        when: str | None,
        loc: tuple[str | int, ...],
    ) -> list[tuple[Renderer, str | None]]:
        """One (renderer, label) per item that passes `when`."""
        if foreach is None:
            items: list[Any] = [None]
        else:
            try:
                value = base.expression(foreach)
            except RenderError as exc:
                self.fail((*loc, "foreach"), "playbook.template", str(exc))
                return []
            if not isinstance(value, list):
                self.fail((*loc, "foreach"), "playbook.foreach", "foreach must give a list")
                return []
            if len(value) > MAX_FOREACH:
                self.fail(
                    (*loc, "foreach"),
                    "playbook.foreach-size",
                    f"foreach gives {len(value)} items; at most {MAX_FOREACH}",
                )
                return []
            items = value
        out: list[tuple[Renderer, str | None]] = []
        for item in items:
            renderer = base if foreach is None else base.with_vars({name: item})
            try:
                if when is not None and not renderer.condition(when):
                    continue
                if foreach is None:
                    text = None
                elif label is not None:
                    text = renderer.text(label)
                elif isinstance(item, Mapping) and "name" in item:
                    text = str(item["name"])
                else:
                    text = str(item)
            except RenderError as exc:
                self.fail(loc, "playbook.template", str(exc))
                continue
            if text is not None and len(text) > MAX_LABEL:
                too_long = f"a step label of more than {MAX_LABEL} characters"
                self.fail(loc, "playbook.label", too_long)
                continue
            out.append((renderer, text))
        return out

    def each(
        self,
        spec: StepSpec,
        loc: tuple[str | int, ...],
        renderer: Renderer,
        labels: list[str | None],
        phase: str,
        cleanup: bool,
    ) -> list[PlanStep]:
        # `renderer` already holds a group's item, so a step can refer to it
        expanded = self.expand(renderer, spec.foreach, spec.as_, spec.label, spec.when, loc)
        out = []
        # "": each step on its own (the playbook asks for one after another)
        wave = f"{phase}/{spec.id}[{'@'.join(x for x in labels if x)}]" if spec.parallel else ""
        for item_renderer, label in expanded:
            # the first label is the row (a group's item, or the step's own
            # without a group), a second one the step's item within that row
            parts = [x for x in [*labels, label] if x]
            ref = StepRef(phase, spec.id, *parts)
            self.made += 1
            if self.made > MAX_PLAN_STEPS:
                raise _TooManySteps(loc, ref)
            step = self.step(spec, loc, item_renderer, ref, cleanup)
            if step is not None:
                out.append(replace(step, wave=wave))
        return out

    def step(
        self,
        spec: StepSpec,
        loc: tuple[str | int, ...],
        renderer: Renderer,
        ref: StepRef,
        cleanup: bool,
    ) -> PlanStep | None:
        step_id, phase = ref.id, ref.phase
        action_cls = self.actions.get(spec.action)
        if action_cls is not None and action_cls.phases and phase not in action_cls.phases:
            self.fail(
                (*loc, "action"),
                "playbook.action-phase",
                f"{step_id}: {spec.action} stops production services or takes members out "
                f"of the load balancer: it runs only in phase(s) {', '.join(action_cls.phases)}",
            )
            return None
        try:
            args = renderer.value(spec.args)
        except RenderError as exc:
            self.fail((*loc, "args"), "playbook.template", f"{step_id}: {exc}")
            return None
        if action_cls is None:
            try:
                target = renderer.text(spec.target) if spec.target else "?"
                summary = renderer.text(spec.summary) if spec.summary else spec.action
            except RenderError as exc:
                self.fail(loc, "playbook.template", f"{step_id}: {exc}")
                return None
            changes: tuple[Change, ...] = (Change(spec.change or "change", target, summary),)
            return PlanStep(ref, spec.action, args, False, cleanup, changes)
        try:
            changes = tuple(action_cls(self.ctx, args).describe())
        except OcsscaleError as exc:
            self.fail((*loc, "args"), "playbook.args", f"{step_id}: {exc.message}")
            return None
        return PlanStep(ref, spec.action, args, True, cleanup, changes)


def build_plan(
    playbook: Playbook,
    variables: Mapping[str, Any],
    *,
    pool: Any,
    profile: Any,
    actions: Mapping[str, type[Action]],
    pool_name: str,
    facts: Mapping[str, Any] | None = None,
) -> Plan:
    """Render every phase of `playbook` over `variables` (the pool file as plain
    data). All template and argument problems are reported at once. `facts` is
    the latest preflight evidence per host, when a journal holds one."""
    builder = _Builder(playbook, Renderer(variables), pool, profile, actions, facts)
    try:
        phases = tuple(builder.phase(i, spec) for i, spec in enumerate(playbook.spec.phases))
    except _TooManySteps as exc:  # nested foreach: stop building, say where
        too_many = f"the playbook expands to more than {MAX_PLAN_STEPS} steps"
        builder.issues.append(
            playbook.issue(
                exc.loc, "playbook.too-many-steps", f"{short_text(exc.step_id)}: {too_many}"
            )
        )
        raise ConfigError(builder.issues) from None
    except _Stop:
        raise ConfigError(builder.issues) from None
    if builder.issues:
        raise ConfigError(builder.issues)
    return Plan(pool=pool_name, playbook=str(playbook.path), phases=phases)
