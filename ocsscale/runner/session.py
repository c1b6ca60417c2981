"""What each command does, end to end, without any rendering: load the pool
file and playbook, build the plan, take the lock, open the journal, walk or
roll back, and report status. The CLI calls these and renders their events."""

from __future__ import annotations

import dataclasses
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..actions.base import Action, Context, RunOptions
from ..config.dnsnames import cutover_names
from ..config.loader import STATE_DIR_NAME, LoadedPool, load_pool
from ..errors import OcsscaleError, UsageError
from ..operator import NoOperator, Operator, OperatorUnavailable
from ..plan.build import Plan, PlanPhase, build_plan
from ..plan.playbook import PHASE_IDS, find_playbook, load_playbook
from . import answers, signals
from . import rollback as rollback_mod
from .asking import ChannelOperator
from .events import Event, EventSink
from .evidence import check_journal, check_rows, reading
from .faults import restore_in_place
from .history import JournalHistory, journal_reverts
from .journal import JOURNAL_NAME, Entry, Fault, Journal, latest_evidence
from .lease import RunLease, check_free, lease_place
from .lock import RunLock, current_user, held_error, read_lock
from .plugins import load_actions
from .walk import Walker, refuse_not_built


@dataclass
class Prepared:
    loaded: LoadedPool
    plan: Plan
    actions: Any  # Mapping[str, type[Action]]


def state_dir_for(config: Path) -> Path:
    """The journal and lock of a pool file, found without reading it (status and
    unlock must work even when the pool file no longer validates)."""
    return Path(config).resolve().parent / STATE_DIR_NAME


def pool_variables(loaded: LoadedPool) -> dict[str, Any]:
    """What playbook templates see: the pool file as plain data, `profile` as
    the loaded profile, `vip_address` (the VIP without its prefix), and
    `cutover_names` (the names that move with the pool name: config/dnsnames.py)."""
    data: dict[str, Any] = loaded.pool.model_dump(mode="json")
    data["profile"] = loaded.profile.model_dump(mode="json")
    data["vip_address"] = str(loaded.pool.load_balancer.vip.ip)
    data["cutover_names"] = cutover_names(loaded.pool, loaded.profile)
    return data


def prepare(config: Path, playbook: Path | None = None) -> Prepared:
    actions = load_actions()
    loaded = load_pool(config)
    path = find_playbook(loaded.profile.source, loaded.profile.name, playbook)
    plan = build_plan(
        load_playbook(path),
        pool_variables(loaded),
        pool=loaded.pool,
        profile=loaded.profile,
        actions=actions,
        pool_name=loaded.pool.pool.fqdn,
        facts=latest_evidence(state_dir_for(config), "host.reachable"),
    )
    return Prepared(loaded, plan, actions)


def _no_connection(name: str) -> Any:
    raise UsageError(f"asked for host {name} while only listing the hosts steps touch")


def hosts_touched(
    loaded: LoadedPool,
    actions: Mapping[str, type[Action]],
    steps: Iterable[tuple[str, Mapping[str, Any]]],
) -> set[str]:
    """The host names the (action, args) pairs touch, from the pool file alone."""
    ctx = Context(pool=loaded.pool, profile=loaded.profile, host=_no_connection)
    names: set[str] = set()
    for action, args in steps:
        cls = actions.get(action)
        if cls is None:
            continue  # refused elsewhere, with a message of its own
        try:
            names.update(cls(ctx, args).targets())
        except OcsscaleError:
            continue  # bad arguments: the step itself reports them
    return names


def check_credentials_for(
    loaded: LoadedPool,
    actions: Mapping[str, type[Action]],
    steps: Iterable[tuple[str, Mapping[str, Any]]],
    also: Iterable[str] = (),
) -> None:
    """Every credential those steps' hosts (and the hosts `also` names) log in
    with resolves (SecretError, exit 2, otherwise): checked before the first
    step, never halfway through."""
    from ..transports.factory import check_credentials

    check_credentials(loaded, hosts_touched(loaded, actions, steps) | set(also))


def _plan_steps(phases: Sequence[PlanPhase]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(s.action, s.args) for p in phases if not p.skipped for s in p.all_steps]


def _context(
    loaded: LoadedPool,
    *,
    dry_run: bool,
    operator: Operator | None = None,
    options: RunOptions | None = None,
    hosts: Any = None,
) -> tuple[Context, Any]:
    from ..transports.factory import HostPool

    hosts = HostPool(loaded) if hosts is None else hosts
    ctx = Context(
        pool=loaded.pool,
        profile=loaded.profile,
        host=hosts,
        dry_run=dry_run,
        pool_path=loaded.path,
        options=options or RunOptions(),
        operator=operator or NoOperator(),
    )
    return ctx, hosts


#: the action that waits for a person (actions/operator_hold.py); `run --no-hold` skips it
HOLD_ACTION = "operator.hold"


def run_options(given: Mapping[str, Any] | None) -> RunOptions:
    """The one place `run`'s options (cli/run_cmds.py's keys) become what the
    actions read (Context.options); a key RunOptions does not know is a bug."""
    known = {f.name for f in dataclasses.fields(RunOptions)}
    unknown = sorted(set(given or {}) - known)
    if unknown:
        raise ValueError(f"unknown run options: {', '.join(unknown)}")
    return RunOptions(**(given or {}))


def refuse_unattended_holds(
    phases: Sequence[PlanPhase], operator: Operator | None, options: RunOptions
) -> None:
    """A run whose phases hold for the operator's sign-off, with nobody to ask and
    no --no-hold, is refused before anything changes (not halfway, with pins set)."""
    if options.no_hold or not isinstance(operator or NoOperator(), NoOperator):
        return
    holds = [s for p in phases if not p.skipped for s in p.all_steps if s.action == HOLD_ACTION]
    if holds:
        raise OperatorUnavailable(
            f"phase {holds[0].phase} holds for the operator's sign-off of the client tests "
            f"({holds[0].id}) and there is nobody to ask (standard input is not a terminal): "
            "run it from a terminal, or with --answer-timeout SECONDS to sign off with "
            "`ocsscale answer pass|fail`, or pass --no-hold to run it unattended "
            "(nothing was changed)"
        )


@contextmanager
def _recorded(journal: Journal, run_id: str, hosts: Any) -> Iterator[None]:
    """Journal how the run ended (done; failed, with its message; or interrupted,
    by anything unexpected), then close its hosts and the journal."""
    status, error = "interrupted", None
    try:
        yield
        status = "done"
    except OcsscaleError as exc:
        status, error = "failed", exc.message
        raise
    finally:
        journal.finish_run(run_id, status, error)
        hosts.close_all()
        journal.close()


def _recorder(loaded: LoadedPool) -> Any:
    from ..transports.recorded import record_hosts

    return lambda names: record_hosts(loaded, names)


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(2)


@dataclass(frozen=True)
class RunGate:
    """A run that passed its gate, with what the CLI shows and asks about: the
    plan and the phases chosen. Every check was made once, before anything is
    asked or changed: every credential resolves; for a real run also every
    step's action is built, no other run holds the lock and no other copy of the
    pool file the run lease (read on its host)."""

    prepared: Prepared
    phases: list[PlanPhase]
    dry_run: bool
    #: `run --playbook FILE`, resolved: journaled, so that `status` names it again
    playbook_given: Path | None = None

    @property
    def steps(self) -> int:
        return sum(len(p.all_steps) for p in self.phases if not p.skipped)


def _refuse_held(loaded: LoadedPool) -> None:
    """Another run of this copy (the lock), or of another copy (the run lease),
    refuses this one before the operator is asked; both are taken for real later."""
    holder = read_lock(loaded.state_dir)
    if holder is not None:
        raise held_error(holder)
    check_free(loaded)


def prepare_run(
    config: Path,
    playbook: Path | None = None,
    *,
    only: str | None = None,
    through: str | None = None,
    dry_run: bool = False,
    operator: Operator | None = None,
    options: Mapping[str, Any] | None = None,
) -> RunGate:
    """Load, plan and check a run of the phases chosen (`only` one, or all up to
    `through`). A dry run changes nothing, so unbuilt steps are shown, not refused.
    `operator` and `options` (`no_hold`) decide whether holds can be answered."""
    prepared = prepare(config, playbook)
    phases = prepared.plan.select(only=only, through=through)
    gate = gate_run(prepared, phases, dry_run=dry_run, operator=operator, options=options)
    if playbook is not None:
        gate = dataclasses.replace(gate, playbook_given=Path(playbook).resolve())
    return gate


def gate_run(
    prepared: Prepared,
    phases: Sequence[PlanPhase],
    *,
    dry_run: bool = False,
    operator: Operator | None = None,
    options: Mapping[str, Any] | None = None,
) -> RunGate:
    if not dry_run:
        # a dry run never opens the journal: it shows what the hosts need now
        check_rows(prepared.loaded.state_dir)
        refuse_not_built(phases)
        refuse_unattended_holds(phases, operator, run_options(options))
    # a missing credential variable is found now, not halfway through; the run
    # lease's host (lease.py) is logged in to first of all, so it is checked too
    place = None if dry_run else lease_place(prepared.loaded.pool)
    lease_host = [] if place is None or place.host == "admin" else [place.host]
    check_credentials_for(prepared.loaded, prepared.actions, _plan_steps(phases), lease_host)
    if not dry_run:
        _refuse_held(prepared.loaded)
    return RunGate(prepared, list(phases), dry_run)


def dry_run(gate: RunGate, sink: EventSink) -> list[Any]:
    prepared = gate.prepared
    ctx, hosts = _context(prepared.loaded, dry_run=True)
    try:
        # the journal is never opened: a dry run leaves no trace
        walker = Walker(None, ctx, sink, "dry-run", prepared.actions)
        return walker.dry_run(gate.phases)
    finally:
        hosts.close_all()


def execute_run(
    gate: RunGate,
    sink: EventSink,
    *,
    command: str,
    operator: Operator | None = None,
    options: Mapping[str, Any] | None = None,
    confirmation: Mapping[str, Any] | None = None,
) -> str:
    """Run the gate's phases, resuming a killed run; returns the run id. Raises
    LockHeld when another run took the lock since the gate, and StepFailed
    when a step fails. `options` reach the actions as Context.options (`no_hold`,
    `hold_timeout`, ...: run_options). `confirmation` (answers.confirmed: who
    said go, typed or with --yes) is journaled with the run's answers."""
    if gate.dry_run:
        raise ValueError("a dry-run gate does not open a real run")
    prepared, phases = gate.prepared, gate.phases
    chosen = run_options(options)
    refuse_unattended_holds(phases, operator, chosen)
    state_dir = prepared.loaded.state_dir
    # the lease keeps other copies of the pool file out (lease.py), before any change
    with RunLock(state_dir, command) as lock, RunLease(prepared.loaded, lock):
        check_journal(state_dir, holding_lock=True)  # anew: it may have gone since the gate
        answers.clear(state_dir)  # a killed run's question waits for nothing
        journal = Journal.open(state_dir)
        run_id = new_run_id()
        journal.start_run(
            run_id,
            "run",
            current_user(),
            socket.gethostname(),
            os.getpid(),
            {
                "pool": prepared.plan.pool,
                "pool_file": str(prepared.loaded.path),
                "playbook": prepared.plan.playbook,
                "phases": [
                    {"id": p.id, "title": p.title, "skipped": p.skipped}
                    for p in prepared.plan.phases
                ],
                "selected": [p.id for p in phases],
                "operator": None if confirmation is None else confirmation["by"],
                "playbook_given": None if gate.playbook_given is None else str(gate.playbook_given),
            },
        )
        if confirmation is not None:
            journal.record_answer(run_id, confirmation)
        ctx, hosts = _context(prepared.loaded, dry_run=False, operator=operator, options=chosen)
        # the run's history, read by guards (dns.replace waits out lower-ttl), and
        # the cutover watch's own reverts, journaled here
        ctx = dataclasses.replace(
            ctx, history=JournalHistory(journal), report_revert=journal_reverts(journal)
        )
        sink = _journal_answers(operator, journal, run_id, sink)
        with signals.handled(), _recorded(journal, run_id, hosts), _answering(operator):
            # what the tool broke on purpose and an interruption left broken comes
            # first: the interrupted step then runs again on a whole pool
            restore_in_place(journal, lambda entry: ctx, prepared.actions, sink, run_id)
            with _client_load(
                prepared.loaded, ctx, chosen.client_load, journal, run_id, sink
            ) as labelled:
                Walker(
                    journal,
                    ctx,
                    labelled,
                    run_id,
                    prepared.actions,
                    record_hosts=_recorder(prepared.loaded),
                    forks=chosen.forks or prepared.loaded.pool.run.forks,
                ).run(phases)
    return run_id


def _journal_answers(
    operator: Operator | None, journal: Journal, run_id: str, sink: EventSink
) -> EventSink:
    """Every answer the operator takes is journaled with this run; the sink is
    followed so that a question names its step."""
    if not isinstance(operator, ChannelOperator):
        return sink
    operator.on_answer = lambda answer: journal.record_answer(run_id, answer)
    return operator.follow(sink)


@contextmanager
def _answering(operator: Operator | None) -> Iterator[None]:
    """The journal closes with the run: no answer is journaled after it."""
    try:
        yield
    finally:
        if isinstance(operator, ChannelOperator):
            operator.on_answer = None


@contextmanager
def _client_load(
    loaded: LoadedPool, ctx: Context, rate: float | None, journal: Journal, run_id: str, sink: Any
) -> Iterator[EventSink]:
    """`run --client-load RATE`: a load through the pool name for the whole run,
    labelled by step, journaled with the run and shown at its end."""
    if not rate:
        yield sink
        return
    from .client_load import ClientLoad

    load = ClientLoad(loaded, ctx, float(rate))
    load.start()
    try:
        yield load.sink(sink)
    finally:
        report = load.stop()
        journal.record_load(run_id, report)
        sink(
            Event(
                "client_load",
                data={
                    "by_phase": report["by_phase"],
                    "not_loaded": report["not_loaded"],
                    "totals": report["totals"],
                    "rate": float(rate),
                },
            )
        )


def phase_index(phase: str | None) -> int:
    if phase is None:
        return 0
    if phase not in PHASE_IDS:
        raise UsageError(f"no phase {phase} (phases: {', '.join(PHASE_IDS)})")
    return PHASE_IDS.index(phase)


def pending_rollback(state_dir: Path, to_phase: str | None = None) -> list[Entry]:
    """What `rollback [--to PHASE]` would undo, newest first (reads only; a
    journal that cannot be trusted is JournalError, see runner/evidence.py)."""
    from_index = phase_index(to_phase)  # refuses an unknown phase first
    with reading(state_dir) as journal:
        return [] if journal is None else journal.undoable(from_index)


def faults_in_place(state_dir: Path) -> list[Fault]:
    """The faults the tool put in place and has not put right (reads only; a
    journal that cannot be read names none here: `status`, `run` and `rollback`
    refuse it with its reason)."""
    if not (state_dir / JOURNAL_NAME).is_file():
        return []
    try:
        journal = Journal(state_dir / JOURNAL_NAME, read_only=True)
    except sqlite3.Error:
        return []
    try:
        return journal.faults_in_place()
    except (sqlite3.Error, ValueError, TypeError):
        return []
    finally:
        journal.close()


@dataclass(frozen=True)
class RollbackGate:
    """A rollback that passed its gate, with what the CLI shows and asks about:
    the changes it would undo, newest first, and which of those need no revert
    (seq -> why). Every credential their hosts log in with resolves, as the
    journal recorded it, no other run holds the lock and no other copy the lease."""

    loaded: LoadedPool
    actions: Mapping[str, type[Action]]
    to_phase: str | None
    pending: list[Entry]
    needless: dict[int, str]
    #: faults the tool left in place: put right before the first revert
    faults: list[Fault] = dataclasses.field(default_factory=list)

    @property
    def reverts(self) -> int:
        return sum(1 for e in self.pending if e.seq not in self.needless)

    @property
    def repaired(self) -> set[int]:
        """The changes the fault repair puts back first (a drill's): proven, not replayed."""
        return {
            f.seq
            for f in self.faults
            if f.action in self.actions and self.actions[f.action].fault_restore_reverts
        }


def prepare_rollback(config: Path, *, to_phase: str | None = None) -> RollbackGate:
    actions: dict[str, type[Action]] = dict(load_actions())
    loaded = load_pool(config)
    pending = pending_rollback(loaded.state_dir, to_phase)  # refuses an unknown phase
    faults = faults_in_place(loaded.state_dir)
    if not pending:
        if faults:  # put right under the lock and the lease
            _refuse_held(loaded)
        return RollbackGate(loaded, actions, to_phase, [], {}, faults)
    rollback_mod.refuse_missing(pending, actions)
    from ..transports.recorded import RecordedHosts

    hosts = RecordedHosts(loaded)
    ctx, _ = _context(loaded, dry_run=False, hosts=hosts.fallback)
    try:
        rollback_mod.check_undo_records(pending, ctx, actions)  # contacts nothing
        needed = rollback_mod.hosts_needed(pending, ctx, actions)
        hosts.check_reach(needed, log_in=False)  # contacts nothing
        needless = rollback_mod.needless_reverts(pending, ctx, actions)
    finally:
        hosts.close_all()
    _refuse_held(loaded)
    return RollbackGate(loaded, actions, to_phase, pending, needless, faults)


def execute_rollback(
    gate: RollbackGate,
    sink: EventSink,
    *,
    command: str,
    operator: Operator | None = None,
    forks: int | None = None,
    confirmation: Mapping[str, Any] | None = None,
) -> tuple[str, list[Entry]]:
    """Roll back what the gate found (read anew under the lock); returns the
    rollback id and the entries it went through. `confirmation`: as execute_run's."""
    from ..transports.recorded import RecordedHosts

    loaded, to_phase = gate.loaded, gate.to_phase
    state_dir = loaded.state_dir
    # every host the reverts touch is logged in to (credentials resolved, as the
    # journal recorded them) under the lock, before the first revert
    with RunLock(state_dir, command) as lock, RunLease(loaded, lock):
        check_journal(state_dir, holding_lock=True)
        answers.clear(state_dir)
        journal = Journal.open(state_dir)
        rollback_id = "rollback-" + new_run_id()
        journal.start_run(
            rollback_id,
            "rollback",
            current_user(),
            socket.gethostname(),
            os.getpid(),
            {
                "pool_file": str(loaded.path),
                "to": to_phase,
                "operator": None if confirmation is None else confirmation["by"],
            },
        )
        if confirmation is not None:
            journal.record_answer(rollback_id, confirmation)
        hosts = RecordedHosts(loaded)
        ctx, _ = _context(loaded, dry_run=False, operator=operator, hosts=hosts.fallback)
        sink = _journal_answers(operator, journal, rollback_id, sink)
        with signals.handled(), _recorded(journal, rollback_id, hosts), _answering(operator):
            done = rollback_mod.rollback(
                journal,
                ctx,
                sink,
                rollback_id,
                gate.actions,
                phase_index(to_phase),
                hosts=hosts,
                forks=forks or loaded.pool.run.forks,
            )
    return rollback_id, done
