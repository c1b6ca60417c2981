"""`answer`: what a run waits for, and the answer, from any terminal of the
admin machine (runner/answers.py holds the channel)."""

from __future__ import annotations

import inspect
import json
import shlex
from typing import Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from ..errors import OcsscaleError, UsageError
from ..runner import answers
from ..runner.lock import current_user
from ..runner.session import state_dir_for
from .render import handle_errors
from .state import app_state

#: what a person may type for the client tests' sign-off
SHORT = answers.SHORT_ANSWERS


class NotTaken(OcsscaleError):
    """The answer was not taken (somebody was first, or the question changed)."""


def _shown(asked: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    if asked["stale"]:
        out.append(
            Text(
                f"! the run that asked (pid {asked['run_pid']}) is gone: nothing waits for "
                "this answer; `ocsscale status` shows where it stopped",
                style="bold red",
            )
        )
    checklist = asked.get("checklist")
    if checklist:
        body = "\n".join(f"{n:>3}. {line}" for n, line in enumerate(checklist["lines"], 1))
        out.append(Panel(Text(body), title=Text(checklist["title"], style="bold"), expand=False))
    step = f" (step {asked['step']})" if asked["step"] else ""
    out.append(Text(f"The run waits{step} since {asked['asked_at']}: {asked['question']}"))
    choices = ", ".join(asked["choices"])
    out.append(Text(f"Answer one of: {choices}"))
    out.append(Text(f"  {answer_with(asked)}"))
    return out


def answer_with(asked: dict[str, Any], config: str | None = None) -> str:
    """The command that answers `asked` (pass|fail for the client tests' sign-off)."""
    short = [k for k, v in SHORT.items() if v in asked["choices"]]
    choice = "|".join(short) if len(short) == len(asked["choices"]) else asked["choices"][0]
    pool = f" -c {shlex.quote(config)}" if config else ""
    extra = " --notes TEXT" if asked["notes"] else ""
    return f"ocsscale{pool} answer {choice} --by NAME{extra}"


def _choice(given: str, choices: list[str]) -> str:
    word = given.strip().lower()
    if word in SHORT and SHORT[word] in choices:
        word = SHORT[word]
    if word not in choices:
        raise UsageError(
            "that answer is not one of the choices: nothing was answered",
            hint=f"answer one of: {', '.join(choices)}",
        )
    return word


def answer_cmd(
    ctx: typer.Context,
    answer: str | None = typer.Argument(
        None,
        metavar="[ANSWER]",
        help="One of the choices the run offers (done, abort, ...; pass/fail for the "
        "client tests). Without it: show what the run waits for.",
    ),
    by: str | None = typer.Option(
        None, "--by", metavar="NAME", help="Who answers (default: your OS user name)."
    ),
    notes: str = typer.Option(
        "", "--notes", metavar="TEXT", help="Notes (for the client tests' sign-off)."
    ),
    qid: str | None = typer.Option(
        None,
        "--id",
        metavar="ID",
        help="Answer only if the question waiting is still this one (its id, as --json shows it).",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the question (waiting.json) or the answer as JSON."
    ),
) -> None:
    """Show what a run waits for, or answer it, from any terminal of the admin
    machine: the operator at an appliance, the testers at the workstations.

    A run that needs a person (the manual LB driver's farm settings, a manual
    DNS change, the client tests' sign-off) asks at its own terminal and, at the
    same time, here. The first answer wins; the run journals who answered, how
    and when (`ocsscale report` shows it). A run without a terminal waits for
    this command when it was started with --answer-timeout SECONDS.

      ocsscale answer                        what is the run waiting for?

      ocsscale answer done --by "Ann at the WebMux"

      ocsscale answer pass --by Bob --notes "IM, voice, video, sharing fine"

      ocsscale answer fail --by Bob --notes "video froze after a minute"

      ocsscale answer --json                 the question and its checklist data

    Changes nothing but the answer file in .ocsscale/ next to the pool file
    (which need not validate). Nothing is trusted as proof: the run checks from
    outside after every "done".

    Exit codes: 0 shown (also when nothing waits), or the answer was given;
    1 the answer was not taken (somebody answered first, or the question
    changed meanwhile); 2 not one of the choices, nothing waiting, the run that
    asked is gone, or a question file ocsscale did not write.
    """
    console = Console(highlight=False)
    state_dir = state_dir_for(app_state(ctx).config)
    asked = answers.waiting(state_dir)
    if answer is None:
        if as_json:
            typer.echo(json.dumps(asked if asked else {"waiting": False}, indent=2))
            return
        if asked is None:
            console.print("Nothing waits for an answer.")
            return
        for part in _shown(asked):
            console.print(part)
        return
    if asked is None:
        raise UsageError("nothing waits for an answer: nothing was answered")
    if asked["stale"]:
        raise UsageError(
            f"the run that asked (pid {asked['run_pid']}) is gone: nothing was answered",
            hint="`ocsscale status` shows where it stopped; `ocsscale run` resumes it",
        )
    if qid is not None and qid != asked["id"]:
        raise NotTaken("the question waiting is not that one any more: nothing was answered")
    word = _choice(answer, asked["choices"])
    try:
        who = answers.check_by(by if by is not None else current_user())
        said = answers.check_notes(notes)
    except ValueError as exc:
        raise UsageError(f"{exc}: nothing was answered") from None
    try:
        given = answers.give(state_dir, asked["id"], word, by=who, notes=said)
    except answers.AlreadyAnswered:
        first = answers.taken(state_dir, asked["id"])
        if first is None or first["via"] == answers.WITHDRAWN:
            raise NotTaken("the run stopped waiting before this answer: it was not taken") from None
        raise NotTaken(
            f"{first['by']} answered first ({first['answer']}, at the "
            f"{'run' if first['via'] == 'terminal' else 'other'} terminal): "
            "this answer was not taken"
        ) from None
    if as_json:
        typer.echo(json.dumps(given, indent=2))
        return
    console.print(Text(f"answered {word} (by {who}): the run goes on and checks it"))


def register(app: typer.Typer) -> None:
    app.command("answer", help=inspect.cleandoc(answer_cmd.__doc__ or ""))(
        handle_errors(answer_cmd)
    )
