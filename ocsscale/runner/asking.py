"""The operator of a run: every question posted to the answer channel
(answers.py), the first answer taken, from the run's terminal or from
`ocsscale answer` at another one, and journaled (who, how, when).

The terminal side (cli/operator.py) is given as a `Desk`: it shows checklists,
prints a prompt with the progress display paused, and hands over a typed line
when there is one, without blocking longer than it is told. That lets one loop
watch the keyboard and the answer file at once. Without a terminal the loop
watches the file alone, for at most `timeout` seconds.

Ctrl-C at the terminal is what it was with a plain prompt: Declined (the
operator gave no answer). Without a terminal it interrupts the run as anywhere
else (journal kept, resumable). Either way the question is withdrawn.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import Declined, StepFailed
from ..operator import NoAnswer, OperatorUnavailable, Pending
from . import answers
from .events import Event, EventSink
from .lock import current_user

#: how often the answer file is looked at while nothing is typed
POLL = 0.2
#: a required free-text answer (a name) typed empty this often gives up
_TEXT_TRIES = 3


class Desk(Protocol):
    """The run's terminal, as the operator uses it."""

    def tell(self, title: str, lines: Sequence[str], data: dict[str, Any] | None = None) -> None:
        """Show a checklist."""

    def open(self) -> None:
        """Pause the progress display: questions follow."""

    def prompt(self, text: str) -> None:
        """Print a prompt (no line break)."""

    def say(self, text: str) -> None:
        """Print a line."""

    def read_line(self, timeout: float) -> str | None:
        """A line typed (without its line break), or None when none came within
        `timeout`. EOFError at the end of input."""

    def close(self) -> None:
        """Resume the progress display."""


@dataclass(frozen=True)
class Prompt:
    """One thing asked at the terminal: a choice, or a free text."""

    text: str
    choices: tuple[str, ...] = ()
    default: str | None = None
    required: bool = False  # free text: an empty line asks again

    def shown(self) -> str:
        choices = f" ({', '.join(self.choices)})" if self.choices else ""
        default = f" [{self.default}]" if self.default else ""
        return f"{self.text}{choices}{default}: "


def _declined() -> Declined:
    return Declined("the operator gave no answer: nothing more was changed")


class ChannelOperator:
    """See the module docstring. `on_answer` (set by the runner) journals each
    answer: {step, question, answer, by, via, notes, at, asked_at}. `name`: who
    answers at the run's terminal (`run --operator NAME`; default the OS user)."""

    def __init__(
        self,
        state_dir: Path,
        desk: Desk | None = None,
        *,
        timeout: float | None = None,
        poll: float = POLL,
        name: str | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.desk = desk
        self.timeout = timeout
        self.poll = poll
        self.name = name
        self.on_answer: Callable[[dict[str, Any]], None] | None = None
        #: every answer taken, in order (what was journaled)
        self.answered: list[dict[str, Any]] = []
        self._checklist: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._step = threading.local()

    # -- what the runner wires -------------------------------------------------------
    def follow(self, sink: EventSink) -> EventSink:
        """`sink`, noting the step each thread works on (a question names it)."""

        def noted(event: Event) -> None:
            if event.step:
                self._step.id = event.step
            sink(event)

        return noted

    def _current_step(self) -> str | None:
        return getattr(self._step, "id", None)

    # -- Operator --------------------------------------------------------------------
    def tell(self, title: str, lines: Sequence[str], data: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._checklist = {
                "title": title,
                "lines": list(lines),
                "data": None if data is None else dict(data),
            }
        if self.desk is not None:
            self.desk.tell(title, lines, data)

    def ask(self, question: str, choices: Sequence[str], default: str | None = None) -> str:
        prompt = Prompt(question, tuple(choices), default)
        record, _ = self._race(question, list(choices), [prompt], notes=False)
        self._record(record)
        return str(record["answer"])

    def text(self, question: str, default: str = "") -> str:
        if self.desk is None:
            raise OperatorUnavailable(
                f"{question}: a free-text answer needs the run's terminal (`ocsscale answer` "
                "gives one of the choices of a question, with --by and --notes)"
            )
        self.desk.open()
        try:
            return self._typed(Prompt(question, default=default or None))
        finally:
            self.desk.close()

    def sign_off(
        self, question: str, results: Sequence[str], who: str, notes: str
    ) -> dict[str, Any]:
        """One of `results`, who gives it and notes: from `ocsscale answer RESULT
        --by NAME --notes TEXT` in one, or at the terminal as three questions
        (`who`, `question`, `notes`); the file wins until the result is typed."""
        # `run --operator NAME` is offered as the signer: Enter takes it
        prompts = [Prompt(who, default=self.name, required=True), Prompt(question, tuple(results))]
        record, typed = self._race(question, list(results), prompts, notes=True)
        if record["via"] == "terminal":
            assert self.desk is not None
            self.desk.open()
            try:
                said = self._typed(Prompt(notes)).strip()
            finally:
                self.desk.close()
            # given once its notes are in: the wait for people ends here
            record = {**record, "by": typed[0].strip(), "notes": said, "at": answers.now_utc()}
        self._record(record)
        return record

    def ask_nowait(self, question: str, choices: Sequence[str]) -> Pending:
        asked = self._post(question, list(choices), notes=False)
        if self.desk is not None:
            self.desk.open()
            self.desk.prompt(Prompt(question, tuple(choices)).shown())
            self.desk.close()
        return _ChannelPending(self, asked)

    # -- the race ---------------------------------------------------------------------
    def _post(self, question: str, choices: list[str], *, notes: bool) -> dict[str, Any]:
        with self._lock:
            checklist, self._checklist = self._checklist, None
        asked = answers.question(
            question, choices, step=self._current_step(), notes=notes, checklist=checklist
        )
        try:
            answers.post(self.state_dir, asked)
        except OSError as exc:
            raise StepFailed(
                f"the question cannot be posted to {answers.waiting_path(self.state_dir)} "
                f"({exc.strerror})"
            ) from None
        return asked

    def _race(
        self, question: str, choices: list[str], prompts: list[Prompt], *, notes: bool
    ) -> tuple[dict[str, Any], list[str]]:
        """(the first answer, what was typed at the terminal before it)."""
        if self.desk is None and self.timeout is None:
            raise OperatorUnavailable("nobody to ask: no terminal and no --answer-timeout")
        asked = self._post(question, choices, notes=notes)
        qid = asked["id"]
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        seen: dict[str, float] = {}
        typed: list[str] = []
        tries = 0
        if self.desk is not None:
            self.desk.open()
        try:
            if self.desk is not None:
                self.desk.prompt(prompts[0].shown())
            while True:
                found = answers.taken(self.state_dir, qid, first_seen=seen)
                if found is not None:
                    if self.desk is not None and found["via"] != "terminal":
                        self.desk.say("")
                        self.desk.say(
                            f"answered from another terminal by {found['by']}: {found['answer']}"
                        )
                    return self._taken(found, asked), typed
                wait = self.poll
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        late = answers.withdraw(self.state_dir, qid)
                        if late is not None:  # came just before the deadline
                            return self._taken(late, asked), typed
                        raise NoAnswer(
                            f"nobody answered within {self.timeout:g} s ({question}); "
                            "nothing more was changed"
                        )
                    wait = min(wait, left)
                if self.desk is None or len(typed) == len(prompts):
                    time.sleep(wait)  # (all typed, and the other terminal was first)
                    continue
                try:
                    line = self.desk.read_line(wait)
                except (EOFError, KeyboardInterrupt):
                    raise _declined() from None
                if line is None:
                    continue
                prompt = prompts[len(typed)]
                value, again = self._check(prompt, line)
                if again:
                    tries += 1
                    if prompt.required and tries >= _TEXT_TRIES:
                        raise _declined()
                    self.desk.prompt(prompt.shown())
                    continue
                typed.append(value)
                if len(typed) < len(prompts):
                    self.desk.prompt(prompts[len(typed)].shown())
                    continue
                try:
                    given = answers.give(self.state_dir, qid, value, by=self.who(), via="terminal")
                except answers.AlreadyAnswered:
                    continue  # the other terminal was first: taken on the next round
                return self._taken(given, asked), typed
        except KeyboardInterrupt:
            # At a terminal, Ctrl-C while the question is up declines it, wherever
            # it lands (in the read, or in the poll of the answer channel between two
            # reads); without one it interrupts the run, as everywhere else.
            if self.desk is None:
                raise
            raise _declined() from None
        finally:
            answers.withdraw(self.state_dir, qid)
            if self.desk is not None:
                self.desk.close()

    def who(self) -> str:
        """Who answers at the run's terminal."""
        return self.name or current_user()

    @staticmethod
    def _taken(found: dict[str, Any], asked: dict[str, Any]) -> dict[str, Any]:
        """An answer with what it answered: the question, its step, when it was asked."""
        return {
            **found,
            "question": asked["question"],
            "step": asked["step"],
            "asked_at": asked["asked_at"],
        }

    def _check(self, prompt: Prompt, line: str) -> tuple[str, bool]:
        """(the value, whether to ask again) for a typed line."""
        value = line.strip() or (prompt.default or "")
        if prompt.choices:
            if value in prompt.choices:
                return value, False
            assert self.desk is not None
            if value:
                self.desk.say(f"Error: that is not one of {', '.join(prompt.choices)}.")
            return value, True
        return value, prompt.required and not value

    def _typed(self, prompt: Prompt) -> str:
        """A line from the terminal alone (after the race, or a free text)."""
        assert self.desk is not None
        self.desk.prompt(prompt.shown())
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            if deadline is not None and time.monotonic() > deadline:
                raise NoAnswer(f"nobody answered within {self.timeout:g} s ({prompt.text})")
            try:
                line = self.desk.read_line(self.poll)
            except (EOFError, KeyboardInterrupt):
                raise _declined() from None
            if line is not None:
                return line.strip() or (prompt.default or "")

    def _record(self, record: dict[str, Any]) -> None:
        keys = ("step", "question", "answer", "by", "via", "notes", "at", "asked_at")
        kept = {k: record.get(k) for k in keys}
        self.answered.append(kept)
        if self.on_answer is not None:
            self.on_answer(kept)


class _ChannelPending:
    """ask_nowait's question: answered by `ocsscale answer`, or by a line typed
    at the terminal, whichever comes first; journaled once."""

    def __init__(self, operator: ChannelOperator, asked: dict[str, Any]) -> None:
        self.operator = operator
        self.asked = asked
        self.answer: str | None = None
        self._seen: dict[str, float] = {}
        self._open = True

    def poll(self) -> str | None:
        if self.answer is not None or not self._open:
            return self.answer
        op, qid = self.operator, self.asked["id"]
        found = answers.taken(op.state_dir, qid, first_seen=self._seen)
        if found is None and op.desk is not None:
            try:
                line = op.desk.read_line(0)
            except EOFError:
                line = None
            value = (line or "").strip()
            if value in self.asked["choices"]:
                try:
                    found = answers.give(op.state_dir, qid, value, by=op.who(), via="terminal")
                except answers.AlreadyAnswered:
                    found = answers.taken(op.state_dir, qid, first_seen=self._seen)
        if found is None:
            return None
        self.answer = str(found["answer"])
        op._record(op._taken(found, self.asked))
        self.cancel()
        return self.answer

    def cancel(self) -> None:
        if self._open:
            self._open = False
            answers.withdraw(self.operator.state_dir, self.asked["id"])
