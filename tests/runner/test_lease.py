"""The run lease (runner/lease.py): one run per pool across copies of the pool file.

Two copies of one pool file in two directories share the lease in a directory
of the test, reached through the local transport (`run.lease.host: admin`); the
last tests go through a real sshd as the LB host, where the engine driver keeps
the lease by default.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ocsscale.cli.main import app
from ocsscale.config.loader import LoadedPool, load_pool
from ocsscale.errors import EXIT_LOCKED, ConfigError, LockHeld, TransportError, UsageError
from ocsscale.runner import lease as lease_mod
from ocsscale.runner.lease import RunLease, lease_place, no_place_warning, parse_lease
from ocsscale.runner.lock import RunLock

from .conftest import HOSTS, ORIGINAL_HOSTS, POOL_YAML, PYTHON, REPO

POOL = "pool.lab.test"


def _copy(tmp_path: Path, name: str, leases: Path, host: str = "admin") -> LoadedPool:
    """A copy of one pool file in its own directory; every copy keeps the lease in
    `leases` on `host`."""
    d = tmp_path / name
    d.mkdir()
    for h in HOSTS:
        (d / f"hosts-{h}").write_bytes(ORIGINAL_HOSTS)
    text = POOL_YAML.format(d=d) + f"run:\n  lease: {{host: {host}, dir: {leases}}}\n"
    (d / "pool.yaml").write_text(text)
    return load_pool(d / "pool.yaml")


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def leases(tmp_path: Path) -> Path:
    return tmp_path / "shared" / "leases"


def _lease_file(leases: Path) -> Path:
    return leases / f"{POOL}.lease"


def test_a_second_copy_is_refused_naming_the_holder_until_the_first_releases(
    tmp_path: Path, leases: Path
) -> None:
    a, b = _copy(tmp_path, "a", leases), _copy(tmp_path, "b", leases)
    with RunLock(a.state_dir, "ocsscale run --phase preflight") as lock, RunLease(a, lock) as held:
        assert held is not None and held.lease_id == lock.lock_id
        data = json.loads(_lease_file(leases).read_text())
        assert data == {
            "lease_id": lock.lock_id,
            "pool": POOL,
            "user": lock.user,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "command": "ocsscale run --phase preflight",
            "started": lock.started,
            "copy": str(a.state_dir),
        }
        assert not [p for p in leases.iterdir() if p.name.endswith(".tmp")]
        assert lease_mod.recorded(a.state_dir) == [lock.lock_id]

        # the other copy has a lock of its own, and is refused by the lease
        with RunLock(b.state_dir, "ocsscale rollback") as other, pytest.raises(LockHeld) as err:
            RunLease(b, other).acquire()
        text = err.value.message
        assert err.value.exit_code == EXIT_LOCKED == 3
        for part in (
            f"{lock.user}@{socket.gethostname()}",
            f"pid {os.getpid()}",
            "`ocsscale run --phase preflight`",
            "since ",
            f"lease {lock.lock_id}",
            str(a.state_dir),
            f"{leases}/{POOL}.lease on admin",
            "nothing was changed",
        ):
            assert part in text, (part, text)
        assert "stale" not in text
        assert lease_mod.recorded(b.state_dir) == []  # nothing of b's recorded
        assert json.loads(_lease_file(leases).read_text())["lease_id"] == lock.lock_id
    assert not _lease_file(leases).exists()  # released
    assert lease_mod.recorded(a.state_dir) == []
    with RunLock(b.state_dir, "ocsscale run") as other, RunLease(b, other) as taken:
        assert taken is not None and taken.copy == str(b.state_dir)
    assert not _lease_file(leases).exists()


def test_released_on_failure_too(tmp_path: Path, leases: Path) -> None:
    a = _copy(tmp_path, "a", leases)

    def interrupted() -> None:
        with RunLock(a.state_dir, "ocsscale run") as lock, RunLease(a, lock):
            assert _lease_file(leases).exists()
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert not _lease_file(leases).exists()


def _kill(lease_path: Path) -> str:
    """Make the lease look like one a killed run left: same host, its pid gone."""
    data = json.loads(lease_path.read_text())
    data["pid"] = _dead_pid()
    lease_path.write_text(json.dumps(data, sort_keys=True))
    return str(data["lease_id"])


def test_a_killed_runs_lease_is_taken_back_by_its_copy_only(tmp_path: Path, leases: Path) -> None:
    a, b = _copy(tmp_path, "a", leases), _copy(tmp_path, "b", leases)
    lock = RunLock(a.state_dir, "ocsscale run")
    RunLease(a, lock.acquire()).acquire()
    lock.release()  # as `ocsscale unlock` does for the lock, once the run is killed
    old = _kill(_lease_file(leases))

    with RunLock(b.state_dir, "ocsscale run") as other, pytest.raises(LockHeld) as err:
        RunLease(b, other).acquire()
    assert "stale" in err.value.message and f"lease {old}" in err.value.message
    assert err.value.hint is not None and f"ocsscale unlock {old}" in err.value.hint
    assert _lease_file(leases).exists()  # never taken over

    with RunLock(a.state_dir, "ocsscale run") as again, RunLease(a, again) as taken:
        assert taken is not None and taken.lease_id == again.lock_id != old
        assert json.loads(_lease_file(leases).read_text())["pid"] == os.getpid()
        assert lease_mod.recorded(a.state_dir) == [again.lock_id]
    assert not _lease_file(leases).exists()


def test_a_run_killed_while_it_took_the_lease_still_takes_the_older_back(
    tmp_path: Path, leases: Path
) -> None:
    a = _copy(tmp_path, "a", leases)
    lock = RunLock(a.state_dir, "ocsscale run")
    RunLease(a, lock.acquire()).acquire()
    lock.release()
    old = _kill(_lease_file(leases))
    # the next run was killed between its record and its answer from the host
    lease_mod.write_record(a.state_dir, ["0badcafe", old])
    with RunLock(a.state_dir, "ocsscale run") as again, RunLease(a, again) as taken:
        assert taken is not None and lease_mod.recorded(a.state_dir) == [again.lock_id]
    assert not _lease_file(leases).exists()


def test_unlock_from_another_copy_clears_a_stale_lease(tmp_path: Path, leases: Path) -> None:
    a, b = _copy(tmp_path, "a", leases), _copy(tmp_path, "b", leases)
    lock = RunLock(a.state_dir, "ocsscale run")
    RunLease(a, lock.acquire()).acquire()
    with pytest.raises(LockHeld, match="still running"):  # its process is this one
        lease_mod.unlock(b.path, lock.info.lock_id)  # type: ignore[union-attr]
    lock.release()
    old = _kill(_lease_file(leases))

    with pytest.raises(UsageError, match="no lock"):
        lease_mod.unlock(b.path, "00000000")
    assert _lease_file(leases).exists()
    said = lease_mod.unlock(b.path, old)
    assert len(said) == 1 and f"lease {old} at {leases}/{POOL}.lease on admin cleared" in said[0]
    assert not _lease_file(leases).exists()
    with RunLock(b.state_dir, "ocsscale run") as other, RunLease(b, other) as taken:
        assert taken is not None
    # a's record of the old lease is harmless: another id is never taken back by it
    assert lease_mod.recorded(a.state_dir) == [old]


def test_unlock_in_the_killed_copy_clears_its_lock_and_its_lease(
    tmp_path: Path, leases: Path
) -> None:
    a = _copy(tmp_path, "a", leases)
    lock = RunLock(a.state_dir, "ocsscale run")
    info = lock.acquire()
    RunLease(a, info).acquire()
    for path in (a.state_dir / "lock", _lease_file(leases)):
        data = json.loads(path.read_text())
        data["pid"] = _dead_pid()
        path.write_text(json.dumps(data, sort_keys=True))
    said = lease_mod.unlock(a.path, info.lock_id)
    assert said[0].startswith(f"lock {info.lock_id} cleared")
    assert f"lease {info.lock_id}" in said[1]
    assert not (a.state_dir / "lock").exists() and not _lease_file(leases).exists()
    assert lease_mod.recorded(a.state_dir) == []


def test_a_lease_that_is_not_ours_is_refused_unread_and_kept(tmp_path: Path, leases: Path) -> None:
    a = _copy(tmp_path, "a", leases)
    leases.mkdir(parents=True)
    hostile = "\x1b[31mrm -rf / {not json"
    _lease_file(leases).write_text(hostile)
    with RunLock(a.state_dir, "ocsscale run") as lock, pytest.raises(LockHeld) as err:
        RunLease(a, lock).acquire()
    assert "not one ocsscale wrote" in err.value.message
    assert "rm -rf" not in err.value.message and "\x1b" not in err.value.message
    assert _lease_file(leases).read_text() == hostile
    assert parse_lease(json.dumps({"lease_id": "zz", "pid": 1})) is None
    assert parse_lease("x" * 5000) is None


def test_release_leaves_a_lease_someone_else_holds_now(tmp_path: Path, leases: Path) -> None:
    a = _copy(tmp_path, "a", leases)
    said: list[str] = []
    with RunLock(a.state_dir, "ocsscale run") as lock:
        lease = RunLease(a, lock, warn=said.append)
        lease.acquire()
        data = json.loads(_lease_file(leases).read_text())
        data["lease_id"] = "0123456789abcdef"  # cleared and taken by another copy meanwhile
        _lease_file(leases).write_text(json.dumps(data))
        lease.release()
    assert _lease_file(leases).exists()
    assert len(said) == 1 and "no longer" in said[0]


def test_a_place_that_cannot_be_written_refuses_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    a = _copy(tmp_path, "a", blocker / "leases")
    with RunLock(a.state_dir, "ocsscale run") as lock, pytest.raises(TransportError) as err:
        RunLease(a, lock).acquire()
    assert f"{blocker}/leases/{POOL}.lease on admin" in err.value.message
    assert "nothing was changed" in err.value.message
    assert err.value.hint is not None and "run.lease" in err.value.hint
    # whether the host took it before failing is not known: the copy may take it back
    assert lease_mod.recorded(a.state_dir) == [lock.lock_id]


def test_where_the_lease_lives_by_driver(tmp_path: Path, leases: Path) -> None:
    example = Path(REPO / "examples" / "one-armed.yaml")
    engine = load_pool(example)
    place = lease_place(engine.pool)
    assert place is not None
    assert place.host == "lb01"
    assert place.path == "/var/lib/ocsscale/leases/ocspool.contoso.com.lease"
    assert no_place_warning(engine.pool) is None
    haproxy_text = example.read_text().replace("driver: engine ", "driver: haproxy")
    (tmp_path / "h.yaml").write_text(haproxy_text)
    assert lease_place(load_pool(tmp_path / "h.yaml").pool).host == "lb01"  # type: ignore[union-attr]

    manual = _copy(tmp_path, "m", leases)
    assert lease_place(manual.pool) == lease_mod.LeasePlace("admin", str(leases), POOL)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "pool.yaml").write_text(POOL_YAML.format(d=bare))
    loaded = load_pool(bare / "pool.yaml")
    assert lease_place(loaded.pool) is None
    warning = no_place_warning(loaded.pool)
    assert warning is not None and "run.lease.host" in warning
    with RunLock(loaded.state_dir, "ocsscale run") as lock, RunLease(loaded, lock) as held:
        assert held is None  # only the lock protects: check and plan say so
    for command in ("check", "plan"):
        result = CliRunner().invoke(app, ["-c", str(bare / "pool.yaml"), command])
        assert result.exit_code == 0, result.output
        assert "warning: run.lease: no place every copy" in " ".join(result.stdout.split())
    result = CliRunner().invoke(app, ["-c", str(example), "check"])
    assert result.exit_code == 0 and "run.lease" not in result.stdout


@pytest.mark.parametrize(
    ("lease", "rule"),
    [
        ("{host: nope, dir: /x}", "run.lease.host"),
        ("{host: fe01, dir: relative/dir}", "run.lease.dir"),
        ('{host: fe01, dir: "/a\\nb"}', "run.lease.dir"),
    ],
)
def test_the_lease_settings_are_checked(tmp_path: Path, lease: str, rule: str) -> None:
    (tmp_path / "pool.yaml").write_text(POOL_YAML.format(d=tmp_path) + f"run:\n  lease: {lease}\n")
    with pytest.raises(ConfigError) as err:
        load_pool(tmp_path / "pool.yaml")
    assert [i.rule for i in err.value.issues] == [rule]


def test_a_windows_host_cannot_keep_the_lease(tmp_path: Path) -> None:
    text = POOL_YAML.format(d=tmp_path).replace(
        "dns: {provider: manual, zone: lab.test}",
        "dns: {provider: manual, zone: lab.test}\n"
        "credentials: {w: {username: u, password: {env: P}}}",
    )
    text = text.replace(
        "transport: {kind: local, hosts_file: " + f"{tmp_path}/hosts-client02}}",
        "transport: {kind: winrm, credentials: w}",
    )
    (tmp_path / "pool.yaml").write_text(text + "run:\n  lease: {host: client02}\n")
    with pytest.raises(ConfigError) as err:
        load_pool(tmp_path / "pool.yaml")
    assert [i.rule for i in err.value.issues] == ["run.lease.host"]
    assert "windows host" in err.value.issues[0].message


# -- the real CLI: two copies run at once ------------------------------------------------

PLAYBOOK = """\
version: 1
phases:
  - id: preflight
    title: Preflight
    section: test
    steps:
      - id: wait
        action: test.wait
        args: {release: "@DIR@/release", log: "@DIR@/wait.log", timeout: 60}
      - id: mark
        action: test.mark
        args: {path: "@DIR@/marker", text: changed}
"""


def _cli(pool: LoadedPool, env: dict[str, str], *args: str) -> list[str]:
    playbook = pool.path.parent / "playbook.yaml"
    playbook.write_text(PLAYBOOK.replace("@DIR@", str(pool.path.parent)))
    return [str(PYTHON), "-m", "ocsscale", "-c", str(pool.path), *args]


def _wait_for_file(path: Path, proc: subprocess.Popen[Any]) -> None:
    import time

    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, "the first run ended early"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_two_copies_run_at_once_the_second_is_refused_before_any_change(
    tmp_path: Path, leases: Path, plugin_env: dict[str, str]
) -> None:
    a, b = _copy(tmp_path, "a", leases), _copy(tmp_path, "b", leases)
    run = ("run", "--yes", "--playbook")
    first = subprocess.Popen(
        [*_cli(a, plugin_env, *run), str(a.path.parent / "playbook.yaml")],
        env=plugin_env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_file(a.path.parent / "wait.log", first)
        second = subprocess.run(
            [*_cli(b, plugin_env, *run), str(b.path.parent / "playbook.yaml")],
            env=plugin_env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 3, second.stdout + second.stderr
        holder = json.loads(_lease_file(leases).read_text())
        assert f"pid {first.pid}" in second.stderr
        assert f"lease {holder['lease_id']}" in second.stderr
        assert str(a.state_dir) in second.stderr and "Traceback" not in second.stderr
        assert not (b.path.parent / "marker").exists()
        assert not (b.state_dir / "journal.sqlite").exists()  # nothing started
        assert not (b.state_dir / "lock").exists()  # its own lock released
    finally:
        (a.path.parent / "release").write_text("go")
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    assert not _lease_file(leases).exists()
    (b.path.parent / "release").write_text("go")
    again = subprocess.run(
        [*_cli(b, plugin_env, *run), str(b.path.parent / "playbook.yaml")],
        env=plugin_env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert (b.path.parent / "marker").read_text() == "changed"
    assert not _lease_file(leases).exists()


# -- over SSH: the LB host of the engine driver, the default place -----------------------


def _engine_copy(tmp_path: Path, name: str, server: Any, leases: Path) -> LoadedPool:
    from transports.test_factory import write_pool

    d = tmp_path / name
    d.mkdir()
    loaded = write_pool(d, server)
    loaded.path.write_text(loaded.path.read_text() + f"run:\n  lease: {{dir: {leases}}}\n")
    return load_pool(loaded.path)


@pytest.mark.sshd
def test_over_ssh_the_lease_is_on_the_lb_host(
    sshd_server: Any, tmp_path: Path, leases: Path
) -> None:
    a = _engine_copy(tmp_path, "a", sshd_server, leases)
    b = _engine_copy(tmp_path, "b", sshd_server, leases)
    lease = leases / "ocspool.contoso.com.lease"
    with RunLock(a.state_dir, "ocsscale run") as lock, RunLease(a, lock):
        assert json.loads(lease.read_text())["lease_id"] == lock.lock_id
        assert lease.stat().st_mode & 0o777 == 0o600
        with RunLock(b.state_dir, "ocsscale run") as other, pytest.raises(LockHeld) as err:
            RunLease(b, other).acquire()
        assert f"{lease} on lb01" in err.value.message and lock.lock_id in err.value.message
    assert not lease.exists()
    with RunLock(b.state_dir, "ocsscale run") as other, RunLease(b, other):
        assert lease.exists()
    assert not lease.exists()


# -- checked before the operator is asked ------------------------------------------------

PIN_PLAYBOOK = """\
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


def _ask(pool: LoadedPool, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`ocsscale ARGS` without --yes and without a terminal: asking would be exit 2."""
    return subprocess.run(
        [str(PYTHON), "-m", "ocsscale", "-c", str(pool.path), *args],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_another_copys_lease_refuses_run_and_rollback_before_the_question(
    tmp_path: Path, leases: Path, plugin_env: dict[str, str]
) -> None:
    a, b = _copy(tmp_path, "a", leases), _copy(tmp_path, "b", leases)
    (b.path.parent / "playbook.yaml").write_text(PIN_PLAYBOOK)
    run = ("run", "--playbook", str(b.path.parent / "playbook.yaml"))
    done = _ask(b, plugin_env, *run[:1], "--yes", *run[1:])
    assert done.returncode == 0, done.stdout + done.stderr  # something to roll back
    pinned = (b.path.parent / "hosts-client01").read_bytes()
    with RunLock(a.state_dir, "ocsscale run --phase preflight") as lock, RunLease(a, lock):
        for args in (run, ("rollback",)):
            refused = _ask(b, plugin_env, *args)
            said = refused.stdout + refused.stderr
            assert refused.returncode == 3, said
            assert "pass --yes" not in said and "[y/N]" not in said  # never asked
            assert f"lease {lock.lock_id}" in said and f"pid {os.getpid()}" in said
            assert "Traceback" not in said
            assert not (b.state_dir / "lock").exists()
        assert (b.path.parent / "hosts-client01").read_bytes() == pinned
    assert lease_mod.recorded(b.state_dir) == []


def test_the_gate_lets_a_copy_take_its_own_lease_back_and_a_race_is_refused_at_execute(
    tmp_path: Path, leases: Path
) -> None:
    from ocsscale.runner import session
    from ocsscale.runner.events import discard

    a, b = _copy(tmp_path, "a", leases), _copy(tmp_path, "b", leases)
    for copy in (a, b):
        (copy.path.parent / "playbook.yaml").write_text(PIN_PLAYBOOK)
    gate = session.prepare_run(a.path, a.path.parent / "playbook.yaml")
    session.execute_run(gate, discard, command="ocsscale run")  # a's journal
    # then a run of a killed while it held the lease
    lock = RunLock(a.state_dir, "ocsscale run")
    RunLease(a, lock.acquire()).acquire()
    lock.release()
    old = _kill(_lease_file(leases))
    with pytest.raises(LockHeld, match="stale"):
        session.prepare_run(b.path, b.path.parent / "playbook.yaml")
    # a's killed run left it: a's next run passes the gate and takes it back
    gate = session.prepare_run(a.path, a.path.parent / "playbook.yaml")
    session.execute_run(gate, discard, command="ocsscale run")
    assert not _lease_file(leases).exists() and lease_mod.recorded(a.state_dir) == []
    assert old not in lease_mod.recorded(a.state_dir)

    # free at b's gate, taken by a before b runs: b is refused under its lock
    gate = session.prepare_run(b.path, b.path.parent / "playbook.yaml")
    with RunLock(a.state_dir, "ocsscale run") as held, RunLease(a, held):
        with pytest.raises(LockHeld) as err:
            session.execute_run(gate, discard, command="ocsscale run")
        assert f"lease {held.lock_id}" in err.value.message
    assert (b.path.parent / "hosts-client01").read_bytes() == ORIGINAL_HOSTS
    assert not (b.state_dir / "lock").exists()


# -- ocsscale status: the lease, without contacting anything -----------------------------


def _status(pool: LoadedPool) -> tuple[dict[str, Any], str]:
    runner = CliRunner()
    args = ["-c", str(pool.path), "status"]
    as_json = runner.invoke(app, [*args, "--json"], env={"COLUMNS": "250"})
    assert as_json.exit_code == 0, as_json.output
    text = runner.invoke(app, args, env={"COLUMNS": "250"})
    assert text.exit_code == 0, text.output
    return json.loads(as_json.stdout)["lease"], " ".join(text.stdout.split())


def test_status_names_the_holder_of_a_lease_on_this_machine(tmp_path: Path, leases: Path) -> None:
    a, b = _copy(tmp_path, "a", leases), _copy(tmp_path, "b", leases)
    place = f"{leases}/{POOL}.lease on admin"
    lease, text = _status(b)
    assert (lease["state"], lease["host"], lease["dir"], lease["holder"]) == (
        "free",
        "admin",
        str(leases),
        None,
    )
    assert f"run lease {place}: free" in text
    lock = RunLock(a.state_dir, "ocsscale run --phase preflight")
    with lock as info, RunLease(a, info):
        lease, text = _status(b)
        assert lease["state"] == "held"
        holder = lease["holder"]
        assert (holder["lease_id"], holder["pid"], holder["user"], holder["host"]) == (
            info.lock_id,
            os.getpid(),
            info.user,
            socket.gethostname(),
        )
        assert holder["started"] == info.started and holder["copy"] == str(a.state_dir)
        assert holder["stale"] is False
        assert f"run lease {place}: held by {info.user}@{socket.gethostname()} " in text
        assert f"pid {os.getpid()} since " in text and f"lease {info.lock_id}" in text
        assert str(a.state_dir) in text and "stale" not in text
        old = _kill(_lease_file(leases))
    lease, text = _status(b)  # its run killed: the lease is left
    assert lease["state"] == "held" and lease["holder"]["stale"] is True
    assert f"stale (its process is gone): `ocsscale unlock {old}`" in text


def test_status_reads_no_lease_on_another_host(tmp_path: Path, leases: Path) -> None:
    """fe01 (local transport, so the test can see the file) is a host of the pool
    file: status never logs in to read it, and says what it knows instead."""
    from ocsscale.runner import session
    from ocsscale.runner.events import discard

    a, b = _copy(tmp_path, "a", leases, "fe01"), _copy(tmp_path, "b", leases, "fe01")
    (a.path.parent / "playbook.yaml").write_text(PIN_PLAYBOOK)
    gate = session.prepare_run(a.path, a.path.parent / "playbook.yaml")
    session.execute_run(gate, discard, command="ocsscale run")  # a journal beside the lock
    place = f"{leases}/{POOL}.lease on fe01"
    with RunLock(a.state_dir, "ocsscale run") as info, RunLease(a, info):
        assert _lease_file(leases).exists()
        lease, text = _status(b)  # another copy holds it: not known here
        assert (lease["state"], lease["holder"], lease["host"]) == ("unknown", None, "fe01")
        assert f"run lease {place}: unknown: not read: it is on fe01" in text
        assert "status contacts nothing" in text
        lease, text = _status(a)  # this copy's run holds it: its lock says who
        assert lease["state"] == "held" and lease["recorded"] == [info.lock_id]
        assert lease["holder"]["pid"] == os.getpid()
        assert lease["holder"]["lease_id"] == info.lock_id
        assert f"run lease {place}: held by {info.user}@" in text
        assert "by this copy's run (its lock); not read on fe01" in text
    lock = RunLock(a.state_dir, "ocsscale run")
    killed = lock.acquire()
    RunLease(a, killed).acquire()
    lock.release()  # killed: the lock cleared by unlock, the lease left
    lease, text = _status(a)
    assert lease["state"] == "unknown" and lease["recorded"] == [killed.lock_id]
    assert f"may still hold lease {killed.lock_id} there" in text
    assert f"`ocsscale unlock {killed.lock_id}`" in text


def test_status_says_when_no_lease_is_kept_or_its_place_is_not_known(tmp_path: Path) -> None:
    (tmp_path / "pool.yaml").write_text(POOL_YAML.format(d=tmp_path))
    bare = load_pool(tmp_path / "pool.yaml")
    lease, text = _status(bare)
    assert (lease["state"], lease["host"], lease["path"]) == ("none", None, None)
    assert "run lease: none: no place every copy of the pool file sees" in text
    (tmp_path / "pool.yaml").write_text("version: 1\npool: [\x1b[31m\n")
    lease, text = _status(bare)  # status works without a valid pool file
    assert lease["state"] == "unknown" and "does not load" in lease["note"]
    assert "run lease: unknown: the pool file does not load" in text and "\x1b" not in text
