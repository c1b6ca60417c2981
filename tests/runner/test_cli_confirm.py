"""`run` and `rollback` ask before changing anything: no terminal and no --yes
is a usage error (2); answering no is exit 4; nothing changes either way."""

from __future__ import annotations

import json
import os
import pty
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import ORIGINAL_HOSTS, PYTHON, REPO, VALIDATE_HEAD, LocalPool

PLAYBOOK = (
    VALIDATE_HEAD
    + """\
      - id: pin
        action: hosts.pin
        args: {host: client01, name: "{{ pool.fqdn }}", address: 198.18.0.41}
"""
)


def _cmd(pool: LocalPool, *args: str) -> list[str]:
    (pool.dir / "playbook.yaml").write_text(PLAYBOOK)
    return [str(PYTHON), "-m", "ocsscale", "-c", str(pool.pool), *args]


def test_no_terminal_and_no_yes_is_a_usage_error(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    cmd = _cmd(local_pool, "run", "--playbook", str(local_pool.dir / "playbook.yaml"))
    result = subprocess.run(
        cmd,
        env=plugin_env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "pass --yes" in result.stderr
    assert local_pool.snapshot()["client01"] == ORIGINAL_HOSTS
    assert not (local_pool.state_dir / "lock").exists()


def _answer_at_the_prompt(pool: LocalPool, env: dict[str, str], answer: bytes, *extra: str) -> int:
    """Run `ocsscale run` on a terminal, type `answer` at its question, return its exit code."""
    cmd = _cmd(pool, "run", "--playbook", str(pool.dir / "playbook.yaml"), *extra)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        cmd, env=env, cwd=REPO, stdin=follower, stdout=follower, stderr=follower
    )
    os.close(follower)
    output = b""
    try:
        deadline = time.monotonic() + 60
        while b"[y/N]" not in output and time.monotonic() < deadline:
            try:
                output += os.read(leader, 4096)
            except OSError:
                break
        assert b"[y/N]" in output, output.decode(errors="replace")
        os.write(leader, answer)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)


@pytest.mark.parametrize("answer", [b"n\n", b"\x04"], ids=["no", "end-of-input"])
def test_answering_no_or_closing_the_input_is_exit_4_and_changes_nothing(
    local_pool: LocalPool, plugin_env: dict[str, str], answer: bytes
) -> None:
    assert _answer_at_the_prompt(local_pool, plugin_env, answer) == 4
    assert local_pool.snapshot()["client01"] == ORIGINAL_HOSTS
    assert not (local_pool.state_dir / "lock").exists()


def test_the_go_ahead_typed_is_journaled_with_the_operator(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    assert _answer_at_the_prompt(local_pool, plugin_env, b"y\n", "--operator", "Eve") == 0
    db = sqlite3.connect(local_pool.state_dir / "journal.sqlite")
    try:
        rows = db.execute("SELECT step, answer, by, via, asked_at, at FROM answers").fetchall()
        (detail,) = db.execute("SELECT detail FROM runs").fetchone()
    finally:
        db.close()
    ((step, answer, by, via, asked_at, at),) = rows
    assert (step, answer, by, via) == (None, "yes", "Eve", "terminal")
    assert asked_at and asked_at <= at
    assert json.loads(detail)["operator"] == "Eve"


@pytest.mark.parametrize("name", ["bad\x01name", "x" * 101, " "], ids=["control", "long", "empty"])
def test_an_operator_name_that_is_not_one_is_refused_before_anything(
    local_pool: LocalPool, plugin_env: dict[str, str], name: str
) -> None:
    cmd = _cmd(local_pool, "run", "--playbook", str(local_pool.dir / "playbook.yaml"))
    result = subprocess.run(
        [*cmd, "--yes", "--operator", name],
        env=plugin_env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "--operator is not a name of at most 100 characters" in result.stderr
    assert name.strip() == "" or name not in result.stderr  # never echoed back
    assert local_pool.snapshot()["client01"] == ORIGINAL_HOSTS
    assert not (local_pool.state_dir / "journal.sqlite").exists()


HELP_PROMISES = {
    # command: (an example of it, what it says it changes, exit codes it names)
    "check": ("ocsscale -c examples/one-armed.yaml check", "nothing is contacted", "2 when not"),
    "init": ("ocsscale init -o pool.yaml", "Only that one file is written", "2 the file exists"),
    "profiles": ("ocsscale profiles show", "changes nothing", "2 no such profile"),
    "profiles show": ("ocsscale profiles show ocs2007r2", "", "2 no such profile"),
    "plan": ("ocsscale plan --phase validate-fe", "Changes nothing", "2 the pool file"),
    "run": ("ocsscale run --phase preflight", "pinned in the hosts files", "4 the operator"),
    "status": ("ocsscale status --json", "Changes nothing", "2 the journal or lock"),
    "rollback": ("ocsscale rollback --to cutover", "byte for byte", "3 another run holds"),
    "unlock": ("ocsscale unlock 1f2e3d4c", "nothing else is changed", "3 its run is still"),
    "answer": (
        "ocsscale answer pass --by Bob",
        "Changes nothing but the answer file",
        "2 not one of the choices",
    ),
}


def test_help_of_each_command_teaches_with_examples_changes_and_exit_codes(
    plugin_env: dict[str, str],
) -> None:
    for command, (example, changes, exit_code) in HELP_PROMISES.items():
        result = subprocess.run(
            [str(PYTHON), "-m", "ocsscale", *command.split(), "--help"],
            env={**plugin_env, "COLUMNS": "300"},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        text = " ".join(result.stdout.split())  # help is wrapped to the terminal
        assert example in text, command
        assert changes in text, command
        assert "Exit codes: 0" in text or "Exit code 0" in text, command
        assert exit_code in text, command


def test_status_before_any_run(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(PYTHON), "-m", "ocsscale", "-c", str(tmp_path / "pool.yaml"), "status"],
        env=plugin_env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Nothing has run yet" in result.stdout
