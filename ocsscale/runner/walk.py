"""Walking the plan: phases in order, steps in order, each journaled.

For each step: read the current state, diff it against the desired state; if
there is nothing to do the step is done. Otherwise the undo record is written
to the journal *before* apply, then apply and verify run and the step is
marked done. A phase's cleanup steps run when the phase ends, whether its
steps succeeded or not.

A failed check (a read-only step) does not stop the checks that follow it
directly: they all run, up to the next step that would change something, and
the phase then fails naming every check that failed (preflight names every
host it cannot log in to, not just the first).

Steps of one playbook entry whose action allows it run side by side on
different hosts, at most `forks` at once (runner/parallel.py); each still
journals its undo record before its change.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from ..actions.base import Action, Change, Context
from ..errors import NotImplementedAction, OcsscaleError, Refused, StepFailed
from ..plan.build import PlanPhase, PlanStep, not_built
from . import events as ev
from .events import Event, EventSink
from .faults import JournaledFaults
from .journal import Cycle, Journal
from .parallel import DEFAULT_FORKS, Stop, Wave, run_lanes, waves
from .signals import Terminated


def refuse_not_built(phases: Sequence[PlanPhase]) -> None:
    """Refuse the whole requested range up front, before anything is touched."""
    missing = not_built(phases)
    if not missing:
        return
    first = missing[0]
    names = sorted({s.action for s in missing})
    raise NotImplementedAction(
        f"phase {first.phase}, step {first.id}: action {first.action} is not built yet "
        f"({len(missing)} step{'s' if len(missing) != 1 else ''} in the requested phases need "
        f"actions that are not built: {', '.join(names)}); nothing was changed",
        hint="`ocsscale plan` marks them; choose phases with --phase/--through that are built",
    )


def _interrupted(exc: BaseException) -> str:
    """What the journal and the progress say of a run stopped by something
    other than a failed step: Ctrl-C is just "interrupted"."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, Terminated):
        return f"interrupted ({exc})"
    return f"interrupted ({type(exc).__name__})"


def _phase_start(phase: PlanPhase, *, resumed: bool) -> Event:
    data: dict[str, Any] = {
        "title": phase.title,
        "section": phase.section,
        "steps": len(phase.all_steps),
        "resumed": resumed,
    }
    return Event(ev.PHASE_START, phase.id, data=data)


class _CleanupError(Exception):
    """A cleanup step's failure, as the phase's error names it."""


def locked_sink(sink: EventSink) -> EventSink:
    """The sink, called by one thread at a time (steps of a wave run on several)."""
    lock = threading.Lock()

    def locked(event: Event) -> None:
        with lock:
            sink(event)

    return locked


def _one(failures: Sequence[BaseException], what: str = "steps") -> StepFailed:
    """One failure as it is, several as one naming each."""
    steps = [f for f in failures if isinstance(f, StepFailed)]
    if len(steps) == 1:
        return steps[0]
    return StepFailed(
        f"{len(steps)} {what} failed: " + "; ".join(f.message for f in steps),
        hint=next((f.hint for f in steps if f.hint), None),
    )


def _changes_json(changes: Sequence[Change]) -> list[dict[str, str]]:
    return [c.to_dict() for c in changes]


class Walker:
    def __init__(
        self,
        journal: Journal | None,  # None for a dry run, which writes nothing
        ctx: Context,
        sink: EventSink,
        run_id: str,
        actions: Mapping[str, type[Action]],
        record_hosts: Callable[[list[str]], Mapping[str, Any]] | None = None,
        forks: int = DEFAULT_FORKS,
    ) -> None:
        self.journal = journal
        #: how to reach the hosts a revert needs, journaled with the undo record
        self.record_hosts = record_hosts
        self.ctx = ctx
        self.sink = locked_sink(sink)
        self.run_id = run_id
        self.actions = actions
        self.forks = forks

    def _action(self, step: PlanStep, faults: JournaledFaults | None = None) -> Action:
        def emit(kind: str, data: Mapping[str, Any]) -> None:
            self.sink(Event.of(kind, step.ref, data))

        # a context of its own: steps of one wave run on several threads at once
        ctx = dataclasses.replace(self.ctx, emit=emit)
        if faults is not None:
            ctx = dataclasses.replace(ctx, faults=faults)
        return self.actions[step.action](ctx, step.args)

    def _waves(self, steps: Sequence[PlanStep]) -> list[Wave[PlanStep]]:
        def key(step: PlanStep) -> Hashable | None:
            cls = self.actions[step.action]
            return (step.wave, step.action) if cls.parallel and step.wave else None

        def hosts(step: PlanStep) -> list[str]:
            try:
                return self.actions[step.action](self.ctx, step.args).targets()
            except OcsscaleError:
                return [step.id]  # its own lane: the step reports the problem itself

        return waves(steps, key, hosts)

    # the real run -----------------------------------------------------------
    def run(self, phases: Sequence[PlanPhase]) -> None:
        """Walk `phases` (session.gate_run has refused unbuilt steps up front)."""
        for phase in phases:
            self._phase(phase)

    @property
    def _journal(self) -> Journal:
        if self.journal is None:
            raise RuntimeError("a real run needs a journal")
        return self.journal

    def _phase(self, phase: PlanPhase) -> None:
        if phase.skipped:
            self.sink(Event(ev.PHASE_SKIPPED, phase.id, data={"reason": phase.skipped}))
            return
        latest = self._journal.latest_cycle(phase.id)
        if latest is not None and latest.status == "done":
            self.sink(Event(ev.PHASE_ALREADY_DONE, phase.id, data={"title": phase.title}))
            return
        resumed = latest is not None and latest.status == "running"
        if resumed and latest is not None:
            cycle = latest
        else:
            cycle = self._journal.open_cycle(phase.id, phase.index, self.run_id)
        self.sink(_phase_start(phase, resumed=resumed))
        failure: BaseException | None = None
        try:
            self._steps(cycle, phase.steps)
        except (KeyboardInterrupt, Terminated) as exc:
            # as a kill leaves it: the cycle stays open and its steps as they were,
            # so `run` resumes without redoing a finished step. Cleanup does not
            # run: the steps after the interrupted one may still need its pins.
            # Faults put in place on purpose were put right under the shield.
            message = f"{_interrupted(exc)}: the journal keeps every step"
            self.sink(Event(ev.PHASE_FAILED, phase.id, data={"error": message}))
            raise
        except BaseException as exc:  # cleanup must run whatever failed
            failure = exc
        cleanup_errors: list[str] = []
        if phase.cleanup:
            self.sink(Event(ev.CLEANUP_START, phase.id, data={"steps": len(phase.cleanup)}))
        for wave in self._waves(phase.cleanup):
            # every cleanup step is tried, whatever failed before it
            found = run_lanes(wave, lambda lane, _: self._cleanup_lane(cycle, lane), self.forks)
            cleanup_errors += [str(f) for f in found]
        if failure is not None:
            message = (
                failure.message if isinstance(failure, OcsscaleError) else _interrupted(failure)
            )
            self._journal.close_cycle(cycle.cycle_id, "failed", message)
            self.sink(Event(ev.PHASE_FAILED, phase.id, data={"error": message}))
            if isinstance(failure, OcsscaleError):
                # the step's own hint (how to trust a host key, which file to fix)
                # is the most useful line the operator gets: keep it first
                after = "`ocsscale run` again, or `ocsscale rollback`"
                hint = (
                    f"{failure.hint}; then {after}"
                    if failure.hint
                    else f"fix the cause and {after}"
                )
                raise StepFailed(f"phase {phase.id}: {message}", hint=hint) from None
            raise failure
        if cleanup_errors:
            message = "cleanup failed: " + "; ".join(cleanup_errors)
            self._journal.close_cycle(cycle.cycle_id, "failed", message)
            self.sink(Event(ev.PHASE_FAILED, phase.id, data={"error": message}))
            raise StepFailed(f"phase {phase.id}: {message}")
        self._journal.close_cycle(cycle.cycle_id, "done")
        self.sink(Event(ev.PHASE_DONE, phase.id))

    def _steps(self, cycle: Cycle, steps: Sequence[PlanStep]) -> None:
        failed: list[StepFailed] = []
        for wave in self._waves(steps):
            checks = all(self.actions[s.action].read_only for s in wave.items)
            if failed and not checks:
                break  # nothing changes after a failed check
            found = run_lanes(wave, lambda lane, stop: self._lane(cycle, lane, stop), self.forks)
            if found and not checks:
                raise _one(found)
            failed += [f for f in found if isinstance(f, StepFailed)]
        if failed:
            raise _one(failed, "checks")

    def _lane(self, cycle: Cycle, lane: Sequence[PlanStep], stop: Stop) -> list[BaseException]:
        """One lane's steps in order; a failed change stops every lane (checks go on)."""
        failed: list[BaseException] = []
        for step in lane:
            if stop:
                break
            try:
                self._step(cycle, step)
            except StepFailed as exc:
                failed.append(exc)
                if not self.actions[step.action].read_only:
                    stop.set()
                    break
        return failed

    def _cleanup_lane(self, cycle: Cycle, lane: Sequence[PlanStep]) -> list[BaseException]:
        errors: list[BaseException] = []
        for step in lane:
            try:
                self._step(cycle, step)
            except OcsscaleError as exc:
                errors.append(_CleanupError(f"{step.id}: {exc.message}"))
        return errors

    def _step(self, cycle: Cycle, step: PlanStep) -> None:
        previous = self._journal.latest_entry(cycle.cycle_id, step.id)
        if previous is not None and previous.status == "done":
            self.sink(Event.of(ev.STEP_SKIPPED, step.ref, {"reason": "already done"}))
            return
        faults = JournaledFaults(self._journal, self.run_id)
        action = self._action(step, faults)
        started = time.monotonic()
        self.sink(
            Event.of(ev.STEP_START, step.ref, {"action": step.action, "summary": step.summary})
        )
        if previous is not None and previous.status == "applying":
            seq = previous.seq
            self.sink(Event.of(ev.STEP_RESUMED, step.ref, {"found": "applying"}))
        else:
            if previous is not None and previous.status == "pending":
                self._journal.fail_step(previous.seq, "interrupted before any change")
            seq = self._journal.begin_step(
                cycle, self.run_id, step.id, step.action, step.args, step.cleanup
            )
        faults.seq = seq
        retried = previous is not None and previous.status == "applying"
        try:
            current = action.read()
            changes = list(action.diff(current))
            if not changes:
                # nothing to do, or (after a crash mid-apply) the change had landed
                evidence = {"unchanged": True, "resumed": previous is not None}
                self._journal.finish_step(seq, evidence, [] if previous is None else None)
            else:
                if retried:
                    # keep the undo record written before the first attempt: it
                    # holds what was there before anything changed
                    self._journal.retry(seq)
                else:
                    undo = None if action.read_only else action.undo_record(current)
                    hosts = None
                    if undo is not None and self.record_hosts is not None:
                        hosts = self.record_hosts(action.revert_targets(undo))
                    self._journal.record_undo(seq, _changes_json(changes), undo, hosts)
                evidence = action.verify(action.apply(current))
                self._journal.finish_step(seq, evidence, None)
        except OcsscaleError as exc:
            # refused before it changed anything (a guard): no undo left behind, so a
            # rollback never "puts back" a value the tool did not write. A retry
            # after a crash keeps its record: the first attempt may have changed it.
            self._journal.fail_step(
                seq, exc.message, refused=isinstance(exc, Refused) and not retried
            )
            self.sink(
                Event.of(
                    ev.STEP_FAILED,
                    step.ref,
                    {"error": exc.message, "seconds": time.monotonic() - started},
                )
            )
            raise StepFailed(f"step {step.id} failed: {exc.message}", hint=exc.hint) from None
        except (KeyboardInterrupt, Terminated):
            raise  # left as a kill leaves it: resume picks the step up where it was
        except BaseException as exc:
            self._journal.fail_step(seq, _interrupted(exc))
            raise
        self.sink(
            Event.of(
                ev.STEP_DONE,
                step.ref,
                {
                    "changed": bool(changes),
                    "changes": _changes_json(changes),
                    "seconds": time.monotonic() - started,
                },
            )
        )

    # the dry run: read and diff only --------------------------------------
    def dry_run(self, phases: Sequence[PlanPhase]) -> list[tuple[PlanStep, list[Change]]]:
        """What each step would change now; nothing is written anywhere."""
        found: list[tuple[PlanStep, list[Change]]] = []
        for phase in phases:
            if phase.skipped:
                self.sink(Event(ev.PHASE_SKIPPED, phase.id, data={"reason": phase.skipped}))
                continue
            self.sink(_phase_start(phase, resumed=False))
            for step in phase.all_steps:
                if not step.built:
                    changes = list(step.changes)
                else:
                    action = self._action(step)
                    try:
                        changes = list(action.diff(action.read()))
                    except OcsscaleError as exc:
                        raise StepFailed(f"dry run, step {step.id}: {exc.message}") from None
                found.append((step, changes))
                self.sink(
                    Event.of(
                        ev.STEP_DIFF,
                        step.ref,
                        {"changes": _changes_json(changes), "built": step.built},
                    )
                )
            self.sink(Event(ev.PHASE_DONE, phase.id))
        return found
