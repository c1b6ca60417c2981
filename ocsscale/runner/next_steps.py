"""What to run next, for `ocsscale status`: where the migration stands in the
walkthrough's terms (`stage`) and the commands that move it on (`next`, first
the one to run), as Vitess's workflows give their next_steps.

Judged from what `status` already read (status.py: the lock, the last run, the
phases, the question waiting) and the journal's steps (the old TTLs the cutover
and the decommission wait out), never from a host. Every command is one that
runs as shown: the pool file as the user named it (-c), `--playbook` when the
last run was given one, and an `answer` names the question's id, so it never
answers another question. `--yes` and `--no-hold` are left to the person: the
go-ahead and the client tests' sign-off are theirs to give.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..actions import history
from ..actions.history import StepRecord
from ..actions.legacy import settles_at
from ..plan.playbook import PHASE_IDS
from .answers import SHORT_ANSWERS
from .journal import Entry

#: the phases whose start waits out an old TTL (run --wait waits for it)
CUTOVER, DECOMMISSION = "cutover", "decommission"
#: phase states that are finished for the walkthrough's order
_FINISHED = ("done", "skipped")
#: a phase in these states was cut short or stopped: resume it, or roll it back
_STOPPED = ("failed", "running", "interrupted")


def _utc(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))


class _Commands:
    """Command lines for this pool file, quoted as a shell reads them."""

    def __init__(self, config: Path | None, playbook: str | None) -> None:
        self.base = ["ocsscale"] + ([] if config is None else ["-c", str(config)])
        self.playbook = playbook

    def line(self, *args: str) -> str:
        return shlex.join([*self.base, *args])

    def run(self, phase: str, *extra: str) -> str:
        given = [] if self.playbook is None else ["--playbook", self.playbook]
        return self.line("run", "--phase", phase, *given, *extra)


def _records(entries: Sequence[Entry]) -> list[StepRecord]:
    return [
        StepRecord(e.seq, e.action, e.args, e.status, e.started, e.finished, e.undo, e.evidence)
        for e in entries
    ]


def cutover_ready_at(entries: Sequence[Entry]) -> float | None:
    """When the old TTL of every name lower-ttl lowered has run out in every cache
    (None: nothing lowered): the moment dns.replace lets the cutover start."""
    records = _records(entries)
    names = {
        str(r.args.get("name", "")).rstrip(".").lower()
        for r in records
        if r.action == history.LOWER_TTL_ACTION and r.status == "done"
    }
    found = [history.lowered_ttl(records, name) for name in sorted(names) if name]
    ready = [f.ready_at for f in found if f is not None]
    return max(ready) if ready else None


def decommission_ready_at(entries: Sequence[Entry]) -> float | None:
    """When the old TTL has run out since the cutover (None: nothing cut over)."""
    settled = settles_at(history.moves_in_place(_records(entries)))
    return None if settled is None else settled[0]


def _run_phase(
    commands: _Commands, phase: str, entries: Sequence[Entry], now: float
) -> dict[str, str]:
    """The command that runs `phase`, with --wait while the old TTL it waits out
    has not run out yet."""
    ready = None
    if phase == CUTOVER:
        ready, what = cutover_ready_at(entries), "the old TTL lowered by lower-ttl"
    elif phase == DECOMMISSION:
        ready, what = decommission_ready_at(entries), "the old TTL since the cutover"
    if ready is not None and ready > now:
        return {
            "command": commands.run(phase, "--wait"),
            "why": f"{phase} may start at {_utc(ready)}, once {what} has run out in every "
            "cache; --wait waits for it with a countdown (or run it without --wait then)",
            "ready_at": _utc(ready),
        }
    return {"command": commands.run(phase), "why": f"run the phase {phase}"}


def _answer_steps(commands: _Commands, waiting: dict[str, Any]) -> list[dict[str, str]]:
    """One `ocsscale answer` per choice of the question the run holds on."""
    short = {long: word for word, long in SHORT_ANSWERS.items()}
    out = []
    for choice in waiting["choices"]:
        word = short.get(choice, choice)
        out.append(
            {
                "command": commands.line("answer", word, "--id", waiting["id"]),
                "why": f"answer {choice} (as your OS user; --by NAME names another"
                + (", --notes TEXT adds what was tested" if waiting.get("notes") else "")
                + ")",
            }
        )
    return out


def next_steps(
    report: dict[str, Any],
    entries: Sequence[Entry],
    runs: Sequence[dict[str, Any]],
    config: Path | None,
    now: float | None = None,
) -> dict[str, Any]:
    """{"stage": where the migration stands, "next": [{command, why}, ...]}: the
    first command is the one to run now (none while a run is going on)."""
    now = time.time() if now is None else now
    plan_runs = [r for r in runs if r.get("kind") == "run"]
    detail = (plan_runs[-1].get("detail") or {}) if plan_runs else {}
    commands = _Commands(config, detail.get("playbook_given"))
    steps: list[dict[str, str]] = []

    lock: dict[str, Any] | None = report.get("lock")
    waiting: dict[str, Any] | None = report.get("waiting")
    live = lock is not None and not lock["stale"]
    if waiting and "error" not in waiting and not waiting["stale"]:
        step = f" at {waiting['step']}" if waiting.get("step") else ""
        return {
            "stage": f"the run (pid {waiting['run_pid']}) holds{step} for an answer: "
            f"{waiting['question']}",
            "next": _answer_steps(commands, waiting),
        }
    if lock is not None and live:
        return {
            "stage": f"a run is going on (`{lock['command']}`, pid {lock['pid']}): "
            "wait for it to finish",
            "next": [],
        }
    if lock is not None:  # stale: nothing runs until it is cleared
        steps.append(
            {
                "command": commands.line("unlock", lock["lock_id"]),
                "why": f"the run that held lock {lock['lock_id']} is gone (pid {lock['pid']}): "
                "clear its lock first",
            }
        )
    holder = (report.get("lease") or {}).get("holder")
    if holder and holder.get("stale") and (lock is None or holder["lease_id"] != lock["lock_id"]):
        steps.append(
            {
                "command": commands.line("unlock", holder["lease_id"]),
                "why": f"the run that held the run lease {holder['lease_id']} is gone: clear it",
            }
        )

    last = report.get("last_run")
    phases = report.get("phases") or []
    if last is None or not phases:
        first = PHASE_IDS[0]
        steps.append(_run_phase(commands, first, entries, now))
        return {"stage": f"nothing has run yet: the walkthrough starts with {first}", "next": steps}

    undo = bool(report.get("rollback_would_undo") or report.get("faults_in_place"))
    if last["kind"] == "rollback" and last["status"] != "done":
        to = (runs[-1].get("detail") or {}).get("to") if runs else None
        again = commands.line("rollback", *(["--to", to] if to else []))
        steps.append({"command": again, "why": "the rollback stopped: run it again, it resumes"})
        return {
            "stage": f"a rollback {last['status']}: {last.get('error') or ''}".strip(),
            "next": steps,
        }

    stopped = [p for p in phases if p["status"] in _STOPPED]
    if stopped:
        phase = stopped[-1]["id"]
        state = "was cut short" if stopped[-1]["status"] != "failed" else "failed"
        resume = _run_phase(commands, phase, entries, now)
        resume["why"] = (
            f"resume {phase} once the cause is put right (finished steps are not redone; "
            "what the tool left broken is put right first)"
            + (f"; {resume['why']}" if "--wait" in resume["command"] else "")
        )
        steps.append(resume)
        if undo:
            steps.append(
                {
                    "command": commands.line("rollback", "--to", phase),
                    "why": f"or undo {phase} and every later phase's changes instead",
                }
            )
        return {"stage": f"the phase {phase} {state}", "next": steps}

    done = [p["id"] for p in phases if p["status"] == "done"]
    todo = [p for p in phases if p["status"] not in _FINISHED]
    if not todo:
        steps.append(
            {
                "command": commands.line("report"),
                "why": "write the evidence report of the migration",
            }
        )
        return {"stage": "every phase is done: the migration is complete", "next": steps}
    phase = todo[0]["id"]
    going = _run_phase(commands, phase, entries, now)
    steps.append(going)
    if "--wait" in going["command"]:
        stage = f"{phase} waits for the old TTL until {going['ready_at']}"
    elif todo[0]["status"] == "reverted":
        stage = f"{phase} was rolled back: it is next"
    elif done:
        stage = f"{', '.join(done)} done; {phase} has not started"
    else:
        stage = f"{phase} has not started"
    return {"stage": stage, "next": steps}
