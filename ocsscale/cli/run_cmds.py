"""`plan`, `run`, `status`, `rollback` and `unlock`: parse, call the runner, render."""

from __future__ import annotations

import inspect
import json
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import changepack
from ..errors import Declined, Interrupted, UsageError
from ..plan.playbook import PHASE_IDS
from ..runner import answers, session
from ..runner.lease import no_place_warning, unlock
from ..runner.lock import current_user
from ..runner.rehearsal import read_rehearsal
from ..runner.signals import Terminated, exit_code
from ..runner.status import status_report
from .answer_cmd import answer_with
from .operator import operator_for
from .progress import plan_tree
from .progress_table import progress_for
from .render import handle_errors
from .state import app_state


def _console() -> Console:
    # made per command, so the terminal's width is read when the command runs
    return Console(highlight=False)


PHASES = ", ".join(PHASE_IDS)

_VERBOSE = typer.Option(
    False,
    "--verbose",
    "-v",
    help="A line per step and per port as it happens, instead of a live table per phase.",
)

_PLAYBOOK = typer.Option(
    None,
    "--playbook",
    help="A playbook file of your own (default: the profile's shipped playbook).",
    dir_okay=False,
)


def _confirm(question: str, yes: bool, by: str) -> dict[str, Any]:
    """Go ahead, or Declined; the "yes" as the journal keeps it (who, how, when)."""
    asked_at = answers.now_utc()
    if yes:
        return answers.confirmed(question, by=by, via=answers.FLAG, asked_at=asked_at)
    if not sys.stdin.isatty():
        raise UsageError(
            "standard input is not a terminal, so there is no one to ask: "
            "pass --yes to go ahead without asking"
        )
    try:
        agreed = typer.confirm(question, default=False)
    except typer.Abort:  # Ctrl-C or end of input at the question
        agreed = False
    if not agreed:
        raise Declined("declined: nothing was changed")
    return answers.confirmed(question, by=by, via="terminal", asked_at=asked_at)


def _operator_name(given: str | None) -> str:
    """Who answers at this terminal: `--operator NAME`, else the OS user."""
    return current_user() if given is None else answers.check_name(given)


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


_ANSWER_TIMEOUT = typer.Option(
    None,
    "--answer-timeout",
    min=1,
    max=7 * 86400,
    metavar="SECONDS",
    help="A question (the manual drivers' \"done\", the client tests' sign-off) waits "
    "this long for `ocsscale answer` from another terminal, also without a terminal; "
    "then the step fails. Without it and without a terminal, such a step is refused "
    "at once.",
)

_OPERATOR = typer.Option(
    None,
    "--operator",
    metavar="NAME",
    help='Who answers at this terminal (the go-ahead, a manual step\'s "done", the '
    "offered signer of the client tests), as the journal and the report name them "
    "(default: your OS user name; `ocsscale answer --by` names others).",
)

_FORKS = typer.Option(
    None,
    "--forks",
    min=1,
    max=64,
    metavar="N",
    help="Steps of one playbook entry on different hosts (pins, flushes, probes) run side "
    "by side, at most N at once; steps on one host, and one front end after another, keep "
    "their order. Default: run.forks in the pool file (16); 1 runs every step in turn.",
)


def plan_cmd(
    ctx: typer.Context,
    phase: str | None = typer.Option(None, "--phase", help=f"Only this phase ({PHASES})."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document instead of a tree."),
    playbook: Path | None = _PLAYBOOK,
    fmt: str = typer.Option(
        "text",
        "--format",
        "-f",
        help="text (the tree), or the change pack for the approval: html (one "
        "self-contained page), md or json.",
    ),
    output: Path | None = typer.Option(
        None,
        "-o",
        "--output",
        help="Where to write the change pack (default, or '-': standard output).",
        dir_okay=False,
    ),
    rehearsal: Path | None = typer.Option(
        None,
        "--rehearsal",
        metavar="JOURNAL",
        help="The journal of an earlier run (a rehearsal, e.g. the lab's: its file, or "
        "the directory holding it): its measured times beside the estimates.",
    ),
) -> None:
    """Every phase, step, target host and change (add, change, remove, check).

    Changes nothing and contacts nothing: the plan is built from the pool file
    and the playbook alone, and needs no credential. Skipped phases show why;
    steps whose action is not built yet are flagged (run refuses them).

      ocsscale plan

      ocsscale plan --phase validate-fe

      ocsscale -c examples/two-armed-routed.yaml plan --json

    With --format html, md or json it writes the change pack for a change-advisory
    board instead: the pool and its picture, every phase with its hosts, changes,
    manual steps, expected duration (and a rehearsal's measured one), what runs
    outside the window, the rollback plan, the risks and an empty sign-off block.

      ocsscale plan --format html -o change.html --rehearsal lab/.ocsscale

    Exit codes: 0 the plan was shown or written; 2 the pool file or playbook is
    invalid (every problem is listed as FILE:LINE:COL), no such phase or format,
    a rehearsal journal that is not one, or the output cannot be written.
    """
    console = _console()
    if fmt != "text" and fmt not in changepack.FORMATS:
        known = ", ".join(("text", *changepack.FORMATS))
        raise UsageError(f"no plan format {fmt} (formats: {known})")
    if fmt == "text" and (output is not None or rehearsal is not None):
        raise UsageError("-o and --rehearsal go with --format html, md or json")
    if fmt != "text" and as_json:
        raise UsageError("give --json or --format, not both")
    prepared = session.prepare(app_state(ctx).config, playbook)
    phases = prepared.plan.select(only=phase)
    if fmt != "text":
        _change_pack(prepared, phases, fmt, output, rehearsal)
        return
    _say_faults(console, session.faults_in_place(prepared.loaded.state_dir), err=as_json)
    if as_json:
        _echo_json(prepared.plan.to_json(phases))
        return
    console.print(plan_tree(prepared.plan, phases))
    warning = no_place_warning(prepared.loaded.pool)
    if warning:
        console.print(Text(warning))
    missing = sum(1 for p in phases if not p.skipped for s in p.all_steps if not s.built)
    if missing:
        console.print(
            Text(f"{missing} step(s) use actions that are not built yet: run refuses them.")
        )


def _change_pack(
    prepared: session.Prepared,
    phases: list[Any],
    fmt: str,
    output: Path | None,
    rehearsal: Path | None,
) -> None:
    loaded = prepared.loaded
    inputs = changepack.Inputs(
        plan=prepared.plan,
        phases=phases,
        loaded=loaded,
        actions=prepared.actions,
        pool_file=str(loaded.path),
        rehearsal=None if rehearsal is None else read_rehearsal(rehearsal),
    )
    text = changepack.render(changepack.build(inputs), fmt)
    if output is None or str(output) == "-":
        typer.echo(text, nl=False)
        return
    changepack.write(output, text, loaded.state_dir)
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        Text(f"change pack of {prepared.plan.pool} written to {output}")
    )


def _say_faults(console: Console, faults: list[Any], *, err: bool = False) -> None:
    """What the tool left broken comes first, whatever the command."""
    out = Console(stderr=True, highlight=False) if err else console
    for fault in faults:
        out.print(
            Text(
                f"! left broken by the tool when a run was cut short: {fault.describe()}; "
                "`ocsscale run` or `ocsscale rollback` puts it right first",
                style="bold red",
            )
        )


def run_cmd(
    ctx: typer.Context,
    phase: str | None = typer.Option(None, "--phase", help=f"Run only this phase ({PHASES})."),
    through: str | None = typer.Option(
        None, "--through", help="Run every phase from the first up to and including this one."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Read and compare only: print what would change, change nothing."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before changing anything."),
    no_hold: bool = typer.Option(
        False,
        "--no-hold",
        help="Do not hold for the operator's sign-off of the client tests (unattended runs: "
        "the lab, CI); the hold steps record 'skipped: --no-hold'.",
    ),
    hold_timeout: float | None = typer.Option(
        None,
        "--hold-timeout",
        min=1,
        metavar="SECONDS",
        help="Give up a hold with no sign-off after this long: the step fails and the "
        "phase's cleanup removes the pins (default: wait).",
    ),
    watch: int | None = typer.Option(
        None,
        "--watch",
        min=1,
        max=86400,
        metavar="SECONDS",
        help="The cutover's watch window, instead of dns.watch_window in the pool file.",
    ),
    wait: bool = typer.Option(
        False,
        "--wait",
        help="When the cutover may not start yet (the old TTL has not run out everywhere "
        "since lower-ttl), wait for it with a countdown instead of stopping.",
    ),
    client_load: float | None = typer.Option(
        None,
        "--client-load",
        min=0.1,
        max=20,
        metavar="RATE",
        help="Measure what users would notice: for the whole run, RATE new requests/s to "
        "the pool name from the admin machine and from every test client (a Windows one "
        "runs them itself, in bursts over WinRM), each resolving it anew; failures are "
        "counted per phase and step, journaled, shown at the end and in `ocsscale report`.",
    ),
    answer_timeout: float | None = _ANSWER_TIMEOUT,
    forks: int | None = _FORKS,
    verbose: bool = _VERBOSE,
    playbook: Path | None = _PLAYBOOK,
    operator_name: str | None = _OPERATOR,
) -> None:
    """Run the playbook's phases (all, one with --phase, or up to one with --through).

    What it changes is what `ocsscale plan` lists for those phases, e.g. the
    pool name pinned in the hosts files of front ends and test clients (written
    in place after a backup, FILE.ocsscale.bak), DNS caches flushed, services
    restarted. It shows the plan and asks before changing anything unless
    --yes. The pool file is validated and every credential the steps need is
    resolved first: a problem there stops the run before any host is touched.

    validate-fe (per front end) and validate-lb hold, with the pins in place,
    for the walkthrough's client tests: the checklist is shown and the run
    waits for the operator's sign-off (who, passed|failed, notes), which is
    journaled; "failed" stops the phase like a failed probe. Holds need a
    terminal, or --answer-timeout: unattended runs pass --no-hold.

    Every question (a hold, the manual drivers' "done") can also be answered
    from another terminal: `ocsscale answer` shows it and answers it; the
    first answer wins, and who answered, how and when is journaled.

    Every step is journaled in .ocsscale/ next to the pool file, with what was
    there before it changed. A run that is killed resumes with `ocsscale run`
    and does not redo finished steps; `ocsscale rollback` undoes them.

    On a terminal each phase is a live table (a row per front end or host, a
    column per step, a mark per port for the probes) that ends as a few lines;
    a failure is printed in full at once. Without a terminal, only those
    lines. -v prints every step and every port's finding as it happens (the
    journal and `ocsscale report` keep them either way).

      ocsscale run --phase preflight          read-only checks first

      ocsscale run --through validate-fe      everything up to validate-fe

      ocsscale run --dry-run                  read and compare only

      ocsscale run --phase validate-fe --yes --no-hold    unattended (lab, CI)

    Exit codes: 0 done; 1 a step or check failed (state kept, rollback
    possible); 2 invalid input or usage (pool file, playbook, a missing
    usage, an undo record of the wrong shape, or a journal that is not one or
    is missing or empty beside what a run leaves (nothing reverted); 3 another
    run holds the lock, or another copy of the pool file the run lease; 4 the
    operator declined.
    """
    console = _console()
    who = _operator_name(operator_name)
    # a dry run's output is its list of changes: always the detailed one
    progress = progress_for(console, verbose=verbose or dry_run)
    config = app_state(ctx).config
    operator = operator_for(
        console, progress, session.state_dir_for(config), answer_timeout, operator_name and who
    )
    options = {
        "no_hold": no_hold,
        "hold_timeout": hold_timeout,
        "client_load": client_load,
        "wait": wait,
        "watch": watch,
        "forks": forks,
    }
    gate = session.prepare_run(
        config,
        playbook,
        only=phase,
        through=through,
        dry_run=dry_run,
        operator=operator,
        options=options,
    )
    _say_faults(console, session.faults_in_place(gate.prepared.loaded.state_dir))
    if dry_run:  # changes nothing, so steps not built yet are shown, not refused
        try:
            found = session.dry_run(gate, progress)
        finally:
            progress.close()
        changing = sum(1 for _, changes in found if any(c.kind != "check" for c in changes))
        console.print(f"dry run: {changing} step(s) would change something; nothing was changed.")
        return
    if not yes:
        console.print(plan_tree(gate.prepared.plan, gate.phases))
    said = _confirm(
        f"Run {gate.steps} step(s) in {', '.join(p.id for p in gate.phases)}?", yes, who
    )
    try:
        run_id = session.execute_run(
            gate,
            progress,
            command=_command(),
            operator=operator,
            options=options,
            confirmation=said,
        )
    except (KeyboardInterrupt, Terminated) as exc:
        raise Interrupted(
            "interrupted: the journal keeps every step, as after a kill (nothing was "
            "cleaned up that the rest of the phase needs)",
            hint="`ocsscale status` shows where it stopped; `ocsscale run` resumes without "
            "redoing a finished step; `ocsscale rollback` undoes what was done",
            code=exit_code(exc),
        ) from None
    finally:
        progress.close()
    console.print(f"run {run_id} finished.")


def _command() -> str:
    """The command line as the lock and the journal record it."""
    return " ".join(["ocsscale", *sys.argv[1:]])[:200]


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def status_cmd(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="One JSON document instead of tables."),
) -> None:
    """Phases done, the step in progress, and what rollback would undo (newest first).

    Changes that cancel out (a pin and its later unpin) are counted apart, as
    rollback counts them: it reverts none of them and only removes their backups.

    Changes nothing and contacts nothing: it reads the journal and the lock in
    .ocsscale/ next to the pool file, which need not validate any more. It
    names the lock's holder (user, host, pid, since when, LOCK_ID) and says
    when that holder is gone. The run lease: where it lives, and who holds it
    when it is on this machine (run.lease.host admin) or this copy's run holds
    it; on another host it is not read (`run` reads it before it asks). The
    journal is opened read-only and never written. A journal that is missing
    or empty while .ocsscale/ holds what a run leaves (the failover procedure,
    a report of a run, a lock, the journal's -wal file), or a file that is not
    a journal, is refused: it never reads as "nothing has run".

    A run that waits for an answer is named with its question and the
    `ocsscale answer` command that answers it.

    First of all it names what the tool itself left broken when a run was cut
    short (a drill's stopped service or cut link, a member drained or in maint
    at the LB), and a cutover whose watch is not running (the pool name on the
    VIP with the short TTL, nothing to revert it), each with the command that
    repairs it.

    Last, where the migration stands in the walkthrough's terms and what to run
    next, each command as it runs (this pool file's -c, --playbook when the
    last run had one): the phase not started yet (`run --phase`), a phase that
    failed or was cut short (resume it, or `rollback --to` it), the cutover or
    the decommission waiting for an old TTL (from when, and `run --wait`), a
    run holding for an answer (`answer ... --id`), a dead run's lock
    (`unlock`). --json gives them as `stage` and `next` (first: the one to run).

      ocsscale status

      ocsscale status --json | jq -r '.next[0].command'

      ocsscale status --json | jq '.rollback_would_undo'

    Exit codes: 0 shown; 2 the journal or lock file is unreadable, or the
    journal is missing or empty beside what a run leaves (nothing is changed).
    """
    console = _console()
    config = app_state(ctx).config
    report = status_report(session.state_dir_for(config), config)
    waiting = report["waiting"]
    if waiting and "error" not in waiting:
        waiting["answer_with"] = answer_with(waiting, str(config))
    if as_json:
        _echo_json(report)
        return
    _say_waiting(console, waiting)
    _say_state(console, report)
    _say_next(console, report)


def _say_next(console: Console, report: dict[str, Any]) -> None:
    """Where the migration stands, and the commands that move it on (first: now)."""
    if report["stage"]:
        console.print(Text(f"where: {report['stage']}", style="bold"))
    for n, step in enumerate(report["next"]):
        lead = "next:" if n == 0 else "  or:"
        console.print(Text(f"{lead} {step['command']}"))
        console.print(Text(f"      {step['why']}", style="dim"))


def _say_state(console: Console, report: dict[str, Any]) -> None:
    lock = report["lock"]
    if lock:
        state = "stale (its process is gone)" if lock["stale"] else "held"
        console.print(
            Text(
                f"lock {lock['lock_id']} {state}: {lock['user']}@{lock['host']} pid {lock['pid']} "
                f"since {_when(lock['started'])} (`{lock['command']}`)"
            )
        )
    _say_lease(console, report["lease"])
    if report["last_run"] is None:
        console.print("Nothing has run yet for this pool file.")
        return
    last = report["last_run"]
    console.print(
        Text(
            f"last {last['kind']} {last['run_id']}: {last['status']}, "
            f"started {_when(last['started'])}"
        )
    )
    if last["error"]:
        console.print(Text(f"  {last['error']}"))
    # what the tool itself broke comes before everything else
    for fault in report["faults_in_place"]:
        console.print(
            Text(
                f"! left broken by the tool: {fault['summary']} (step {fault['step']} of "
                f"{fault['phase']}, #{fault['seq']})",
                style="bold red",
            )
        )
        console.print(Text(f"  repair: {fault['repair']}"))
    watch = report["watch"]
    if watch is not None:
        console.print(Text(f"! cutover: {watch['message']}", style="bold yellow"))
        if watch["repair"]:
            console.print(Text(f"  repair: {watch['repair']}"))
    # Text cells, never markup strings: step ids hold [labels] Rich would eat
    table = Table("phase", "title", "status", title="phases")
    for phase in report["phases"]:
        status = phase["status"] if not phase["skipped"] else f"skipped: {phase['skipped']}"
        table.add_row(Text(phase["id"]), Text(phase["title"]), Text(status))
    console.print(table)
    for entry in report["in_progress"]:
        console.print(
            Text(
                f"in progress (or cut short): {entry['step']} "
                f"[{entry['status']}] {entry['summary']}"
            )
        )
    undo = report["rollback_would_undo"]
    # as rollback says it: the changes that cancel out are not reverted
    cancelled = len(report["rollback_cancel_out"])
    extra = f" ({cancelled} more cancel out: only their backups are removed)" if cancelled else ""
    if not undo:
        console.print(Text(f"Rollback would undo nothing{extra}."))
        return
    table = Table("#", "step", "undoes", "status", title="rollback would undo (newest first)")
    for entry in undo:
        table.add_row(
            str(entry["seq"]), Text(entry["step"]), Text(entry["summary"]), Text(entry["status"])
        )
    console.print(table)
    if extra:
        console.print(Text(f"{len(undo)} change(s) to revert{extra}."))


def _say_lease(console: Console, lease: dict[str, Any] | None) -> None:
    """The run lease as far as this machine knows it (status contacts nothing)."""
    if lease is None:
        return
    where = f" {lease['path']} on {lease['host']}" if lease["path"] else ""
    holder = lease["holder"]
    if holder is None:
        said = lease["state"] + (f": {lease['note']}" if lease["note"] else "")
    else:
        said = (
            f"held by {holder['user']}@{holder['host']} pid {holder['pid']} since "
            f"{_when(holder['started'])} (`{holder['command']}`, lease {holder['lease_id']}, "
            f"copy {holder['copy']})"
        )
        if holder["stale"]:
            said += f"; stale (its process is gone): `ocsscale unlock {holder['lease_id']}`"
        if lease["note"]:
            said += f", {lease['note']}"
    console.print(Text(f"run lease{where}: {said}"))


def _say_waiting(console: Console, waiting: dict[str, Any] | None) -> None:
    if not waiting:
        return
    if "error" in waiting:
        console.print(Text(f"! {waiting['error']}", style="bold red"))
        return
    if waiting["stale"]:
        console.print(
            Text(
                f"! a question is left by a run that is gone (pid {waiting['run_pid']}): "
                f"{waiting['question']}; the next run or rollback clears it",
                style="bold yellow",
            )
        )
        return
    step = f" at {waiting['step']}" if waiting["step"] else ""
    told = f" (checklist: {waiting['checklist_title']})" if waiting["checklist_title"] else ""
    console.print(
        Text(
            f"? the run (pid {waiting['run_pid']}) waits{step} since {waiting['asked_at']}: "
            f"{waiting['question']} [{', '.join(waiting['choices'])}]{told}",
            style="bold yellow",
        )
    )
    console.print(Text(f"  answer: {waiting['answer_with']}  (`ocsscale answer` shows it all)"))


def rollback_cmd(
    ctx: typer.Context,
    to: str | None = typer.Option(
        None, "--to", help=f"Undo back to the start of this phase only ({PHASES})."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before reverting."),
    answer_timeout: float | None = _ANSWER_TIMEOUT,
    forks: int | None = _FORKS,
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        help="A line as each revert starts and ends, instead of a live count per phase.",
    ),
    operator_name: str | None = _OPERATOR,
) -> None:
    """Replay the journal's undo records newest first, verifying each.

    Puts back exactly what was there before each change (hosts files byte for
    byte; a file someone edited since keeps their edit and loses only the
    tool's line). `ocsscale status` lists what it would undo; rollback lists it
    too and asks before reverting, unless --yes (then only -v lists it). A
    rollback that is interrupted resumes where it stopped when run again. The
    reverts of one step's changes on different hosts (the pins of a phase, say)
    run side by side, at most --forks at once. Every undo record is checked
    before the first revert: one of the wrong shape (a journal edited or
    damaged) stops the rollback before it changes anything, naming its step.

      ocsscale rollback

      ocsscale rollback --to cutover --yes    undo cutover and later phases only

    Exit codes: 0 reverted (or nothing to revert); 1 a revert or its check
    failed (the journal keeps the rest: run it again); 2 invalid input or
    usage, an undo record of the wrong shape, or a journal that is not one or
    is missing or empty beside what a run leaves (nothing reverted); 3 another
    run holds the lock, or another copy of the pool file the run lease; 4 the
    operator declined.
    """
    console = _console()
    who = _operator_name(operator_name)
    gate = session.prepare_rollback(app_state(ctx).config, to_phase=to)
    for fault in gate.faults:
        console.print(Text(f"  ! left in place by the tool, put right first: {fault.describe()}"))
    if not gate.pending and not gate.faults:
        console.print("Nothing to roll back.")
        return
    cancelled = len(gate.pending) - gate.reverts
    extra = f" ({cancelled} more cancel out: only their backups are removed)" if cancelled else ""
    if yes and not verbose:
        # nobody is asked, so no list to read first: `status` and -v give it
        console.print(
            Text(f"  ↶ {gate.reverts} change(s) to revert{extra}; `ocsscale status` lists them")
        )
    for entry in gate.pending if verbose or not yes else []:
        summary = "; ".join(c.get("summary", "") for c in entry.changes or []) or entry.action
        why = gate.needless.get(entry.seq)
        if entry.seq in gate.repaired:
            said = f"{summary}  (put back by the fault repair first: only verified)"
            console.print(Text(f"  ↶ {entry.step_id}  {said}"))
        elif why is None:
            console.print(Text(f"  ↶ {entry.step_id}  {summary}"))
        else:
            console.print(Text(f"  · {entry.step_id}  {summary}  (nothing to revert: {why})"))
    said = _confirm(f"Revert these {gate.reverts} change(s){extra}?", yes, who)
    progress = progress_for(console, verbose=verbose)
    try:
        rollback_id, done = session.execute_rollback(
            gate,
            progress,
            command=_command(),
            operator=operator_for(
                console,
                progress,
                session.state_dir_for(app_state(ctx).config),
                answer_timeout,
                operator_name and who,
            ),
            forks=forks,
            confirmation=said,
        )
    except (KeyboardInterrupt, Terminated) as exc:
        raise Interrupted(
            "rollback interrupted",
            hint="run `ocsscale rollback` again: it resumes",
            code=exit_code(exc),
        ) from None
    finally:
        progress.close()
    console.print(f"{rollback_id}: {len(done)} change(s) reverted and verified.")


def unlock_cmd(
    ctx: typer.Context,
    lock_id: str = typer.Argument(..., metavar="LOCK_ID", help="The id `status` shows."),
) -> None:
    """Clear a stale lock, or run lease, left by a run that is no longer running
    (only that LOCK_ID).

    The lock is .ocsscale/lock next to the pool file. The run lease with the
    same id, which keeps other copies of the pool file out, is cleared too,
    where the pool file keeps it (on the LB host, or run.lease), and nothing
    else is changed: a run refused by another copy's stale lease names its id.
    `ocsscale status` shows the lock's LOCK_ID and whether its holder is gone.
    A lock or lease whose process still runs on this host is never cleared.

      ocsscale status            lock 1f2e3d4c stale (its process is gone) ...

      ocsscale unlock 1f2e3d4c

    Exit codes: 0 cleared; 1 the lease's host cannot be reached; 2 no lock or
    lease of that LOCK_ID; 3 its run is still running.
    """
    console = _console()
    for line in unlock(app_state(ctx).config, lock_id):
        console.print(Text(line))


def register(app: typer.Typer) -> None:
    for name, func in (
        ("plan", plan_cmd),
        ("run", run_cmd),
        ("status", status_cmd),
        ("rollback", rollback_cmd),
        ("unlock", unlock_cmd),
    ):
        app.command(name, help=inspect.cleandoc(func.__doc__ or ""))(handle_errors(func))
