"""The journal is evidence: `status`, `report`, `run` and `rollback` never take a
missing, empty or garbled journal for "nothing has run", never write it, and
never start a rollback whose undo records they cannot all use.

A real run (the local transport, a hosts file per host) makes the journal;
the commands run as `ocsscale` subprocesses, as an operator runs them.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest

from ocsscale.errors import UndoRecordError
from ocsscale.runner import session
from ocsscale.runner.events import discard

from .conftest import ORIGINAL_HOSTS, PYTHON, REPO, LocalPool

PLAYBOOK = """\
version: 1
phases:
  - id: validate-fe
    title: Validate the front ends
    section: test
    steps:
      - id: pin
        action: hosts.pin
        foreach: "front_ends + test_clients"
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}", address: 198.18.0.41}
"""

PINNED = ("fe01", "fe02", "client01", "client02")


def _run_in_process(pool: LocalPool) -> None:
    (pool.dir / "playbook.yaml").write_text(PLAYBOOK)
    prepared = session.prepare(pool.pool, pool.dir / "playbook.yaml")
    gate = session.gate_run(prepared, prepared.plan.phases)
    session.execute_run(gate, discard, command="test", options={"forks": 1})


def _cli(pool: LocalPool, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PYTHON), "-m", "ocsscale", "-c", str(pool.pool), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


#: each command an operator may run next, as a non-interactive one
COMMANDS = {
    "status": ["status"],
    "status --json": ["status", "--json"],
    "rollback": ["rollback", "--yes"],
    "run": ["run", "--yes", "--no-hold", "--playbook", "PLAYBOOK"],
    "report": ["report"],
}


def _command(pool: LocalPool, name: str) -> list[str]:
    (pool.dir / "playbook.yaml").write_text(PLAYBOOK)
    return [str(pool.dir / "playbook.yaml") if a == "PLAYBOOK" else a for a in COMMANDS[name]]


def _fingerprint(path: Path) -> tuple[int, str] | None:
    if not path.exists():
        return None
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def _hosts(pool: LocalPool) -> dict[str, bytes]:
    return {h: pool.hosts_file(h).read_bytes() for h in PINNED}


def _refused(result: subprocess.CompletedProcess[str], *said: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "debug.log" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and len(lines) <= 2, lines  # the error, its hint
    assert "nothing was" in lines[0] and "changed" in lines[0], lines[0]
    for text in said:
        assert text in lines[0], lines[0]


# -- missing or empty, next to the evidence of a run -------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_an_emptied_journal_next_to_a_runs_evidence_is_refused(
    local_pool: LocalPool, plugin_env: dict[str, str], command: str
) -> None:
    _run_in_process(local_pool)
    state = local_pool.state_dir
    (state / "failover-procedure.md").write_text("# Responding to a failed front end\n")
    journal = state / "journal.sqlite"
    journal.write_bytes(b"")
    hosts = _hosts(local_pool)
    result = _cli(local_pool, plugin_env, *_command(local_pool, command))
    _refused(result, "is empty", "the failover procedure")
    assert _fingerprint(journal) == (0, hashlib.sha256(b"").hexdigest())  # not a byte written
    assert sorted(p.name for p in state.iterdir()) == ["failover-procedure.md", "journal.sqlite"]
    assert _hosts(local_pool) == hosts  # still pinned: nothing run, nothing reverted


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("evidence", ["report", "wal"])
def test_a_deleted_journal_next_to_a_runs_evidence_is_refused(
    local_pool: LocalPool, plugin_env: dict[str, str], command: str, evidence: str
) -> None:
    _run_in_process(local_pool)
    state = local_pool.state_dir
    if evidence == "report":  # a report of the run, made before the journal went
        assert _cli(local_pool, plugin_env, "report").returncode == 0
    else:  # what a run killed with its journal open leaves beside it
        (state / "journal.sqlite-wal").write_bytes(b"\x37\x7f\x06\x82" + bytes(28))
    (state / "journal.sqlite").unlink()
    before = {p.name: _fingerprint(p) for p in state.iterdir()}
    result = _cli(local_pool, plugin_env, *_command(local_pool, command))
    _refused(result, "is not there", "a report" if evidence == "report" else "write-ahead log")
    assert {p.name: _fingerprint(p) for p in state.iterdir()} == before  # nothing created


def test_no_journal_and_no_evidence_is_nothing_has_run_yet(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    """A crash log and a report of the plan alone say nothing of a run."""
    assert _cli(local_pool, plugin_env, "report").returncode == 0  # before any run
    state = local_pool.state_dir
    (state / "debug.log").write_text("=== a crash of `ocsscale plan`\n")
    status = _cli(local_pool, plugin_env, "status")
    assert status.returncode == 0 and "Nothing has run yet" in status.stdout, status.stderr
    rollback = _cli(local_pool, plugin_env, "rollback", "--yes")
    assert rollback.returncode == 0 and "Nothing to roll back" in rollback.stdout
    assert not (state / "journal.sqlite").exists()  # neither made one
    # an empty journal alone (a run killed as it created it) is nothing either
    (state / "journal.sqlite").write_bytes(b"")
    status = _cli(local_pool, plugin_env, "status")
    assert status.returncode == 0 and "Nothing has run yet" in status.stdout, status.stderr
    assert (state / "journal.sqlite").stat().st_size == 0
    # and a run then starts afresh in it
    run = _cli(local_pool, plugin_env, *_command(local_pool, "run"))
    assert run.returncode == 0, run.stderr
    assert all(b"198.18.0.41" in data for data in _hosts(local_pool).values())


# -- garbled -----------------------------------------------------------------------


def _garble(state: Path, how: str) -> None:
    path = state / "journal.sqlite"
    if how == "random bytes":
        path.write_bytes(random.Random(16).randbytes(8192))
    elif how == "an SQLite file with a foreign table":
        path.unlink()
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO customers (name) VALUES ('HOSTILE-NAME')")
        db.commit()
        db.close()
    elif how == "entries of another shape":
        db = sqlite3.connect(path)
        db.execute("ALTER TABLE entries RENAME COLUMN undo TO undone")
        db.commit()
        db.close()
    else:  # a row whose JSON is not JSON
        db = sqlite3.connect(path)
        db.execute("UPDATE entries SET undo = '{\"host\": HOSTILE' WHERE seq = 2")
        db.commit()
        db.close()


@pytest.mark.parametrize("command", ["status", "rollback", "run", "report"])
@pytest.mark.parametrize(
    "how",
    [
        "random bytes",
        "an SQLite file with a foreign table",
        "entries of another shape",
        "a row that is not JSON",
    ],
)
def test_a_garbled_journal_is_refused_and_left_as_it_is(
    local_pool: LocalPool, plugin_env: dict[str, str], command: str, how: str
) -> None:
    _run_in_process(local_pool)
    _garble(local_pool.state_dir, how)
    journal = local_pool.state_dir / "journal.sqlite"
    before = _fingerprint(journal)
    hosts = _hosts(local_pool)
    result = _cli(local_pool, plugin_env, *_command(local_pool, command))
    _refused(result, f"the journal {journal}")
    assert "HOSTILE" not in result.stderr
    assert _fingerprint(journal) == before
    assert not (local_pool.state_dir / "report.html").exists()
    assert _hosts(local_pool) == hosts


# -- read-only readers ---------------------------------------------------------------


def test_status_and_report_never_write_the_journal_even_an_older_one(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    """A journal an older ocsscale wrote (no `hosts`, no `load` column) is read
    as it is: the columns are not added, not a byte changes."""
    _run_in_process(local_pool)
    journal = local_pool.state_dir / "journal.sqlite"
    db = sqlite3.connect(journal)
    db.execute("ALTER TABLE entries DROP COLUMN hosts")
    db.execute("ALTER TABLE runs DROP COLUMN load")
    db.commit()
    db.close()
    before = _fingerprint(journal)
    status = _cli(local_pool, plugin_env, "status", "--json")
    assert status.returncode == 0, status.stderr
    undo = json.loads(status.stdout)["rollback_would_undo"]
    assert [e["step"] for e in undo] == [f"validate-fe/pin[{h}]" for h in reversed(PINNED)]
    assert _cli(local_pool, plugin_env, "status").returncode == 0
    report = _cli(local_pool, plugin_env, "report", "-f", "json", "-o", "-")
    assert report.returncode == 0, report.stderr
    assert len(json.loads(report.stdout)["rollback"]) == len(PINNED)
    assert _fingerprint(journal) == before
    db = sqlite3.connect(f"{journal.as_uri()}?mode=ro", uri=True)
    assert "hosts" not in {r[1] for r in db.execute("PRAGMA table_info(entries)")}
    db.close()


# -- undo records of the wrong shape ----------------------------------------------------


def _entries(pool: LocalPool) -> list[dict[str, object]]:
    db = sqlite3.connect(pool.state_dir / "journal.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM entries ORDER BY seq")]
    finally:
        db.close()


def _spoil(pool: LocalPool, seq: int, spoil: str) -> None:
    db = sqlite3.connect(pool.state_dir / "journal.sqlite")
    (text,) = db.execute("SELECT undo FROM entries WHERE seq = ?", (seq,)).fetchone()
    undo = json.loads(text)
    if spoil == "a key missing":
        del undo["original_b64"]
    elif spoil == "not base64":
        undo["original_b64"] = "HOSTILE not base64 !!"
    elif spoil == "another host":
        undo["host"] = "fe00"
    else:
        undo = ["not", "an", "object"]
    db.execute("UPDATE entries SET undo = ? WHERE seq = ?", (json.dumps(undo), seq))
    db.commit()
    db.close()


@pytest.mark.parametrize("spoil", ["a key missing", "not base64", "another host", "a list"])
def test_a_bad_undo_record_in_the_middle_stops_rollback_before_any_revert(
    local_pool: LocalPool, plugin_env: dict[str, str], spoil: str
) -> None:
    _run_in_process(local_pool)
    entries = _entries(local_pool)
    middle = entries[1]  # newer ones (#3, #4) would be reverted first
    _spoil(local_pool, int(middle["seq"]), spoil)  # type: ignore[call-overload]
    hosts = _hosts(local_pool)
    for _attempt in range(2):  # and so on every retry: refused, never half done
        result = _cli(local_pool, plugin_env, "rollback", "--yes")
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and "HOSTILE" not in result.stderr
        first = result.stderr.splitlines()[0]
        assert f"{middle['step_id']} (#{middle['seq']})" in first, first
        assert "nothing was reverted" in first
    after = _entries(local_pool)
    assert [e["status"] for e in after] == ["done"] * len(PINNED)  # #3 and #4 too
    assert all(e["rollback_id"] is None for e in after)
    assert _hosts(local_pool) == hosts
    assert all(b"198.18.0.41" in data for data in hosts.values())


def test_rollback_checks_the_records_again_under_the_lock(local_pool: LocalPool) -> None:
    """A record spoiled after the gate read the journal is caught before the first revert."""
    _run_in_process(local_pool)
    gate = session.prepare_rollback(local_pool.pool)
    assert len(gate.pending) == len(PINNED)
    _spoil(local_pool, 2, "a key missing")
    hosts = _hosts(local_pool)
    with pytest.raises(UndoRecordError, match=r"validate-fe/pin\[fe02\] \(#2\)"):
        session.execute_rollback(gate, discard, command="test", forks=1)
    assert [e["status"] for e in _entries(local_pool)] == ["done"] * len(PINNED)
    assert _hosts(local_pool) == hosts
    # what a clean record gives: the rollback goes through once it is put right
    db = sqlite3.connect(local_pool.state_dir / "journal.sqlite")
    db.execute("DELETE FROM entries WHERE seq = 2")
    db.commit()
    db.close()
    session.execute_rollback(session.prepare_rollback(local_pool.pool), discard, command="t")
    for host in ("fe01", "client01", "client02"):
        assert local_pool.hosts_file(host).read_bytes() == ORIGINAL_HOSTS


def test_a_stale_lock_beside_no_journal_is_named_so_it_can_be_cleared(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    """A run killed after it took the lock and before its journal: status says
    so with the LOCK_ID; once `unlock` clears it, nothing has run."""
    state = local_pool.state_dir
    state.mkdir(mode=0o700)
    lock = {
        "lock_id": "1f2e3d4c",
        "user": "ops",
        "host": socket.gethostname(),
        "pid": 999_999_999,
        "started": 1.0,
        "command": "ocsscale run",
    }
    (state / "lock").write_text(json.dumps(lock))
    status = _cli(local_pool, plugin_env, "status")
    _refused(status, "is not there", "a run's lock, LOCK_ID 1f2e3d4c")
    assert _cli(local_pool, plugin_env, "unlock", "1f2e3d4c").returncode == 0
    status = _cli(local_pool, plugin_env, "status")
    assert status.returncode == 0 and "Nothing has run yet" in status.stdout, status.stderr
