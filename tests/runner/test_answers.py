"""The answer channel's files (runner/answers.py) and the run's operator
(runner/asking.py): first answer wins, between the run's terminal (a real pipe
read by the CLI's TerminalOperator) and `ocsscale answer`'s file; stale,
garbled, hostile and oversized files refused with a clear error."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from ocsscale.cli.operator import TerminalOperator
from ocsscale.errors import Declined
from ocsscale.operator import NoAnswer, NoOperator, OperatorUnavailable
from ocsscale.runner import answers
from ocsscale.runner.asking import ChannelOperator
from ocsscale.runner.events import Event
from ocsscale.runner.journal import Journal


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / ".ocsscale"


def _post(state: Path, **kw: Any) -> dict[str, Any]:
    asked = answers.question("Type done", ["done", "abort"], **kw)
    answers.post(state, asked)
    return asked


# -- the files ---------------------------------------------------------------------
def test_a_question_is_posted_private_and_read_back(state: Path) -> None:
    asked = _post(
        state,
        step="configure-lb/farm",
        checklist={"title": "t", "lines": ["a"], "data": {"kind": "farm", "vip": "198.18.1.40"}},
    )
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE(answers.waiting_path(state).stat().st_mode) == 0o600
    found = answers.waiting(state)
    assert found is not None and found["stale"] is False
    assert {k: v for k, v in found.items() if k != "stale"} == asked
    assert found["checklist"]["data"] == {"kind": "farm", "vip": "198.18.1.40"}


def test_the_first_answer_wins_and_is_private(state: Path) -> None:
    asked = _post(state)
    given = answers.give(state, asked["id"], "done", by="ann", notes="ok")
    assert given["via"] == "answer" and given["by"] == "ann"
    path = answers.answer_path(state, asked["id"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(answers.AlreadyAnswered):
        answers.give(state, asked["id"], "abort", by="bob")
    assert answers.taken(state, asked["id"])["answer"] == "done"


def test_a_question_of_a_run_that_is_gone_is_stale(state: Path) -> None:
    asked = _post(state)
    proc = subprocess.Popen(["true"])
    proc.wait()
    data = json.loads(answers.waiting_path(state).read_text())
    answers.waiting_path(state).write_text(json.dumps({**data, "run_pid": proc.pid}))
    found = answers.waiting(state)
    assert found is not None and found["stale"] is True and found["id"] == asked["id"]


HOSTILE = "\x1b]0;owned\x07 rm -rf / SECRET-VALUE"


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        json.dumps([1, 2]).encode(),
        json.dumps(
            {"id": "../../etc/passwd", "run_pid": 1, "question": "q", "choices": ["done"]}
        ).encode(),
        json.dumps(
            {"id": "a" * 32, "run_pid": True, "question": "q", "choices": ["done"]}
        ).encode(),
        json.dumps(
            {"id": "a" * 32, "run_pid": 1, "question": HOSTILE, "choices": ["done"]}
        ).encode(),
        json.dumps({"id": "a" * 32, "run_pid": 1, "question": "q", "choices": [HOSTILE]}).encode(),
        json.dumps(
            {"id": "a" * 32, "run_pid": 1, "question": "q", "choices": ["done"], "x": 1}
        ).encode(),
        b"[" * 100000,
        b" " * (answers.MAX_WAITING_BYTES + 1),
    ],
    ids=[
        "not-json",
        "not-utf8",
        "a-list",
        "id-path",
        "pid-bool",
        "control-chars",
        "hostile-choice",
        "unknown-field",
        "deep",
        "too-big",
    ],
)
def test_a_garbled_or_hostile_question_is_refused_without_echoing_it(
    state: Path, content: bytes
) -> None:
    state.mkdir(mode=0o700)
    answers.waiting_path(state).write_bytes(content)
    with pytest.raises(answers.AnswerFileError) as caught:
        answers.waiting(state)
    message = caught.value.message
    assert "refused" in message and str(answers.waiting_path(state)) in message
    assert "SECRET-VALUE" not in message and "passwd" not in message


def test_a_symlink_or_fifo_in_place_of_a_question_is_refused(state: Path, tmp_path: Path) -> None:
    state.mkdir(mode=0o700)
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    answers.waiting_path(state).symlink_to(target)
    with pytest.raises(answers.AnswerFileError):
        answers.waiting(state)
    answers.waiting_path(state).unlink()
    os.mkfifo(answers.waiting_path(state))
    with pytest.raises(answers.AnswerFileError) as caught:
        answers.waiting(state)  # never blocks on a FIFO
    assert "not a regular file" in caught.value.message


def test_a_garbled_answer_gets_a_moment_then_is_refused(state: Path) -> None:
    asked = _post(state)
    path = answers.answer_path(state, asked["id"])
    path.parent.mkdir(mode=0o700)
    path.write_text('{"id": "' + asked["id"] + '", "answer": "done", "by": "' + HOSTILE + '"')
    seen: dict[str, float] = {}
    assert answers.taken(state, asked["id"], first_seen=seen) is None  # maybe being written
    seen[asked["id"]] -= 5  # the grace is over
    with pytest.raises(answers.AnswerFileError) as caught:
        answers.taken(state, asked["id"], first_seen=seen)
    assert "SECRET-VALUE" not in caught.value.message
    path.write_text(
        json.dumps(
            {"id": "b" * 32, "answer": "done", "by": "x", "notes": "", "via": "answer", "at": "t"}
        )
    )
    with pytest.raises(answers.AnswerFileError, match="answers another question"):
        answers.taken(state, asked["id"])


def test_an_answer_after_the_run_stopped_waiting_is_refused(state: Path) -> None:
    asked = _post(state)
    assert answers.withdraw(state, asked["id"]) is None
    assert answers.waiting(state) is None
    with pytest.raises(answers.AlreadyAnswered):
        answers.give(state, asked["id"], "done", by="late")
    # an answer that came before the run stopped waiting is handed back
    again = _post(state)
    answers.give(state, again["id"], "done", by="quick")
    assert answers.withdraw(state, again["id"])["by"] == "quick"


def test_bounded_fields_are_refused_when_given(state: Path) -> None:
    asked = _post(state)
    with pytest.raises(Exception, match="at most 100"):
        answers.give(state, asked["id"], "done", by="x" * 101)
    with pytest.raises(Exception, match="at most 2000"):
        answers.give(state, asked["id"], "done", by="x", notes="n" * 2001)
    assert answers.taken(state, asked["id"]) is None  # nothing half-given


# -- the operator ---------------------------------------------------------------------
class _Progress:
    def __init__(self) -> None:
        self.paused = 0

    def pause(self) -> None:
        self.paused += 1

    def resume(self) -> None:
        self.paused -= 1


class Keyboard:
    """The run's terminal: a pipe the test types into, read by the CLI's real
    TerminalOperator (select() and its own line reading)."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.screen = io.StringIO()
        self.progress = _Progress()
        self.desk = TerminalOperator(
            Console(file=self.screen, width=200),
            self.progress,
            fd=self.read_fd,  # type: ignore[arg-type]
        )

    def type(self, text: str) -> None:
        os.write(self.write_fd, text.encode())

    def end(self) -> None:
        os.close(self.write_fd)
        self.write_fd = -1

    def close(self) -> None:
        os.close(self.read_fd)
        if self.write_fd >= 0:
            os.close(self.write_fd)


@pytest.fixture
def keyboard() -> Iterator[Keyboard]:
    kb = Keyboard()
    yield kb
    kb.close()


def _answer_when_asked(state: Path, answer: str, **kw: Any) -> threading.Thread:
    """Another terminal: `ocsscale answer ANSWER` as soon as a question waits."""

    def run() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            asked = answers.waiting(state)
            if asked is not None:
                answers.give(state, asked["id"], answer, **kw)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_without_a_terminal_the_file_answers_and_is_journaled(state: Path) -> None:
    op = ChannelOperator(state, None, timeout=10, poll=0.02)
    journal = Journal.open(state)
    op.on_answer = lambda a: journal.record_answer("run-1", a)
    sink = op.follow(lambda e: None)
    sink(Event("step_start", "configure-lb", "configure-lb/farm"))
    op.tell("Enter the farm", ["line"], {"kind": "farm"})
    other = _answer_when_asked(state, "done", by="ann")
    assert op.ask("Type done", ["done", "abort"]) == "done"
    other.join()
    assert answers.waiting(state) is None  # withdrawn once answered
    (row,) = journal.answers()
    assert (row["run_id"], row["step"], row["answer"], row["by"], row["via"]) == (
        "run-1",
        "configure-lb/farm",
        "done",
        "ann",
        "answer",
    )
    assert row["question"] == "Type done" and row["at"]
    journal.close()


def test_the_checklist_told_goes_with_the_next_question_only(state: Path) -> None:
    op = ChannelOperator(state, None, timeout=10, poll=0.02)
    op.tell("Enter the farm", ["line"], {"kind": "farm", "vip": "198.18.1.40"})
    seen: list[Any] = []

    def look() -> None:
        for _ in range(2):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                asked = answers.waiting(state)
                if asked is not None and asked["id"] not in [s["id"] for s in seen]:
                    seen.append(asked)
                    answers.give(state, asked["id"], "done", by="ann")
                    break
                time.sleep(0.02)

    thread = threading.Thread(target=look)
    thread.start()
    op.ask("first", ["done", "abort"])
    op.ask("second", ["done", "abort"])
    thread.join()
    assert seen[0]["checklist"]["data"] == {"kind": "farm", "vip": "198.18.1.40"}
    assert seen[1]["checklist"] is None


def test_nobody_answers_within_the_timeout(state: Path) -> None:
    op = ChannelOperator(state, None, timeout=0.3, poll=0.02)
    started = time.monotonic()
    with pytest.raises(NoAnswer) as caught:
        op.ask("Type done", ["done", "abort"])
    assert time.monotonic() - started < 3
    assert isinstance(caught.value, OperatorUnavailable)
    assert "nobody answered within 0.3 s" in caught.value.message
    assert answers.waiting(state) is None
    assert op.answered == []


def test_the_terminal_answers_first(state: Path, keyboard: Keyboard) -> None:
    op = ChannelOperator(state, keyboard.desk, poll=0.02)
    keyboard.type("maybe\n")  # not a choice: asked again
    keyboard.type("done\n")
    assert op.ask("Type done", ["done", "abort"]) == "done"
    assert op.answered[0]["via"] == "terminal" and op.answered[0]["by"]
    screen = keyboard.screen.getvalue()
    assert screen.count("Type done (done, abort): ") == 2
    assert "not one of done, abort" in screen
    assert keyboard.progress.paused == 0  # the display runs again
    assert answers.waiting(state) is None


def test_the_other_terminal_answers_first(state: Path, keyboard: Keyboard) -> None:
    op = ChannelOperator(state, keyboard.desk, poll=0.02)
    other = _answer_when_asked(state, "abort", by="Ann at the WebMux")
    assert op.ask("Type done", ["done", "abort"]) == "abort"
    other.join()
    assert op.answered[0]["via"] == "answer" and op.answered[0]["by"] == "Ann at the WebMux"
    assert "answered from another terminal by Ann at the WebMux: abort" in (
        keyboard.screen.getvalue()
    )
    keyboard.type("done\n")  # typed too late: left for nobody, never taken
    assert answers.waiting(state) is None


def test_a_default_is_taken_on_an_empty_line(state: Path, keyboard: Keyboard) -> None:
    op = ChannelOperator(state, keyboard.desk, poll=0.02)
    keyboard.type("\n")
    assert op.ask("Acknowledge?", ["yes", "no"], "no") == "no"


def test_end_of_input_or_ctrl_c_at_the_terminal_declines(state: Path, keyboard: Keyboard) -> None:
    op = ChannelOperator(state, keyboard.desk, poll=0.02)
    keyboard.end()
    with pytest.raises(Declined, match="the operator gave no answer"):
        op.ask("Type done", ["done", "abort"])
    assert answers.waiting(state) is None

    kb = Keyboard()
    try:
        op = ChannelOperator(state, kb.desk, poll=0.02)
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises(Declined):
            op.ask("Type done", ["done", "abort"])
        timer.join()
    finally:
        kb.close()
    assert answers.waiting(state) is None


def test_ctrl_c_without_a_terminal_interrupts_the_run(state: Path) -> None:
    op = ChannelOperator(state, None, timeout=30, poll=0.02)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        op.ask("Type done", ["done", "abort"])
    timer.join()
    assert answers.waiting(state) is None  # withdrawn: the run is resumable, nothing waits


def test_a_garbled_answer_stops_the_wait_with_a_clear_error(state: Path) -> None:
    op = ChannelOperator(state, None, timeout=10, poll=0.02)

    def scribble() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            asked = answers.waiting(state)
            if asked is not None:
                path = answers.answer_path(state, asked["id"])
                path.parent.mkdir(mode=0o700, exist_ok=True)
                path.write_text("garbage " + HOSTILE)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=scribble)
    thread.start()
    with pytest.raises(answers.AnswerFileError) as caught:
        op.ask("Type done", ["done", "abort"])
    thread.join()
    assert "refused" in caught.value.message and "SECRET-VALUE" not in caught.value.message
    assert op.answered == []


def test_a_sign_off_through_the_file_gives_who_result_and_notes(state: Path) -> None:
    op = ChannelOperator(state, None, timeout=10, poll=0.02)
    other = _answer_when_asked(state, "failed", by="Bob", notes="video froze")
    given = op.sign_off("Result?", ["passed", "failed"], "Who?", "Notes?")
    other.join()
    assert (given["answer"], given["by"], given["notes"], given["via"]) == (
        "failed",
        "Bob",
        "video froze",
        "answer",
    )


def test_a_sign_off_at_the_terminal_asks_three_questions(state: Path, keyboard: Keyboard) -> None:
    op = ChannelOperator(state, keyboard.desk, poll=0.02)
    posted: list[Any] = []

    def look() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not posted:
            asked = answers.waiting(state)
            if asked is not None:
                posted.append(asked)
                keyboard.type("Alice Operator\npassed\nall fine\n")
            time.sleep(0.01)

    thread = threading.Thread(target=look)
    thread.start()
    given = op.sign_off("Result?", ["passed", "failed"], "Who?", "Notes?")
    thread.join()
    assert (given["answer"], given["by"], given["notes"], given["via"]) == (
        "passed",
        "Alice Operator",
        "all fine",
        "terminal",
    )
    screen = keyboard.screen.getvalue()
    assert (
        screen.index("Who?: ")
        < screen.index("Result? (passed, failed): ")
        < screen.index("Notes?: ")
    )
    assert posted and posted[0]["notes"] is True and posted[0]["choices"] == ["passed", "failed"]
    assert op.answered == [{k: given[k] for k in op.answered[0]}]


def test_the_operator_named_answers_at_the_terminal_and_is_offered_as_signer(
    state: Path, keyboard: Keyboard
) -> None:
    """`run --operator Dave`: what is typed at the run's terminal is Dave's, and the
    sign-off offers Dave as its signer (Enter takes it); each answer keeps when it
    was asked."""
    op = ChannelOperator(state, keyboard.desk, poll=0.02, name="Dave")

    def type_when_asked(lines: str) -> threading.Thread:
        def go() -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and answers.waiting(state) is None:
                time.sleep(0.01)
            keyboard.type(lines)

        thread = threading.Thread(target=go)
        thread.start()
        return thread

    typing = type_when_asked("done\n")
    assert op.ask("Type done", ["done", "abort"]) == "done"
    typing.join()
    typing = type_when_asked("\npassed\nfine\n")
    given = op.sign_off("Result?", ["passed", "failed"], "Who?", "Notes?")
    typing.join()
    assert "Who? [Dave]: " in keyboard.screen.getvalue()
    assert [(a["answer"], a["by"], a["via"]) for a in op.answered] == [
        ("done", "Dave", "terminal"),
        ("passed", "Dave", "terminal"),
    ]
    assert given["notes"] == "fine"
    assert all(a["asked_at"] and a["asked_at"] <= a["at"] for a in op.answered)


def test_ask_nowait_answers_once_and_cancel_withdraws(state: Path) -> None:
    op = ChannelOperator(state, None, timeout=10, poll=0.02)
    pending = op.ask_nowait("Does the appliance show ocsfe01 down?", ["down"])
    assert pending.poll() is None
    asked = answers.waiting(state)
    assert asked is not None and asked["choices"] == ["down"]
    answers.give(state, asked["id"], "down", by="ann")
    assert pending.poll() == "down" and pending.poll() == "down"
    assert len(op.answered) == 1 and answers.waiting(state) is None

    other = op.ask_nowait("again?", ["down"])
    other.cancel()
    assert answers.waiting(state) is None and other.poll() is None
    assert NoOperator().ask_nowait("q", ["down"]).poll() is None


def test_no_operator_keeps_the_data_it_is_told() -> None:
    op = NoOperator()
    op.tell("t", ["a"], {"kind": "dns-change"})
    op.tell("u", ["b"])
    assert op.told == [("t", ["a"]), ("u", ["b"])]
    assert op.told_data == [{"kind": "dns-change"}, None]


def test_a_new_run_clears_what_a_killed_one_left(state: Path) -> None:
    asked = _post(state)
    answers.give(state, asked["id"], "done", by="x")
    answers.clear(state)
    assert answers.waiting(state) is None
    assert not answers.answer_path(state, asked["id"]).exists()


def test_a_journal_from_before_answers_reads_none_and_gains_the_table(state: Path) -> None:
    journal = Journal.open(state)
    journal._db.execute("DROP TABLE answers")  # as an older ocsscale wrote it
    journal.close()
    old = Journal(state / "journal.sqlite", read_only=True)
    assert old.answers() == []  # read-only: nothing is added, nothing fails
    old.close()
    journal = Journal.open(state)  # a run opens it: the table is added
    journal.record_answer(
        "r",
        {"step": None, "question": "q", "answer": "done", "by": "x", "via": "answer", "at": "t"},
    )
    assert [a["answer"] for a in journal.answers()] == ["done"]
    journal.close()
