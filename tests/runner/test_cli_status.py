"""`ocsscale status` as an operator reads it: every step by its full id, and
a run that was killed shown as such, not as still running."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess

from ocsscale.runner import session
from ocsscale.runner.events import discard
from ocsscale.runner.journal import Journal

from .conftest import PYTHON, REPO, LocalPool

PLAYBOOK = """\
version: 1
phases:
  - id: validate-fe
    title: Validate [per front end]
    section: test
    steps:
      - id: pin
        action: hosts.pin
        foreach: test_clients
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}", address: 198.18.0.41}
"""


def _run_in_process(pool: LocalPool) -> None:
    (pool.dir / "playbook.yaml").write_text(PLAYBOOK)
    prepared = session.prepare(pool.pool, pool.dir / "playbook.yaml")
    session.execute_run(session.gate_run(prepared, prepared.plan.phases), discard, command="test")


def _status(pool: LocalPool, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PYTHON), "-m", "ocsscale", "-c", str(pool.pool), "status", *args],
        env={**env, "COLUMNS": "250"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_status_tables_show_step_ids_with_their_labels(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    _run_in_process(local_pool)
    result = _status(local_pool, plugin_env)
    assert result.returncode == 0, result.stderr
    assert "Validate [per front end]" in result.stdout
    for client in ("client01", "client02"):
        assert f"validate-fe/pin[{client}]" in result.stdout
        assert f"pin pool.lab.test -> 198.18.0.41 in {local_pool.dir}/hosts-{client}" in (
            result.stdout
        )
    assert json.loads(_status(local_pool, plugin_env, "--json").stdout)["last_run"]["status"] == (
        "done"
    )


def test_a_killed_run_is_shown_as_interrupted_not_running(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    # what SIGKILL leaves: a run recorded as started, never finished, no lock
    journal = Journal.open(local_pool.state_dir)
    try:
        journal.start_run("killed-run", "run", "ops", "elsewhere", 999999, {"phases": []})
    finally:
        journal.close()
    shown = _status(local_pool, plugin_env)
    assert "last run killed-run: interrupted" in shown.stdout, shown.stdout
    assert "cut short" in shown.stdout
    assert json.loads(_status(local_pool, plugin_env, "--json").stdout)["last_run"]["status"] == (
        "interrupted"
    )
    # the next run, holding the lock, records that in the journal itself
    _run_in_process(local_pool)
    journal = Journal.open(local_pool.state_dir)
    try:
        statuses = {r["run_id"]: r["status"] for r in journal.runs()}
    finally:
        journal.close()
    assert statuses.pop("killed-run") == "interrupted"
    assert list(statuses.values()) == ["done"]


CANCELLING = """\
version: 1
phases:
  - id: validate-fe
    title: Validate
    section: test
    steps:
      - id: pin
        action: hosts.pin
        foreach: test_clients
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}", address: 198.18.0.41}
    cleanup:
      - id: unpin
        action: hosts.unpin
        foreach: test_clients
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}"}
  - id: cutover
    title: Cutover
    section: test
    steps:
      - id: mark
        action: test.mark
        args: {path: "@DIR@/marker", text: changed}
"""


def test_status_lists_what_rollback_reverts_and_counts_what_cancels_out(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    """validate-fe's pins and their unpins cancel out: rollback reverts none of them
    (it removes their backups), and status says the same, not four reverts more."""
    (local_pool.dir / "playbook.yaml").write_text(CANCELLING.replace("@DIR@", str(local_pool.dir)))
    prepared = session.prepare(local_pool.pool, local_pool.dir / "playbook.yaml")
    session.execute_run(session.gate_run(prepared, prepared.plan.phases), discard, command="test")
    report = json.loads(_status(local_pool, plugin_env, "--json").stdout)
    assert [e["step"] for e in report["rollback_would_undo"]] == ["cutover/mark"]
    cancelled = report["rollback_cancel_out"]
    assert sorted(e["step"] for e in cancelled) == [
        "validate-fe/pin[client01]",
        "validate-fe/pin[client02]",
        "validate-fe/unpin[client01]",
        "validate-fe/unpin[client02]",
    ]
    assert all("cancel out: nothing to put back" in e["reason"] for e in cancelled)
    text = " ".join(_status(local_pool, plugin_env).stdout.split())
    assert "1 change(s) to revert (4 more cancel out: only their backups are removed)" in text
    assert "cutover/mark" in text and "validate-fe/pin[client01]" not in text

    rolled = subprocess.run(
        [str(PYTHON), "-m", "ocsscale", "-c", str(local_pool.pool), "rollback", "--yes"],
        env={**plugin_env, "COLUMNS": "250"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    # rollback counts them as status did
    assert "1 change(s) to revert (4 more cancel out" in " ".join(rolled.stdout.split())
    report = json.loads(_status(local_pool, plugin_env, "--json").stdout)
    assert report["rollback_would_undo"] == report["rollback_cancel_out"] == []
    text = " ".join(_status(local_pool, plugin_env).stdout.split())
    assert "Rollback would undo nothing." in text


def _as_typed(command: str) -> list[str]:
    """A command `status` names, as the shell splits it, run with this checkout's
    interpreter (`ocsscale` is `python -m ocsscale`)."""
    argv = shlex.split(command)
    assert argv[0] == "ocsscale"
    return [str(PYTHON), "-m", "ocsscale", *argv[1:]]


def test_the_next_commands_status_names_run_as_shown(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    """Relative pool file and --playbook, as a user types them from the pool's
    directory: the next phase, a dead run's lock, then the report."""
    playbook = local_pool.dir / "playbook.yaml"
    playbook.write_text(CANCELLING.replace("@DIR@", str(local_pool.dir)))
    env = {**plugin_env, "COLUMNS": "250"}

    def ocsscale(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), env=env, cwd=local_pool.dir, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def first_next() -> str:
        shown = ocsscale(str(PYTHON), "-m", "ocsscale", "-c", "pool.yaml", "status", "--json")
        assert shown.returncode == 0, shown.stderr
        return str(json.loads(shown.stdout)["next"][0]["command"])

    first = ocsscale(
        str(PYTHON), "-m", "ocsscale", "-c", "pool.yaml", "run", "--phase", "validate-fe",
        "--playbook", "playbook.yaml", "--yes",
    )  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    command = first_next()
    assert command == f"ocsscale -c pool.yaml run --phase cutover --playbook {playbook}"
    shown = ocsscale(str(PYTHON), "-m", "ocsscale", "-c", "pool.yaml", "status").stdout
    assert f"where: validate-fe done; cutover has not started next: {command}" in " ".join(
        shown.split()
    )

    # a run killed under its lock: the lock is cleared first, with the command shown
    (local_pool.state_dir / "lock").write_text(
        json.dumps(
            {"lock_id": "0badc0de", "user": "ops", "host": socket.gethostname(),
             "pid": _dead_pid(), "started": 1.0, "command": "ocsscale run"}
        )
    )  # fmt: skip
    unlock = first_next()
    assert unlock == "ocsscale -c pool.yaml unlock 0badc0de"
    done = ocsscale(*_as_typed(unlock))
    assert done.returncode == 0, done.stdout + done.stderr

    assert first_next() == command
    ran = ocsscale(*_as_typed(command), "--yes")  # the go-ahead stays the person's
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (local_pool.dir / "marker").read_text() == "changed"
    assert first_next() == "ocsscale -c pool.yaml report"


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
