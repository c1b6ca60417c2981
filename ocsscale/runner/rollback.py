"""Rollback: replay the journal's undo records newest first.

Each record is reverted with the action that made it (`revert`) and then
proven (`verify_reverted`). An entry is marked `reverting` before its revert
and `reverted` after its proof, so a rollback that is cut short resumes where
it stopped: `revert` must be safe to call twice.

Each entry's hosts are reached as the journal recorded them when the step ran
(transports/recorded.py), and every one of them is logged in to before the
first revert: a host that cannot be reached stops the rollback before it has
changed anything, instead of halfway through.

Reverts of one step's entries (the pins of one phase, say) on different
hosts run side by side, at most `forks` at once, as the run made them
(runner/parallel.py); everything else keeps the journal's order.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from ..actions.base import Action, Context
from ..errors import OcsscaleError, StepFailed, UndoRecordError, UsageError
from . import events as ev
from .events import Event, EventSink
from .faults import restore_in_place
from .journal import Entry, Journal
from .parallel import DEFAULT_FORKS, Stop, run_lanes, waves
from .walk import locked_sink

#: what a revert the fault repair already made says instead of replaying it
ALREADY_RESTORED = "already restored by the fault repair"


def _summary(entry: Entry) -> str:
    return "; ".join(c.get("summary", "") for c in entry.changes or []) or entry.action


def refuse_missing(entries: list[Entry], actions: Mapping[str, type[Action]]) -> None:
    """Every action that made a recorded change must be loaded to revert it."""
    missing = sorted({e.action for e in entries if e.action not in actions})
    if missing:
        raise UsageError(
            f"cannot roll back: the action{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} that made recorded changes "
            f"{'are' if len(missing) > 1 else 'is'} not available; nothing was reverted",
            hint="load the plugin module that provides it with OCSSCALE_PLUGINS",
        )


def _label(entry: Entry) -> str:
    """The entry as an error names it: its step id (printable, bounded) and #seq."""
    step = "".join(c if c.isprintable() else "?" for c in entry.step_id[:200])
    return f"{step} (#{entry.seq})"


def check_undo_records(
    entries: list[Entry], ctx: Context, actions: Mapping[str, type[Action]]
) -> None:
    """Every record is of the shape its revert reads, and its step's arguments
    still make an action (checked before the first revert: a bad one found
    halfway would leave the rollback half done, stuck at the same place on
    every retry). UndoRecordError (exit 2) names the first bad one."""
    for entry in entries:
        try:
            action = actions[entry.action](ctx, entry.args)
            action.check_undo(entry.undo)
            continue
        except UndoRecordError as exc:
            why = f"its undo record is not what {entry.action} reverts from: {exc.message}"
        except OcsscaleError as exc:
            why = f"its arguments do not make a {entry.action} step now: {exc.message}"
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # a plugin's check, or arguments of another shape: fail closed
            why = f"its record cannot be checked ({type(exc).__name__})"
        raise UndoRecordError(
            f"cannot roll back {_label(entry)}: {why}; nothing was reverted",
            hint="the journal was edited or damaged there: put it back from a copy, or "
            "`ocsscale rollback --to PHASE` with a phase after that step's undoes the later "
            "ones alone",
        )


def _chain(entry: Entry, ctx: Context, actions: Mapping[str, type[Action]]) -> Any:
    cls = actions.get(entry.action)
    if cls is None:
        return None
    try:
        return cls(ctx, entry.args).undo_chain(entry.undo)
    except (OcsscaleError, KeyError, TypeError, AttributeError):
        return None  # an odd record: revert it on its own


def needless_reverts(
    entries: list[Entry], ctx: Context, actions: Mapping[str, type[Action]]
) -> dict[int, str]:
    """seq -> why that change needs no revert, for `entries` newest first.

    Changes of the same thing (one name's line in one hosts file) form a chain;
    reverting the oldest puts back what was there before all of them. So the
    newer ones are not replayed: replaying an unpin re-pins a host that is clean
    now, and a rollback cut short there would leave it pinned. A chain that ends
    where it began (a pin and its later unpin) needs no revert at all.
    """
    chains: dict[str, list[tuple[Entry, Any, Any]]] = {}
    for entry in entries:
        found = _chain(entry, ctx, actions)
        if found is not None:
            what, before, after = found
            chains.setdefault(what, []).append((entry, before, after))
    needless: dict[int, str] = {}
    for links in chains.values():
        if len(links) < 2 or any(entry.status != "done" for entry, _, _ in links):
            continue  # a change cut short may be half made: revert each on its own
        newest, oldest = links[0], links[-1]
        if oldest[1] == newest[2]:
            span = f"#{oldest[0].seq}..#{newest[0].seq}"
            for entry, _, _ in links:
                needless[entry.seq] = f"the changes {span} cancel out: nothing to put back"
            continue
        for entry, _, _ in links[:-1]:
            needless[entry.seq] = f"reverting #{oldest[0].seq} puts back what was there before"
    return needless


def hosts_needed(
    entries: list[Entry], ctx: Context, actions: Mapping[str, type[Action]]
) -> list[tuple[str, dict[str, Any] | None]]:
    """(host name, the entry's host records) for every host the reverts touch."""
    needed: list[tuple[str, dict[str, Any] | None]] = []
    for entry in entries:
        if entry.hosts is not None:
            needed += [(name, entry.hosts) for name in entry.hosts]
            continue
        # journaled before hosts were recorded: the pool file says where they are
        try:
            names = actions[entry.action](ctx, entry.args).revert_targets(entry.undo)
        except OcsscaleError:
            continue  # its revert reports the problem itself
        needed += [(name, None) for name in names]
    return needed


def rollback(
    journal: Journal,
    ctx: Context,
    sink: EventSink,
    rollback_id: str,
    actions: Mapping[str, type[Action]],
    from_index: int = 0,
    hosts: Any = None,  # transports.recorded.RecordedHosts; None: ctx.host as given
    forks: int = DEFAULT_FORKS,
) -> list[Entry]:
    """Revert every recorded change of phases at or after `from_index`, after
    putting right every fault the tool left in place (whatever its phase)."""

    def context_for(entry: Entry) -> Context:
        if hosts is None:
            return ctx
        return dataclasses.replace(ctx, host=hosts.for_entry(entry.hosts))

    entries = journal.undoable(from_index)
    refuse_missing(entries, actions)
    check_undo_records(entries, ctx, actions)  # anew under the lock, before any revert
    # then the faults: an FE whose link the tool cut is unreachable only because of
    # that cut, which is no reason to refuse the rollback
    restored = restore_in_place(journal, context_for, actions, sink, rollback_id)
    if restored:
        entries = journal.undoable(from_index)
    # a fault put right just now whose restore is its step's whole revert (a drill's)
    repaired = {f.seq for f in restored if actions[f.action].fault_restore_reverts}
    needless = needless_reverts(entries, ctx, actions)
    if hosts is not None:
        # every entry: one with nothing to revert still has a backup to remove
        hosts.check_reach(hosts_needed(entries, ctx, actions))
    sink = locked_sink(sink)

    def key(entry: Entry) -> Hashable | None:
        return (entry.cycle_id, entry.action) if actions[entry.action].parallel else None

    def lane(items: Sequence[Entry], stop: Stop) -> list[BaseException]:
        for entry in items:
            if stop:
                break
            try:
                why = needless.get(entry.seq)
                already = entry.seq in repaired
                _revert(journal, ctx, sink, rollback_id, actions, entry, why, hosts, already)
            except StepFailed as exc:
                stop.set()
                return [exc]
        return []

    for wave in waves(entries, key, lambda e: _revert_hosts(e, ctx, actions)):
        failures = run_lanes(wave, lane, forks)
        if failures:
            raise failures[0]
    journal.mark_phases_reverted(from_index)
    return entries


def _revert_hosts(entry: Entry, ctx: Context, actions: Mapping[str, type[Action]]) -> list[str]:
    if entry.hosts:
        return list(entry.hosts)
    try:
        return actions[entry.action](ctx, entry.args).revert_targets(entry.undo)
    except OcsscaleError:
        return [f"#{entry.seq}"]  # its own lane: its revert reports the problem


def _revert(
    journal: Journal,
    ctx: Context,
    sink: EventSink,
    rollback_id: str,
    actions: Mapping[str, type[Action]],
    entry: Entry,
    needless: str | None,
    hosts: Any,
    already: bool = False,
) -> None:
    """Revert one entry and prove it (or, when `needless` says why it needs no
    revert, only tidy; when `already`, the fault repair of this rollback has put
    it back: only prove it), then remove what the change left on its host."""
    started = time.monotonic()

    def emit(kind: str, data: Mapping[str, object]) -> None:
        sink(Event(kind, entry.phase, entry.step_id, dict(data)))

    # a context of its own: reverts of one wave run on several threads at once
    host = ctx.host if hosts is None else hosts.for_entry(entry.hosts)
    action = actions[entry.action](dataclasses.replace(ctx, host=host, emit=emit), entry.args)
    if needless is None:
        said = ALREADY_RESTORED + ": verifying" if already else _summary(entry)
        summary = {"seq": entry.seq, "action": entry.action, "summary": said}
        sink(Event(ev.REVERT_START, entry.phase, entry.step_id, summary))
        # marked before the change: a rollback cut short resumes with this entry
        journal.begin_revert(entry.seq, rollback_id)
    try:
        if needless is None:
            # replayed, the drill's revert would restart its services, or ask the
            # operator to plug the cable back in, a second time
            done = {"already_restored": ALREADY_RESTORED} if already else None
            evidence = {
                "revert": done or action.revert(entry.undo),
                "verify": action.verify_reverted(entry.undo),
            }
        else:
            evidence = {"skipped": needless}
        evidence["tidy"] = action.tidy(entry.undo)
    except OcsscaleError as exc:
        if needless is None:
            journal.revert_failed(entry.seq, exc.message)
        sink(
            Event(
                ev.REVERT_FAILED,
                entry.phase,
                entry.step_id,
                {"seq": entry.seq, "error": exc.message},
            )
        )
        again = "run `ocsscale rollback` again: it resumes at this step"
        raise StepFailed(
            f"rollback stopped at {entry.step_id}: {exc.message}",
            hint=f"{exc.hint}; then {again}" if exc.hint else f"fix the cause and {again}",
        ) from None
    if needless is not None:
        # never marked `reverting`: cut short, it is still a link of its chain
        journal.skip_revert(entry.seq, rollback_id, evidence)
        data = {"seq": entry.seq, "reason": needless}
        sink(Event(ev.REVERT_SKIPPED, entry.phase, entry.step_id, data))
        return
    journal.finish_revert(entry.seq, evidence)
    seconds = time.monotonic() - started
    data = {"seq": entry.seq, "seconds": seconds, "already_restored": already}
    sink(Event(ev.REVERT_DONE, entry.phase, entry.step_id, data))
