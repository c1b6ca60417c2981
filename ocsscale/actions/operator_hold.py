"""operator.hold: wait, with the pins in place, for the operator's sign-off of
the walkthrough's client tests.

Args: `fe` (validate-fe: the front end the pins point at) or `through`
(validate-lb: the VIP); optional `checklist` (a file in templates/checklists/,
default `<profile>-client-tests`).

The walkthrough's tests (sign in, IM, voice, video, desktop sharing, a Live
Meeting scheduled from Outlook) need people at the test workstations while the
hosts files point at one front end or at the VIP. The step runs right after
the probes passed, so the pins are still there: it shows the checklist with
this pool's values and asks who signs off, the result (passed|failed) and
notes: at the run's terminal, or all three at once from another terminal with
`ocsscale answer pass|fail --by NAME --notes TEXT` (runner/asking.py).

Reads: the pool file only; asks the operator (`Context.operator`). Changes
nothing: no undo record, nothing to revert. Proof: the sign-off (who, result,
notes, when, with the checklist shown) is the step's evidence in the journal.
A "failed" sign-off fails the step like a failed probe, so the phase stops and
its cleanup removes the pins; so does a hold that is interrupted (Ctrl-C, end
of input) or that times out (`run --hold-timeout SECONDS`). `run --no-hold`
(the lab, CI, `make demo`) records "skipped: --no-hold" instead of asking.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..errors import CheckFailed, Declined, UsageError
from ..operator import NoAnswer
from .args import ActionArgs, Address, HostName, TemplateName
from .base import Action, Change, Context, Json, register
from .fe_checklist import checklist_path, front_end, render_checklist_with

FINDINGS_EVENT = "findings"
RESULTS = ("passed", "failed")
WHO = "Who signs off (your name)"
NOTES = "Notes (what was tested, what did not work)"
_NAME_TRIES = 3


class _TimedOut(Exception):
    """Raised by the alarm inside a prompt; never leaves this module."""


class HoldArgs(ActionArgs):
    #: the front end pinned for the tests (one of fe and through)
    fe: HostName | None = None
    #: the VIP the clients reach the pool through (one of fe and through)
    through: Address | None = None
    #: a checklist of templates/checklists (default: the profile's client-tests one)
    checklist: TemplateName | None = None


@register
class OperatorHold(Action):
    """Hold for the client tests' sign-off (see the module docstring)."""

    name = "operator.hold"
    read_only = True
    Args = HoldArgs
    params: HoldArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        fe, through = self.params.fe, self.params.through
        if bool(fe) == bool(through):
            raise UsageError(f"{self.name}: give exactly one of 'fe' and 'through'")
        if fe:
            spec = front_end(ctx.pool, fe, self.name)
            self.address = str(spec.address)
            self.target = f"{spec.name} ({self.address})"
            self.pinned = [spec.name]
        else:
            self.address = str(through)
            self.target = f"the VIP {self.address}"
            self.pinned = [f.name for f in ctx.pool.front_ends]
        self.clients = [c.name for c in ctx.pool.test_clients]
        self.checklist = self.params.checklist or f"{ctx.profile.name}-client-tests"
        if not checklist_path(self.checklist).is_file():
            raise UsageError(
                f"{self.name}: no checklist {self.checklist} in templates/checklists",
                hint="name one with the step's `checklist` argument",
            )

    def targets(self) -> list[str]:
        return []  # asks the person at the console; contacts no host

    def describe(self) -> list[Change]:
        return [
            Change(
                "check",
                "operator",
                f"hold for the client tests through {self.target} (sign in, IM, voice, video, "
                "desktop sharing, Live Meeting from Outlook) until the operator signs off: "
                "who, passed|failed, notes",
            )
        ]

    def apply(self, current: Json) -> Json:
        base = {"target": self.target, "address": self.address, "checklist": self.checklist}
        if self.ctx.options.no_hold:
            self._finding(True, "skipped: --no-hold (nobody signed off the client tests)", True)
            return {**base, "skipped": "--no-hold"}
        shown = render_checklist_with(
            self.checklist,
            {
                "target": self.target,
                "address": self.address,
                "pool": self.ctx.pool.pool.model_dump(mode="json"),
                "clients": self.clients,
            },
        )
        operator = self.ctx.operator
        try:
            with _deadline(self.ctx.options.hold_timeout):
                operator.tell(
                    shown["title"],
                    [*shown["steps"], *shown["requirements"]],
                    {"kind": "client-tests", "target": self.target, **shown},
                )
                who, result, notes = self._sign_off()
        except NoAnswer:  # --answer-timeout ran out
            raise CheckFailed(
                f"nobody signed off the client tests through {self.target} in time; the "
                "phase's cleanup removes the pins",
                hint="run the phase again, and answer with `ocsscale answer pass|fail "
                "--by NAME --notes TEXT` or at the run's terminal",
            ) from None
        except _TimedOut:
            raise CheckFailed(
                f"the hold for the client tests through {self.target} timed out without a "
                "sign-off; the phase's cleanup removes the pins",
                hint="run the phase again from a terminal, with a longer --hold-timeout",
            ) from None
        except Declined:
            raise CheckFailed(
                f"the hold for the client tests through {self.target} was interrupted before "
                "a sign-off; the phase's cleanup removes the pins"
            ) from None
        signed = {
            "by": who,
            "result": result,
            "notes": notes,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        said = f"{result}, signed off by {who}" + (f": {notes}" if notes else "")
        self._finding(result == "passed", said)
        if result != "passed":
            raise CheckFailed(f"the client tests through {self.target} {said}")
        return {**base, "pinned": self.pinned, "shown": shown, "sign_off": signed}

    def _sign_off(self) -> tuple[str, str, str]:
        """(who, passed|failed, notes). Through the answer channel one `ocsscale
        answer pass|fail --by NAME --notes TEXT` gives all three (runner/asking.py);
        at a bare terminal they are three questions."""
        operator = self.ctx.operator
        question = f"Result of the client tests through {self.target}"
        sign_off = getattr(operator, "sign_off", None)
        if sign_off is not None:
            given = sign_off(question, list(RESULTS), WHO, NOTES)
            who = str(given["by"]).strip()
            if not who:
                raise CheckFailed(f"no name given for the sign-off through {self.target}")
            return who, str(given["answer"]), str(given["notes"]).strip()
        who = self._who()
        result = operator.ask(question, list(RESULTS))
        return who, result, operator.text(NOTES).strip()

    def _who(self) -> str:
        for _ in range(_NAME_TRIES):
            who = self.ctx.operator.text(WHO).strip()
            if who:
                return who
        raise CheckFailed(f"no name given for the sign-off through {self.target}")

    def _finding(self, ok: bool, message: str, info: bool = False) -> None:
        finding = {"check": "client tests", "ok": ok, "proven": not info, "message": message}
        if info:
            finding["info"] = True
        self.ctx.emit(
            FINDINGS_EVENT,
            {"title": f"hold through {self.target}", "findings": [finding]},
        )


@contextmanager
def _deadline(seconds: Any) -> Iterator[None]:
    """Raise _TimedOut in the prompt once `seconds` have passed (None: no limit).

    An alarm is the one way to give up on a terminal prompt that blocks in
    input(); it only exists in the main thread, where the CLI runs."""
    if seconds is None:
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        raise UsageError("--hold-timeout works only when the run is in the main thread")

    def expire(signum: int, frame: Any) -> None:
        raise _TimedOut()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
