"""`run` and `rollback` ask before changing anything: no terminal and no --yes
is a usage error (2); answering no is exit 4; nothing changes either way."""

from __future__ import annotations

import os
import pty
import subprocess
import time
from pathlib import Path

from .conftest import ORIGINAL_HOSTS, PYTHON, REPO, LocalPool

PLAYBOOK = """\
version: 1
phases:
  - id: validate-fe
    title: Validate
    section: test
    steps:
      - id: pin
        action: hosts.pin
        args: {host: client01, name: "{{ pool.fqdn }}", address: 198.18.0.41}
"""


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


def test_answering_no_is_exit_4_and_changes_nothing(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    cmd = _cmd(local_pool, "run", "--playbook", str(local_pool.dir / "playbook.yaml"))
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        cmd, env=plugin_env, cwd=REPO, stdin=follower, stdout=follower, stderr=follower
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
        os.write(leader, b"n\n")
        assert proc.wait(timeout=60) == 4
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    assert local_pool.snapshot()["client01"] == ORIGINAL_HOSTS
    assert not (local_pool.state_dir / "lock").exists()


def test_help_of_each_command_documents_the_exit_codes(plugin_env: dict[str, str]) -> None:
    for command in ("plan", "run", "status", "rollback", "unlock"):
        result = subprocess.run(
            [str(PYTHON), "-m", "ocsscale", command, "--help"],
            env={**plugin_env, "COLUMNS": "300"},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0
        text = " ".join(result.stdout.split())  # help is wrapped to the terminal
        assert "3 another run holds the lock" in text, command
        assert "4 the operator declined" in text, command


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
