"""`ocsscale answer` against a real run in a subprocess: a manual driver's
"done" (the test plugin's test.ask, which tells a checklist with data) and the
client tests' sign-off (operator.hold), answered from "another terminal";
the run's own terminal (a pty) racing the file; status and report showing who
answered what, how and when."""

from __future__ import annotations

import json
import os
import pty
import signal
import sqlite3
import subprocess
import time
from typing import Any

import pytest

from ocsscale.runner.journal import Journal

from .conftest import PYTHON, REPO, VALIDATE_HEAD, LocalPool

PLAYBOOK = (
    VALIDATE_HEAD
    + """\
      - id: ask
        action: test.ask
{hold}"""
)

HOLD = """\
      - id: hold
        action: operator.hold
        args: {fe: fe01}
"""


def _cmd(pool: LocalPool, *args: str) -> list[str]:
    return [str(PYTHON), "-m", "ocsscale", "-c", str(pool.pool), *args]


def _playbook(pool: LocalPool, hold: bool = True) -> str:
    path = pool.dir / "playbook.yaml"
    path.write_text(PLAYBOOK.format(hold=HOLD if hold else ""))
    return str(path)


def _ocsscale(pool: LocalPool, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _cmd(pool, *args),
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _start(pool: LocalPool, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _cmd(pool, "run", "--playbook", _playbook(pool), "--yes", *args),
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _waiting_for(pool: LocalPool, env: dict[str, str], step: str) -> dict[str, Any]:
    """`ocsscale answer --json`, polled as a person at another terminal would."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        result = _ocsscale(pool, env, "answer", "--json")
        assert result.returncode == 0, result.stderr
        asked = json.loads(result.stdout)
        if asked.get("step") == step:
            return asked
        time.sleep(0.2)
    raise AssertionError(f"the run never asked at {step}")


def _answers(pool: LocalPool) -> list[dict[str, Any]]:
    db = sqlite3.connect(pool.state_dir / "journal.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM answers ORDER BY answer_id")]
    finally:
        db.close()


def test_a_run_without_a_terminal_is_answered_from_another_one(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    pool, env = local_pool, plugin_env
    nothing = _ocsscale(pool, env, "answer", "--json")
    assert nothing.returncode == 0 and json.loads(nothing.stdout) == {"waiting": False}
    assert _ocsscale(pool, env, "answer", "done").returncode == 2

    run = _start(pool, env, "--answer-timeout", "60", "--operator", "Carol <on call>")
    try:
        asked = _waiting_for(pool, env, "validate-fe/ask")
        assert asked["choices"] == ["done", "abort"] and asked["stale"] is False
        assert asked["checklist"]["data"] == {
            "kind": "test",
            "vip": "198.18.0.40",
            "members": ["fe01", "fe02"],
        }
        shown = _ocsscale(pool, env, "answer")
        assert (
            "Enter these settings" in shown.stdout and "Answer one of: done, abort" in shown.stdout
        )

        status = _ocsscale(pool, env, "status", "--json")
        waiting = json.loads(status.stdout)["waiting"]
        assert waiting["step"] == "validate-fe/ask" and waiting["checklist_title"]
        assert waiting["answer_with"].endswith("answer done --by NAME")
        said = " ".join(_ocsscale(pool, env, "status").stdout.split())
        assert "waits at validate-fe/ask" in said and "answer done --by NAME" in said

        wrong = _ocsscale(pool, env, "answer", "maybe")
        assert wrong.returncode == 2 and "not one of the choices" in wrong.stderr
        stale_id = _ocsscale(pool, env, "answer", "done", "--id", "0" * 32)
        assert stale_id.returncode == 1, stale_id.stderr
        given = _ocsscale(pool, env, "answer", "done", "--by", "Ann at the WebMux")
        assert given.returncode == 0, given.stderr
        again = _ocsscale(pool, env, "answer", "abort", "--id", asked["id"])
        assert again.returncode == 1, again.stderr  # answered, or no longer waiting

        hold = _waiting_for(pool, env, "validate-fe/hold")
        assert hold["choices"] == ["passed", "failed"] and hold["notes"] is True
        assert "answer pass|fail --by NAME --notes TEXT" in _ocsscale(pool, env, "answer").stdout
        signed = _ocsscale(
            pool, env, "answer", "pass", "--by", "Bob", "--notes", "IM, voice, video fine"
        )
        assert signed.returncode == 0, signed.stderr
        out, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, out
    assert "client tests: passed, signed off by Bob: IM, voice, video fine" in out

    rows = _answers(pool)
    # the go-ahead first (--yes, by the --operator), then every answer in order
    assert [(r["step"], r["answer"], r["by"], r["via"]) for r in rows] == [
        (None, "yes", "Carol <on call>", "flag"),
        ("validate-fe/ask", "done", "Ann at the WebMux", "answer"),
        ("validate-fe/hold", "passed", "Bob", "answer"),
    ]
    assert rows[2]["notes"] == "IM, voice, video fine" and rows[1]["at"]
    assert all(r["asked_at"] and r["asked_at"] <= r["at"] for r in rows)
    report = _ocsscale(pool, env, "report", "-f", "json", "-o", "-")
    assert report.returncode == 0, report.stderr
    model = json.loads(report.stdout)
    shown_answers = model["answers"]
    assert [(a["n"], a["by"], a["how"], a["answer"]) for a in shown_answers] == [
        (1, "Carol <on call>", "--yes on the command line", "yes"),
        (2, "Ann at the WebMux", "ocsscale answer", "done"),
        (3, "Bob", "ocsscale answer", "passed"),
    ]
    assert all(a["waited_s"] is not None for a in shown_answers)
    people = model["sign_offs"]
    assert (people["holds"], people["holds_skipped"], people["answers"]) == (1, 0, 3)
    assert people["waited_s"] == sum(a["waited_s"] for a in shown_answers)
    (tile,) = [t for t in model["summary"] if t["label"] == "sign-offs"]
    assert tile["value"].startswith("1 hold(s) for a sign-off; 3 answer(s); waited ")
    md = _ocsscale(pool, env, "report", "-f", "md", "-o", "-").stdout
    assert "| Bob | ocsscale answer |" in md
    html = _ocsscale(pool, env, "report", "-o", "-").stdout
    assert "Carol &lt;on call&gt;" in html and "Carol <on call>" not in html
    assert json.loads(_ocsscale(pool, env, "status", "--json").stdout)["waiting"] is None


def test_nobody_answers_within_the_timeout(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    result = subprocess.run(
        _cmd(local_pool, "run", "--playbook", _playbook(local_pool, hold=False), "--yes",
             "--answer-timeout", "1"),
        env=plugin_env, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0 and "nobody answered within 1 s" in said, said
    assert "Traceback" not in said
    assert not (local_pool.state_dir / "waiting.json").exists()


def test_without_a_terminal_or_timeout_a_question_is_refused_at_once(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    started = time.monotonic()
    result = subprocess.run(
        _cmd(local_pool, "run", "--playbook", _playbook(local_pool, hold=False), "--yes"),
        env=plugin_env, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    said = " ".join(result.stderr.split())
    assert result.returncode == 1, said  # the step fails, as it did before --answer-timeout
    assert "standard input is not a terminal: run it from a terminal" in said
    assert time.monotonic() - started < 30
    assert not (local_pool.state_dir / "waiting.json").exists()


def test_a_garbled_or_stale_question_is_refused(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    pool, env = local_pool, plugin_env
    journal = Journal.open(pool.state_dir)  # a run happened: status reads its journal
    detail = {"pool": "pool.lab.test", "playbook": "p", "phases": [], "selected": []}
    journal.start_run("r1", "run", "u", "h", 1, detail)
    journal.finish_run("r1", "done")
    journal.close()
    waiting = pool.state_dir / "waiting.json"
    waiting.write_text('{"id": "\x1b[2J SECRET-VALUE"')
    for args in (("answer",), ("answer", "done"), ("answer", "--json")):
        result = _ocsscale(pool, env, *args)
        assert result.returncode == 2, result.stderr
        assert "is not JSON ocsscale wrote: refused" in result.stderr
        assert "SECRET-VALUE" not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr
    status = _ocsscale(pool, env, "status", "--json")
    assert status.returncode == 0 and "refused" in json.loads(status.stdout)["waiting"]["error"]

    gone = subprocess.Popen(["true"])
    gone.wait()
    question = {
        "id": "a" * 32,
        "run_pid": gone.pid,
        "asked_at": "2026-01-01T00:00:00+00:00",
        "step": "configure-lb/farm",
        "question": "Type done",
        "choices": ["done", "abort"],
        "notes": False,
        "checklist": None,
    }
    waiting.write_text(json.dumps(question))
    result = _ocsscale(pool, env, "answer", "done")
    assert result.returncode == 2 and "is gone: nothing was answered" in result.stderr
    assert json.loads(_ocsscale(pool, env, "answer", "--json").stdout)["stale"] is True
    assert "a run that is gone" in " ".join(_ocsscale(pool, env, "status").stdout.split())


class Terminal:
    """`ocsscale run` on a pty: what it prints, and keys typed at it."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.leader, follower = pty.openpty()
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=REPO, stdin=follower, stdout=follower, stderr=follower,
            start_new_session=True,
        )  # fmt: skip
        os.close(follower)
        self.out = b""

    def expect(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.out and time.monotonic() < deadline:
            try:
                self.out += os.read(self.leader, 4096)
            except OSError:
                break
        assert text.encode() in self.out, self.out.decode(errors="replace")

    def type(self, keys: bytes) -> None:
        os.write(self.leader, keys)

    def finish(self) -> int:
        try:
            code = self.proc.wait(timeout=60)
            while True:
                try:
                    chunk = os.read(self.leader, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.out += chunk
            return code
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            os.close(self.leader)

    @property
    def text(self) -> str:
        return self.out.decode(errors="replace")


def _at_terminal(pool: LocalPool, env: dict[str, str], *extra: str) -> Terminal:
    cmd = _cmd(pool, "run", "--playbook", _playbook(pool, hold=False), "--yes", "-v", *extra)
    return Terminal(cmd, env)


@pytest.mark.parametrize("first", ["other-terminal", "own-terminal"])
def test_at_the_terminal_the_first_answer_wins(
    local_pool: LocalPool, plugin_env: dict[str, str], first: str
) -> None:
    pool, env = local_pool, plugin_env
    term = _at_terminal(pool, env, "--operator", "Dave")
    term.expect("Type done when entered (done, abort): ")
    if first == "other-terminal":
        given = _ocsscale(pool, env, "answer", "done", "--by", "carol")
        assert given.returncode == 0, given.stderr
    else:
        term.type(b"done\n")
    assert term.finish() == 0, term.text
    rows = _answers(pool)
    if first == "other-terminal":
        assert "answered from another terminal by carol: done" in term.text
        assert [(r["by"], r["via"]) for r in rows] == [("Dave", "flag"), ("carol", "answer")]
    else:
        # what is typed at the run's terminal is journaled as the --operator's
        assert [(r["by"], r["via"]) for r in rows] == [("Dave", "flag"), ("Dave", "terminal")]
        late = _ocsscale(pool, env, "answer", "done")
        assert late.returncode == 2 and "nothing waits" in late.stderr


def test_ctrl_c_at_the_question_declines_as_before(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    term = _at_terminal(local_pool, plugin_env)
    term.expect("Type done when entered (done, abort): ")
    term.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends (the pty is not its tty)
    # as with the plain prompt before: Declined, the step fails (journal kept)
    assert term.finish() == 1, term.text
    assert "validate-fe/ask failed: the operator gave no answer" in term.text
    assert not (local_pool.state_dir / "waiting.json").exists()
