"""Faults the tool puts in place on purpose, journaled like any other change.

A failover drill stops an FE's services or cuts its link; a drained restart
drains a member at the LB; validate-lb's isolate step puts the other members in
maint. Each is production broken by the tool, so each is the most urgent change
to put right after an interruption:

- The action puts a fault in place through `Context.faults.inject`: the fault is
  journaled first (`faults` table), then put in place, both under a signal
  shield (runner/signals.py), so Ctrl-C, SIGHUP or SIGTERM wait until the
  record and the fault agree. `Context.faults.restore` takes it away the same
  way and marks it cleared.
- A SIGKILL (or a restore that failed) leaves the record uncleared. Every
  command that finds one says so first: `status` names it with the command that
  repairs it; `run` puts it right before anything else (then the interrupted
  step runs again, the drill included); `rollback` puts it right before it
  checks that it can reach every host, so an FE that is unreachable only
  because of the tool's own link cut is not a reason to refuse.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..actions.base import Action, Context
from ..errors import OcsscaleError, StepFailed, UndoRecordError, UsageError
from .events import FAULT_FOUND, FAULT_RESTORED, Event, EventSink
from .journal import Entry, Fault, Journal
from .signals import shielded


class JournaledFaults:
    """What the runner gives an action as `Context.faults` for one step: every
    fault journaled against that step's entry (`seq`, set once it is begun)."""

    def __init__(self, journal: Journal, cleared_by: str) -> None:
        self.journal = journal
        self.cleared_by = cleared_by
        self.seq: int | None = None

    @contextmanager
    def held(
        self,
        kind: str,
        target: str,
        summary: str,
        restore: Any,
        put: Callable[[], Any],
        take_away: Callable[[], Any],
    ) -> Iterator[None]:
        if self.seq is None:
            raise RuntimeError("a fault is put in place only by a step the journal has begun")
        seq = self.seq
        # the record first, then the fault, with no signal in between; a signal held
        # meanwhile is raised inside the `try`, so the fault is taken away again
        with shielded(deliver=False) as interrupt:
            fault_id = self.journal.place_fault(seq, kind, target, summary, restore)
            put()
        try:
            interrupt.deliver()
            yield
        except BaseException:
            # the first error is the one to show; one left in place stays journaled,
            # and the next command puts it right first
            with contextlib.suppress(OcsscaleError):
                self._take_away(fault_id, take_away)
            raise
        self._take_away(fault_id, take_away)

    def _take_away(self, fault_id: int, take_away: Callable[[], Any]) -> None:
        with shielded():
            take_away()
            self.journal.clear_fault(fault_id, self.cleared_by)


def refuse_unknown(faults: list[Fault], actions: Mapping[str, type[Action]]) -> None:
    missing = sorted({f.action for f in faults if f.action not in actions})
    if missing:
        raise UsageError(
            f"a fault the tool put in place was made by {', '.join(missing)}, which is not "
            "loaded: it cannot be put right; nothing was changed",
            hint="load the plugin module that provides it with OCSSCALE_PLUGINS",
        )


def restore_in_place(
    journal: Journal,
    context_for: Callable[[Entry], Context],
    actions: Mapping[str, type[Action]],
    sink: EventSink,
    cleared_by: str,
) -> list[Fault]:
    """Put right every fault the journal says is in place, oldest first, and mark
    each cleared; raise on the first that cannot be (nothing else is tried then:
    a run or rollback on top of a broken FE would measure or revert the wrong thing)."""
    import time

    faults = journal.faults_in_place()
    refuse_unknown(faults, actions)
    entries = {e.seq: e for e in journal.entries()} if faults else {}
    for fault in faults:  # every record checked before the first is acted on
        entry = entries[fault.seq]
        try:
            actions[fault.action](context_for(entry), entry.args).check_undo(fault.restore)
        except OcsscaleError as exc:
            raise UndoRecordError(
                f"the journal's record of a fault the tool left in place (step "
                f"{entry.step_id}, #{entry.seq}) is not one it can act on: {exc.message}; "
                "nothing was changed",
                hint="put it right by hand (`ocsscale status` names it), or restore a copy "
                "of the journal",
            ) from None
    for fault in faults:
        entry = entries[fault.seq]
        sink(
            Event(
                FAULT_FOUND,
                entry.phase,
                entry.step_id,
                {
                    "kind": fault.kind,
                    "target": fault.target,
                    "summary": fault.summary,
                    "placed": fault.placed,
                },
            )
        )
        started = time.monotonic()
        try:
            action = actions[fault.action](context_for(entry), entry.args)
            with shielded():
                evidence = action.restore_fault(fault.kind, fault.restore)
                journal.clear_fault(fault.fault_id, cleared_by)
        except OcsscaleError as exc:
            raise StepFailed(
                f"a fault the tool left in place could not be put right: {fault.describe()}: "
                f"{exc.message}; nothing else was done",
                hint=exc.hint or "put it right by hand, then run the command again",
            ) from None
        sink(
            Event(
                FAULT_RESTORED,
                entry.phase,
                entry.step_id,
                {
                    "kind": fault.kind,
                    "target": fault.target,
                    "summary": fault.summary,
                    "evidence": evidence,
                    "seconds": time.monotonic() - started,
                },
            )
        )
    return faults


def _fault_json(fault: Fault) -> dict[str, Any]:
    return {
        "kind": fault.kind,
        "target": fault.target,
        "summary": fault.summary,
        "phase": fault.phase,
        "step": fault.step_id,
        "seq": fault.seq,
        "placed": fault.placed,
        "repair": REPAIR,
    }


#: what puts a fault right (status shows it with each)
REPAIR = (
    "`ocsscale run` puts it right first, then runs the interrupted step again; "
    "`ocsscale rollback` puts it right first, then undoes the run"
)


def _watch(entries: list[Entry], live_step: str | None) -> dict[str, Any] | None:
    """The cutover's state between its record change and the end of its watch: the
    pool name is on the VIP with the short TTL, and only a live watch reverts it."""
    replaced = [e for e in entries if e.action == "dns.replace" and e.status == "done"]
    if not replaced:
        return None
    change = replaced[-1]
    later = [e for e in entries if e.seq > change.seq and e.cycle_id == change.cycle_id]
    if any(e.action in ("cutover.watch", "dns.raise_ttl") and e.status == "done" for e in later):
        return None  # the watch held (or the TTL is back up): nothing to watch
    undo: dict[str, Any] = change.undo if isinstance(change.undo, dict) else {}
    raw_new = undo.get("new")
    new: dict[str, Any] = raw_new if isinstance(raw_new, dict) else {}
    raw_values = new.get("values")
    values: list[Any] = raw_values if isinstance(raw_values, list) else []
    name, ttl = undo.get("name", "the pool name"), new.get("ttl")
    armed = live_step == "cutover.watch"
    where = ", ".join(str(v) for v in values) or "the VIP"
    message = f"{name} points to {where} with the cutover's short TTL ({ttl} s) since #{change.seq}"
    if armed:
        message += "; the watch is running and reverts it over its failure budget"
    else:
        message += "; no watch is running: nothing reverts it automatically"
    return {
        "name": name,
        "values": values,
        "ttl": ttl,
        "since_seq": change.seq,
        "armed": armed,
        "message": message,
        "repair": None
        if armed
        else "`ocsscale run --phase cutover` resumes the watch (and raises the TTL once it "
        "holds); `ocsscale rollback --to cutover` puts the old record and TTL back",
    }


def broken_by_tool(journal: Journal, live: bool) -> dict[str, Any]:
    """For `status`: every fault the tool put in place and has not put right, and
    the cutover's watch (armed only while a live run is in it). `live`: a run
    holds the lock and its process is there."""
    entries = journal.entries()
    live_step = None
    if live:
        running = [e for e in entries if e.status in ("pending", "applying")]
        live_step = running[-1].action if running else None
    return {
        "faults_in_place": [_fault_json(f) for f in journal.faults_in_place()],
        "watch": _watch(entries, live_step),
    }
