"""Rollback reaches every host the run changed as the journal recorded it, and
refuses before reverting anything when one of them cannot be reached.

Two SSH clients are real OpenSSH servers on loopback: the suite's sshd, and
one of this test's own that it stops to make a host unreachable.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd_fixture import PASSPHRASE, SshdServer, start_sshd, stop_sshd

from ocsscale.errors import SecretError, TransportError
from ocsscale.runner import session
from ocsscale.runner.events import Event

from .conftest import HOSTS, ORIGINAL_HOSTS, POOL_YAML, VALIDATE_HEAD, LocalPool

SECRET_ENV = "OCSSCALE_TEST_ROLLBACK_PASSPHRASE"

PIN_ALL = (
    VALIDATE_HEAD
    + """\
      - id: pin
        action: hosts.pin
        foreach: "front_ends + test_clients"
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}", address: 198.18.0.41}
      - id: restart
        action: host.restart_services
        foreach: front_ends
        as: host
        args: {host: "{{ host.name }}"}
"""
)

FE02 = """\
  - name: fe02
    fqdn: fe02.lab.test
    address: 198.18.0.42
    transport: {{kind: local, hosts_file: {d}/hosts-fe02, service_command: "true {{service}}"}}
"""


def _run(pool: LocalPool) -> None:
    path = pool.dir / "playbook.yaml"
    path.write_text(PIN_ALL)
    session.execute_run(session.prepare_run(pool.pool, path), lambda e: None, command="test")


def _rollback(pool: LocalPool) -> list[str]:
    events: list[Event] = []
    _, done = session.execute_rollback(
        session.prepare_rollback(pool.pool), events.append, command="test"
    )
    return [e.step_id for e in done]


def _hosts_column(pool: LocalPool) -> dict[str, dict]:
    db = sqlite3.connect(pool.state_dir / "journal.sqlite")
    try:
        rows = db.execute("SELECT step_id, hosts FROM entries WHERE undo IS NOT NULL").fetchall()
    finally:
        db.close()
    return {step: json.loads(hosts) for step, hosts in rows}


def test_rollback_after_an_fe_left_the_pool_file_restores_every_host(
    local_pool: LocalPool,
) -> None:
    _run(local_pool)
    assert b"198.18.0.41" in local_pool.hosts_file("fe02").read_bytes()
    recorded = _hosts_column(local_pool)
    fe02 = recorded["validate-fe/pin[fe02]"]["fe02"]
    assert fe02["spec"]["address"] == "198.18.0.42"
    assert fe02["spec"]["transport"]["kind"] == "local"
    assert recorded["validate-fe/restart[fe02]"] == {}  # its revert reaches no host

    # fe02 leaves the pool file (and fe01 moves): the journal still knows them
    text = local_pool.pool.read_text()
    text = text.replace(FE02.format(d=local_pool.dir), "").replace("198.18.0.41\n", "198.18.0.43\n")
    local_pool.pool.write_text(text)
    assert "fe02" not in local_pool.pool.read_text()

    _rollback(local_pool)
    assert local_pool.snapshot() == {h: ORIGINAL_HOSTS for h in HOSTS}
    assert list(local_pool.dir.glob("*.ocsscale.bak")) == []


@pytest.fixture
def own_sshd(tmp_path: Path) -> Iterator[tuple[SshdServer, object]]:
    server, proc = start_sshd(tmp_path / "own-sshd", address="127.0.0.2")
    try:
        yield server, proc
    finally:
        stop_sshd(proc)


def _ssh_client(name: str, server: SshdServer, pool: LocalPool, key: Path) -> tuple[str, str]:
    (pool.dir / f"hosts-{name}").write_bytes(ORIGINAL_HOSTS)
    return (
        f"  - name: {name}\n"
        f"    address: {server.address}\n"
        f"    transport: {{kind: ssh, credentials: {name}, port: {server.port}, "
        f"known_hosts: {server.known_hosts}, hosts_file: {pool.dir}/hosts-{name}}}\n"
    ), (
        f"  {name}:\n"
        f"    username: {server.username}\n"
        f"    key_file: {key}\n"
        f"    passphrase: {{env: {SECRET_ENV}_{name.upper()}}}\n"
    )


def test_rollback_refuses_up_front_naming_every_host_it_cannot_reach(
    local_pool: LocalPool,
    sshd_server: SshdServer,
    own_sshd: tuple[SshdServer, object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own, own_proc = own_sshd
    key = local_pool.dir / "client-key"
    key.write_bytes(sshd_server.encrypted_client_key.read_bytes())
    key.chmod(0o600)
    own_key = local_pool.dir / "own-key"
    own_key.write_bytes(own.encrypted_client_key.read_bytes())
    own_key.chmod(0o600)
    c3_host, c3_cred = _ssh_client("client03", sshd_server, local_pool, key)
    c4_host, c4_cred = _ssh_client("client04", own, local_pool, own_key)
    text = POOL_YAML.format(d=local_pool.dir).replace(
        "directory:", c3_host + c4_host + "directory:"
    )
    local_pool.pool.write_text(text + "credentials:\n" + c3_cred + c4_cred)
    monkeypatch.setenv(f"{SECRET_ENV}_CLIENT03", PASSPHRASE)
    monkeypatch.setenv(f"{SECRET_ENV}_CLIENT04", PASSPHRASE)
    _run(local_pool)
    names = ("fe01", "fe02", "client01", "client02", "client03", "client04")
    pinned = {h: local_pool.hosts_file(h).read_bytes() for h in names}
    assert all(b"198.18.0.41" in data for data in pinned.values())
    journal = (local_pool.state_dir / "journal.sqlite").read_bytes()
    assert PASSPHRASE.encode() not in journal
    assert f"{SECRET_ENV}_CLIENT03".encode() in journal  # the reference is recorded

    # client03's passphrase variable is gone: found by the gate, which contacts
    # nothing (client04's server is already down, and that is not noticed yet)
    monkeypatch.delenv(f"{SECRET_ENV}_CLIENT03")
    stop_sshd(own_proc)  # type: ignore[arg-type]
    with pytest.raises(SecretError) as missing:
        session.prepare_rollback(local_pool.pool)
    assert "client03" in missing.value.message and "client04" not in missing.value.message
    assert f"{SECRET_ENV}_CLIENT03" in missing.value.message

    # client03's passphrase is wrong and client04's server is down: the rollback
    # logs in to every host first, names both and reverts nothing at all
    # (client01 and client02 stay pinned too)
    monkeypatch.setenv(f"{SECRET_ENV}_CLIENT03", "not the passphrase")
    gate = session.prepare_rollback(local_pool.pool)
    with pytest.raises(TransportError) as refused:
        session.execute_rollback(gate, lambda e: None, command="test")
    message = refused.value.message
    assert "client03" in message and "client04" in message, message
    assert "2 hosts" in message and "nothing was reverted" in message, message
    assert "not the passphrase" not in message
    assert {h: local_pool.hosts_file(h).read_bytes() for h in names} == pinned
