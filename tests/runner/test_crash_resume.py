"""A real `ocsscale run` killed with SIGKILL between steps, resumed, then rolled back.

The hosts are driven by the local transport with a hosts file each in the
test's directory; the plugin module (tests/runner/testplugin) is loaded
through OCSSCALE_PLUGINS, the documented plugin hook.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

from .conftest import ORIGINAL_HOSTS, PYTHON, REPO, LocalPool

PLAYBOOK = """\
version: 1
phases:
  - id: preflight
    title: Preflight
    section: test
    steps:
      - id: pool-file
        action: pool.check
  - id: validate-fe
    title: Validate the front ends
    section: test
    steps:
      - group: per-fe
        foreach: front_ends
        as: fe
        steps:
          - id: pin
            action: hosts.pin
            foreach: "[fe] + test_clients"
            as: host
            args:
              host: "{{ host.name }}"
              name: "{{ pool.fqdn }}"
              address: "{{ fe.address }}"
          - id: restart
            action: host.restart_services
            args: {host: "{{ fe.name }}"}
          - id: wait
            action: test.wait
            when: "fe.name == 'fe01'"
            args: {release: "@DIR@/release", log: "@DIR@/wait.log", timeout: 60}
    cleanup:
      - id: unpin
        action: hosts.unpin
        foreach: "front_ends + test_clients"
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}"}
  - id: cutover
    title: Cut over
    section: test
    steps:
      - id: pin
        action: hosts.pin
        foreach: test_clients
        as: host
        args:
          host: "{{ host.name }}"
          name: "{{ pool.fqdn }}"
          address: "{{ vip_address }}"
      - id: mark
        action: test.mark
        args: {path: "@DIR@/marker", text: cut over, log: "@DIR@/mark.log"}
"""

FE01_STEPS = [
    "validate-fe/pin[fe01@fe01]",
    "validate-fe/pin[fe01@client01]",
    "validate-fe/pin[fe01@client02]",
    "validate-fe/restart[fe01]",
]


def _ocsscale(pool: LocalPool, env: dict[str, str], *args: str) -> list[str]:
    return [
        str(PYTHON),
        "-m",
        "ocsscale",
        "-c",
        str(pool.pool),
        *args,
        "--playbook",
        str(pool.dir / "playbook.yaml"),
    ]


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def _entries(pool: LocalPool) -> list[dict[str, object]]:
    db = sqlite3.connect(pool.state_dir / "journal.sqlite", timeout=30)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM entries ORDER BY seq")]
    finally:
        db.close()


def _wait_for(predicate, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the run to reach the kill point")


def _done(pool: LocalPool, step: str) -> bool:
    if not (pool.state_dir / "journal.sqlite").exists():
        return False
    try:
        return any(e["step_id"] == step and e["status"] == "done" for e in _entries(pool))
    except sqlite3.OperationalError:  # the schema is still being created
        return False


def test_killed_run_resumes_without_redoing_and_rollback_restores_bytes(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    pool = local_pool
    (pool.dir / "playbook.yaml").write_text(PLAYBOOK.replace("@DIR@", str(pool.dir)))
    original = pool.snapshot()
    assert all(v == ORIGINAL_HOSTS for v in original.values())

    # 1. start a real run and SIGKILL it while it waits inside fe01's last step
    proc = subprocess.Popen(
        _ocsscale(pool, plugin_env, "run", "--yes"),
        env=plugin_env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for(
            lambda: (
                _done(pool, FE01_STEPS[-1])
                and (pool.dir / "wait.log").exists()
                or proc.poll() is not None
            )
        )
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    first = _entries(pool)
    first_run = {e["step_id"]: e for e in first}
    assert all(first_run[s]["status"] == "done" for s in FE01_STEPS)
    assert first_run["validate-fe/wait[fe01]"]["status"] == "applying"
    pinned = pool.snapshot()
    assert b"pool.lab.test" in pinned["client01"] and b"198.18.0.41" in pinned["client01"]

    # 2. the killed run's lock is stale: a new run is refused with the unlock hint
    refused = _run(_ocsscale(pool, plugin_env, "run", "--yes"), plugin_env)
    assert refused.returncode == 3, refused.stderr
    lock = json.loads((pool.state_dir / "lock").read_text())
    assert "stale" in refused.stderr
    assert f"ocsscale unlock {lock['lock_id']}" in refused.stderr
    status = _run(_ocsscale(pool, plugin_env, "status", "--json")[:-2], plugin_env)
    report = json.loads(status.stdout)
    assert report["lock"]["stale"] is True
    assert [e["step"] for e in report["in_progress"]] == ["validate-fe/wait[fe01]"]
    wrong = _run(_ocsscale(pool, plugin_env, "unlock", "nope")[:-2], plugin_env)
    assert wrong.returncode == 2 and (pool.state_dir / "lock").exists()
    cleared = _run(_ocsscale(pool, plugin_env, "unlock", lock["lock_id"])[:-2], plugin_env)
    assert cleared.returncode == 0, cleared.stderr
    assert not (pool.state_dir / "lock").exists()

    # 3. resume: finished steps are not redone, the cut-short step runs again
    (pool.dir / "release").write_text("go")
    resumed = _run(_ocsscale(pool, plugin_env, "run", "--yes"), plugin_env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = _entries(pool)
    first_run_id = first_run[FE01_STEPS[0]]["run_id"]
    for step in FE01_STEPS:
        mine = [e for e in after if e["step_id"] == step]
        assert len(mine) == 1 and mine[0]["run_id"] == first_run_id, step
    wait = [e for e in after if e["step_id"] == "validate-fe/wait[fe01]"]
    assert len(wait) == 1 and wait[0]["status"] == "done" and wait[0]["attempts"] == 2
    assert (pool.dir / "wait.log").read_text().count("wait started") == 2
    assert (pool.dir / "mark.log").read_text().splitlines() == [f"apply {pool.dir}/marker"]

    # end state: the temporary pins are gone byte for byte, the cutover pins stay
    end = pool.snapshot()
    for host in ("fe00", "fe01", "fe02"):
        assert end[host] == original[host], host
    for host in ("client01", "client02"):
        assert b"198.18.0.40" in end[host] and b"pool.lab.test" in end[host]
        assert b"198.18.0.41" not in end[host] and b"198.18.0.42" not in end[host]
    assert (pool.dir / "marker").read_text() == "cut over"

    # 4. a second run finds everything done and changes nothing
    again = _run(_ocsscale(pool, plugin_env, "run", "--yes"), plugin_env)
    assert again.returncode == 0, again.stderr
    assert len(_entries(pool)) == len(after)
    assert pool.snapshot() == end

    # 5. rollback puts back exactly what was there
    assert list(pool.dir.glob("*.ocsscale.bak"))  # the writes left backups
    rolled = _run(_ocsscale(pool, plugin_env, "rollback", "--yes")[:-2], plugin_env)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert pool.snapshot() == original
    assert list(pool.dir.glob("*.ocsscale.bak")) == []  # the README's promise: nothing left
    assert not (pool.dir / "marker").exists()
    final = json.loads(
        _run(_ocsscale(pool, plugin_env, "status", "--json")[:-2], plugin_env).stdout
    )
    assert final["rollback_would_undo"] == []
    assert {p["id"]: p["status"] for p in final["phases"]} == {
        # a full rollback reopens every phase: a new run checks them all again
        "preflight": "reverted",
        "validate-fe": "reverted",
        "cutover": "reverted",
    }


VALIDATE_ONLY = """\
version: 1
phases:
  - id: validate-fe
    title: Validate the front ends
    section: test
    steps:
      - group: per-fe
        foreach: front_ends
        as: fe
        steps:
          - id: pin
            action: hosts.pin
            foreach: "[fe] + test_clients"
            as: host
            args:
              host: "{{ host.name }}"
              name: "{{ pool.fqdn }}"
              address: "{{ fe.address }}"
          - id: restart
            action: host.restart_services
            args: {host: "{{ fe.name }}"}
          - id: hold
            action: test.mark
            when: "fe.name == 'fe01'"
            args:
              path: "@DIR@/marker"
              text: held
              log: "@DIR@/mark.log"
              hold_revert: "@DIR@/release"
    cleanup:
      - id: unpin
        action: hosts.unpin
        foreach: "front_ends + test_clients"
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}"}
"""


def _file_states(pool: LocalPool) -> dict[str, tuple[bytes, int]]:
    return {
        h: (pool.hosts_file(h).read_bytes(), pool.hosts_file(h).stat().st_mtime_ns)
        for h in ("fe00", "fe01", "fe02", "client01", "client02")
    }


def test_a_rollback_killed_midway_never_pins_a_clean_host(
    local_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    """A finished validate-fe leaves every hosts file clean: pins and their
    unpins cancel out, so a rollback (killed halfway or not) writes none of them."""
    pool = local_pool
    (pool.dir / "playbook.yaml").write_text(VALIDATE_ONLY.replace("@DIR@", str(pool.dir)))
    done = _run(_ocsscale(pool, plugin_env, "run", "--yes"), plugin_env)
    assert done.returncode == 0, done.stdout + done.stderr
    clean = _file_states(pool)
    assert all(data == ORIGINAL_HOSTS for data, _ in clean.values())

    proc = subprocess.Popen(
        _ocsscale(pool, plugin_env, "rollback", "--yes")[:-2],
        env=plugin_env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    log = pool.dir / "mark.log"
    try:
        _wait_for(lambda: "revert waiting" in log.read_text() or proc.poll() is not None)
        assert proc.poll() is None, "the rollback ended before it could be killed"
        # the rollback has passed every newer change: not one hosts file was written
        assert _file_states(pool) == clean
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert _file_states(pool) == clean

    lock = json.loads((pool.state_dir / "lock").read_text())
    cleared = _run(_ocsscale(pool, plugin_env, "unlock", lock["lock_id"])[:-2], plugin_env)
    assert cleared.returncode == 0, cleared.stderr
    (pool.dir / "release").write_text("go")
    resumed = _run(_ocsscale(pool, plugin_env, "rollback", "--yes")[:-2], plugin_env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert _file_states(pool) == clean  # byte-identical, and never written at all
    assert sorted(p.name for p in pool.dir.glob("*.ocsscale.bak")) == []  # nothing left
    assert not (pool.dir / "marker").exists()
    left = [e for e in _entries(pool) if e["undo"] is not None and e["status"] != "reverted"]
    assert left == []
