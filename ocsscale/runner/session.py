"""What each command does, end to end, without any rendering: load the pool
file and playbook, build the plan, take the lock, open the journal, walk or
roll back, and report status. The CLI calls these and renders their events."""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..actions.base import Action, Context
from ..config.loader import STATE_DIR_NAME, LoadedPool, load_pool
from ..errors import OcsscaleError, UsageError
from ..operator import NoOperator, Operator
from ..plan.build import Plan, PlanPhase, build_plan
from ..plan.playbook import PHASE_IDS, find_playbook, load_playbook
from . import rollback as rollback_mod
from .events import EventSink
from .journal import JOURNAL_NAME, KILLED, Entry, Journal
from .lock import RunLock, current_user, read_lock
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
    the loaded profile, and `vip_address` (the VIP without its prefix)."""
    data: dict[str, Any] = loaded.pool.model_dump(mode="json")
    data["profile"] = loaded.profile.model_dump(mode="json")
    data["vip_address"] = str(loaded.pool.load_balancer.vip.ip)
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
) -> None:
    """Every credential those steps' hosts log in with resolves (SecretError,
    exit 2, otherwise): checked before the first step, never halfway through."""
    from ..transports.factory import check_credentials

    check_credentials(loaded, hosts_touched(loaded, actions, steps))


def _plan_steps(phases: Sequence[PlanPhase]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(s.action, s.args) for p in phases if not p.skipped for s in p.all_steps]


def _context(
    loaded: LoadedPool, *, dry_run: bool, operator: Operator | None = None
) -> tuple[Context, Any]:
    from ..transports.factory import HostPool

    hosts = HostPool(loaded)
    ctx = Context(
        pool=loaded.pool,
        profile=loaded.profile,
        host=hosts,
        dry_run=dry_run,
        extra={"pool_path": str(loaded.path)},
        operator=operator or NoOperator(),
    )
    return ctx, hosts


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


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(2)


def dry_run(prepared: Prepared, phases: Sequence[PlanPhase], sink: EventSink) -> list[Any]:
    check_credentials_for(prepared.loaded, prepared.actions, _plan_steps(phases))
    ctx, hosts = _context(prepared.loaded, dry_run=True)
    try:
        # the journal is never opened: a dry run leaves no trace
        walker = Walker(None, ctx, sink, "dry-run", prepared.actions)
        return walker.dry_run(phases)
    finally:
        hosts.close_all()


def execute_run(
    prepared: Prepared,
    phases: Sequence[PlanPhase],
    sink: EventSink,
    *,
    command: str,
    operator: Operator | None = None,
) -> str:
    """Run `phases`, resuming a killed run; returns the run id. Raises LockHeld
    when another run holds the lock and StepFailed when a step fails."""
    refuse_not_built(phases)
    check_credentials_for(prepared.loaded, prepared.actions, _plan_steps(phases))
    state_dir = prepared.loaded.state_dir
    with RunLock(state_dir, command):
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
            },
        )
        ctx, hosts = _context(prepared.loaded, dry_run=False, operator=operator)
        ctx.extra["journal"] = journal  # read by guards (dns.replace waits out lower-ttl)
        with _recorded(journal, run_id, hosts):
            Walker(journal, ctx, sink, run_id, prepared.actions).run(phases)
    return run_id


def phase_index(phase: str | None) -> int:
    if phase is None:
        return 0
    if phase not in PHASE_IDS:
        raise UsageError(f"no phase {phase} (phases: {', '.join(PHASE_IDS)})")
    return PHASE_IDS.index(phase)


def pending_rollback(state_dir: Path, to_phase: str | None = None) -> list[Entry]:
    """What `rollback [--to PHASE]` would undo, newest first (reads only)."""
    if not (state_dir / JOURNAL_NAME).exists():
        return []
    journal = Journal.open(state_dir)
    try:
        return journal.undoable(phase_index(to_phase))
    finally:
        journal.close()


def execute_rollback(
    loaded: LoadedPool,
    sink: EventSink,
    *,
    to_phase: str | None,
    command: str,
    operator: Operator | None = None,
) -> tuple[str, list[Entry]]:
    actions: dict[str, type[Action]] = dict(load_actions())
    from_index = phase_index(to_phase)
    state_dir = loaded.state_dir
    pending = pending_rollback(state_dir, to_phase)
    check_credentials_for(loaded, actions, [(e.action, e.args) for e in pending])
    with RunLock(state_dir, command):
        journal = Journal.open(state_dir)
        rollback_id = "rollback-" + new_run_id()
        journal.start_run(
            rollback_id,
            "rollback",
            current_user(),
            socket.gethostname(),
            os.getpid(),
            {"pool_file": str(loaded.path), "to": to_phase},
        )
        ctx, hosts = _context(loaded, dry_run=False, operator=operator)
        with _recorded(journal, rollback_id, hosts):
            done = rollback_mod.rollback(journal, ctx, sink, rollback_id, actions, from_index)
    return rollback_id, done


def _entry_json(entry: Entry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "phase": entry.phase,
        "step": entry.step_id,
        "action": entry.action,
        "status": entry.status,
        "summary": "; ".join(c.get("summary", "") for c in entry.changes or []),
        "started": entry.started,
        "error": entry.error,
    }


def status_report(state_dir: Path) -> dict[str, Any]:
    """Phases done, the step in progress and what rollback would undo."""
    lock = read_lock(state_dir)
    report: dict[str, Any] = {
        "journal": str(state_dir / JOURNAL_NAME),
        "lock": None
        if lock is None
        else {
            "lock_id": lock.lock_id,
            "user": lock.user,
            "host": lock.host,
            "pid": lock.pid,
            "started": lock.started,
            "command": lock.command,
            "stale": lock.stale,
        },
        "last_run": None,
        "phases": [],
        "in_progress": [],
        "rollback_would_undo": [],
    }
    if not (state_dir / JOURNAL_NAME).exists():
        return report
    journal = Journal.open(state_dir)
    try:
        runs = journal.runs()
        plan_runs = [r for r in runs if r["kind"] == "run"]
        if runs:
            last = runs[-1]
            report["last_run"] = {
                k: last[k] for k in ("run_id", "kind", "status", "started", "finished", "error")
            }
            if last["status"] == "running" and (lock is None or lock.stale):
                # nobody holds the lock for it: the run was killed
                report["last_run"]["status"] = "interrupted"
                report["last_run"]["error"] = KILLED
        latest: dict[str, str] = {}
        for cycle in journal.cycles():
            latest[cycle.phase] = cycle.status
        listed = plan_runs[-1]["detail"]["phases"] if plan_runs else []
        for phase in listed:
            state = "skipped" if phase.get("skipped") else latest.get(phase["id"], "not started")
            report["phases"].append(
                {
                    "id": phase["id"],
                    "title": phase["title"],
                    "status": state,
                    "skipped": phase.get("skipped"),
                }
            )
        report["in_progress"] = [_entry_json(e) for e in journal.in_progress()]
        report["rollback_would_undo"] = [_entry_json(e) for e in journal.undoable()]
    finally:
        journal.close()
    return report
