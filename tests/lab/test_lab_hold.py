"""The operator's hold in validate-fe: the run waits, with the pins in place, for
the sign-off of the walkthrough's client tests, typed at a real terminal.

The tool runs under a pseudo-terminal (os.openpty), as an operator would run
it, and the test answers its prompts. One front end and one client, so each
run holds once.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from .conftest import RunningLab
from .fe_support import (
    assert_untouched,
    entries,
    hosts_files,
    nothing_to_undo,
    output,
    pool_copy,
    tool,
)

pytestmark = pytest.mark.lab

WHO = "Who signs off (your name)"
RESULT = "Result of the client tests through ocsfe01"
NOTES = "Notes (what was tested, what did not work)"
#: a bound on waiting for the tool, so a broken run fails the test instead of hanging it
PATIENCE = 240.0
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class Terminal:
    """The tool on the slave side of a pty; the test types on the master side."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        # a wide terminal, so Rich does not wrap the lines the test looks for
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 250, 0, 0))
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.text = ""
        self.at = 0  # what expect() has already matched

    def _read(self, wait: float) -> bool:
        """Read what the tool wrote; False once the tool closed the terminal."""
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every slave descriptor is closed
            return False
        self.text += _ANSI.sub("", data.decode("utf-8", "replace"))
        return bool(data)

    def expect(self, wanted: str) -> None:
        deadline = time.monotonic() + PATIENCE
        while (found := self.text.find(wanted, self.at)) < 0:
            if time.monotonic() > deadline or not self._read(1.0):
                raise AssertionError(f"{wanted!r} never came; the terminal shows:\n{self.text}")
        self.at = found + len(wanted)

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def end_of_input(self) -> None:
        os.write(self.master, b"\x04")  # Ctrl-D at the start of a line

    def finish(self) -> int:
        deadline = time.monotonic() + PATIENCE
        while self._read(1.0) and time.monotonic() < deadline:
            pass
        try:
            return self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            os.close(self.master)


def _at_terminal(lab: RunningLab, pool: Path, *args: str) -> Terminal:
    bin_dir = lab.state.bin_dir
    env = {
        **os.environ,
        "TERM": "xterm",
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }
    env.pop("COLUMNS", None)
    argv = ["ip", "netns", "exec", lab.topo.ns("admin"), str(bin_dir / "ocsscale")]
    return Terminal([*argv, "-c", str(pool), *args], env)


def _pool(lab: RunningLab, tmp_path: Path) -> Path:
    return pool_copy(lab, tmp_path, front_ends=["ocsfe01"], test_clients=["client01"])


def _pinned_to_ocsfe01(lab: RunningLab) -> bool:
    files = hosts_files(lab)
    pin = f"{lab.address('ocsfe01')} ocspool.lab.test".encode()
    return all(pin in files[h] for h in ("ocsfe01", "client01"))


def _rollback(lab: RunningLab, pool: Path, before: dict[str, bytes]) -> None:
    rolled = tool(lab, pool, "rollback", "--yes")
    assert rolled.returncode == 0, output(rolled)
    assert_untouched(lab, before)
    assert nothing_to_undo(pool)


def _report(lab: RunningLab, pool: Path) -> dict:
    shown = tool(lab, pool, "report", "-f", "json", "-o", "-")
    assert shown.returncode == 0, output(shown)
    return json.loads(shown.stdout)


def _hold_evidence(pool: Path) -> dict:
    (hold,) = [e for e in entries(pool) if e["step_id"] == "validate-fe/hold[ocsfe01]"]
    return hold


def test_passed_sign_off_at_the_terminal_is_journaled(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    pool = _pool(lab, tmp_path)
    before = hosts_files(lab)
    term = _at_terminal(lab, pool, "run", "--phase", "validate-fe", "--yes")
    term.expect("Client tests through ocsfe01")
    for item in ("Sign in to Office Communicator", "IM:", "Voice:", "Video:", "Desktop sharing:"):
        term.expect(item)
    term.expect("schedule a Live Meeting conference with Outlook")
    term.expect(WHO)
    # the hold is where the walkthrough wants it: the probes passed, the pins are in place
    assert _pinned_to_ocsfe01(lab)
    assert all(e["status"] == "done" for e in entries(pool) if "/probe[" in e["step_id"])
    term.type("")  # no name is no sign-off: asked again
    term.expect(WHO)
    time.sleep(1.5)  # the testers at work: the report shows the run waited for them
    term.type("Alice Operator")
    term.expect(RESULT)
    term.type("passed")
    term.expect(NOTES)
    term.type("IM, voice, video, sharing and Live Meeting all fine")
    assert term.finish() == 0, term.text
    assert "client tests: passed, signed off by Alice Operator" in term.text

    hold = _hold_evidence(pool)
    assert hold["status"] == "done"
    signed = hold["evidence"]["sign_off"]
    assert (signed["by"], signed["result"]) == ("Alice Operator", "passed")
    assert signed["notes"] == "IM, voice, video, sharing and Live Meeting all fine"
    assert hold["evidence"]["pinned"] == ["ocsfe01"]
    assert any("Desktop sharing" in s for s in hold["evidence"]["shown"]["steps"])
    assert_untouched(lab, before)  # the phase's cleanup removed the pins after the sign-off
    # the report's sign-off table: the go-ahead (--yes), then the sign-off, in order
    model = _report(lab, pool)
    assert [(a["n"], a["answer"], a["by"], a["how"]) for a in model["answers"]] == [
        (1, "yes", model["answers"][0]["by"], "--yes on the command line"),
        (2, "passed", "Alice Operator", "at the run's terminal"),
    ]
    assert model["answers"][1]["notes"] == "IM, voice, video, sharing and Live Meeting all fine"
    assert model["answers"][1]["waited_s"] >= 1
    assert model["sign_offs"]["waited_s"] >= 1
    assert (model["sign_offs"]["holds"], model["sign_offs"]["holds_skipped"]) == (1, 0)
    _rollback(lab, pool, before)


def test_failed_sign_off_stops_the_phase_and_the_pins_go(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    pool = _pool(lab, tmp_path)
    before = hosts_files(lab)
    term = _at_terminal(lab, pool, "run", "--phase", "validate-fe", "--yes")
    term.expect(WHO)
    term.type("Bob")
    term.expect(RESULT)
    term.type("failed")
    term.expect(NOTES)
    term.type("video froze after a minute")
    assert term.finish() == 1, term.text
    expected = (
        "the client tests through ocsfe01 (198.18.0.41) failed, signed off by Bob: "
        "video froze after a minute"
    )
    assert expected in " ".join(term.text.split())
    assert _hold_evidence(pool)["status"] == "failed"
    assert_untouched(lab, before)
    _rollback(lab, pool, before)


@pytest.mark.parametrize("how", ["end-of-input", "timeout"])
def test_a_hold_cut_short_leaves_the_pins_to_the_cleanup(
    one_armed_lab: RunningLab, tmp_path: Path, how: str
) -> None:
    lab = one_armed_lab
    pool = _pool(lab, tmp_path)
    before = hosts_files(lab)
    extra = ["--hold-timeout", "1"] if how == "timeout" else []
    term = _at_terminal(lab, pool, "run", "--phase", "validate-fe", "--yes", *extra)
    term.expect(WHO)
    if how == "end-of-input":
        term.end_of_input()
    assert term.finish() == 1, term.text
    said = " ".join(term.text.split())
    if how == "timeout":
        assert "timed out without a sign-off; the phase's cleanup removes the pins" in said
    else:
        assert "was interrupted before a sign-off; the phase's cleanup removes the pins" in said
    assert_untouched(lab, before)
    _rollback(lab, pool, before)


def test_without_a_terminal_the_hold_is_refused_before_anything_changes(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    pool = _pool(lab, tmp_path)
    before = hosts_files(lab)
    result = tool(lab, pool, "run", "--phase", "validate-fe", "--yes")
    assert result.returncode == 2, output(result)
    assert "holds for the operator's sign-off of the client tests" in result.stderr
    assert "pass --no-hold to run it unattended (nothing was changed)" in result.stderr
    assert_untouched(lab, before)
    assert not (pool.parent / ".ocsscale" / "journal.sqlite").exists()


def test_no_hold_runs_unattended_and_says_so(one_armed_lab: RunningLab, tmp_path: Path) -> None:
    lab = one_armed_lab
    pool = _pool(lab, tmp_path)
    before = hosts_files(lab)
    result = tool(lab, pool, "run", "--phase", "validate-fe", "--yes", "--no-hold")
    assert result.returncode == 0, output(result)
    assert "client tests: skipped: --no-hold" in result.stdout
    hold = _hold_evidence(pool)
    assert hold["status"] == "done" and hold["evidence"]["skipped"] == "--no-hold"
    assert "sign_off" not in hold["evidence"]
    model = _report(lab, pool)
    assert (model["sign_offs"]["holds"], model["sign_offs"]["holds_skipped"]) == (0, 1)
    assert [a["answer"] for a in model["answers"]] == ["yes"]  # the go-ahead, no sign-off
    md = tool(lab, pool, "report", "-f", "md", "-o", "-").stdout
    assert "1 hold(s) for the client tests were skipped (`--no-hold`)" in md
    _rollback(lab, pool, before)
