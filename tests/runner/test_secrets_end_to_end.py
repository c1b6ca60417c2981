"""Credentials through a real `ocsscale` process: checked before anything is
touched, and never written anywhere a person or a file could see them.

The SSH host is the suite's real sshd on loopback; the client key is
encrypted and its passphrase comes from an environment variable, so the
secret really flows into paramiko during the run.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sshd_fixture import PASSPHRASE, SshdServer

from .conftest import HOSTS, ORIGINAL_HOSTS, POOL_YAML, PYTHON, REPO, LocalPool

SECRET_ENV = "OCSSCALE_TEST_SSH_PASSPHRASE"

PLAYBOOK = """\
version: 1
phases:
  - id: preflight
    title: Preflight
    section: test
    steps:
      - id: pool-file
        action: pool.check
      - id: reachable
        action: host.reachable
        args: {host: client03, name: localhost}
  - id: validate-fe
    title: Validate
    section: test
    steps:
      - id: pin
        action: hosts.pin
        foreach: "test_clients"
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}", address: 198.18.0.41}
      - id: flush
        action: host.flush_dns
        args: {host: client03}
      - id: expect
        action: host.reachable
        args: {host: client03, name: localhost, expect: [198.18.0.99]}
"""


def _pool_with_ssh_client(pool: LocalPool, sshd: SshdServer, key: Path) -> None:
    """The local pool plus client03, reached over SSH with an encrypted key."""
    text = POOL_YAML.format(d=pool.dir)
    client03 = (
        "  - name: client03\n"
        "    address: 127.0.0.1\n"
        f"    transport: {{kind: ssh, credentials: lab, port: {sshd.port}, "
        f"known_hosts: {sshd.known_hosts}, hosts_file: {pool.dir}/hosts-client03}}\n"
    )
    text = text.replace("directory:", client03 + "directory:", 1)
    text += (
        "credentials:\n"
        "  lab:\n"
        f"    username: {sshd.username}\n"
        f"    key_file: {key}\n"
        f"    passphrase: {{env: {SECRET_ENV}}}\n"
    )
    pool.pool.write_text(text)
    (pool.dir / "hosts-client03").write_bytes(ORIGINAL_HOSTS)
    (pool.dir / "playbook.yaml").write_text(PLAYBOOK)


def _ocsscale(
    pool: LocalPool, env: dict[str, str], *args: str, playbook: bool = True
) -> subprocess.CompletedProcess[str]:
    extra = ["--playbook", str(pool.dir / "playbook.yaml")] if playbook else []
    return subprocess.run(
        [str(PYTHON), "-m", "ocsscale", "-c", str(pool.pool), *args, *extra],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _files_holding(directory: Path, needle: bytes) -> list[str]:
    return sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and needle in p.read_bytes()
    )


@pytest.fixture
def ssh_pool(local_pool: LocalPool, sshd_server: SshdServer) -> LocalPool:
    # a copy, so the journal directory's rglob below sees only this test's files
    key = local_pool.dir / "client-key"
    key.write_bytes(sshd_server.encrypted_client_key.read_bytes())
    key.chmod(0o600)
    _pool_with_ssh_client(local_pool, sshd_server, key)
    return local_pool


def test_a_missing_credential_variable_stops_the_run_before_any_host_changes(
    ssh_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    env = {k: v for k, v in plugin_env.items() if k != SECRET_ENV}
    before = {**ssh_pool.snapshot(), "client03": ORIGINAL_HOSTS}
    # client01 and client02 (local) come before client03 (SSH) in the phase:
    # found only at client03's step, they would already be pinned
    result = _ocsscale(ssh_pool, env, "run", "--phase", "validate-fe", "--yes")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"host client03: environment variable {SECRET_ENV} is not set" in result.stderr
    assert "nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr
    assert ssh_pool.snapshot() == {h: before[h] for h in HOSTS}
    assert (ssh_pool.dir / "hosts-client03").read_bytes() == ORIGINAL_HOSTS
    assert not (ssh_pool.state_dir / "journal.sqlite").exists()
    # the dry run reads hosts, so it needs the credentials as well
    dry = _ocsscale(ssh_pool, env, "run", "--dry-run", "--phase", "validate-fe")
    assert dry.returncode == 2 and SECRET_ENV in dry.stderr


def test_the_secret_is_in_no_output_journal_status_plan_or_file(
    ssh_pool: LocalPool, plugin_env: dict[str, str], sshd_server: SshdServer
) -> None:
    env = {**plugin_env, SECRET_ENV: PASSPHRASE}
    outputs: list[str] = []

    def run(*args: str, playbook: bool = True) -> subprocess.CompletedProcess[str]:
        result = _ocsscale(ssh_pool, env, *args, playbook=playbook)
        outputs.extend([result.stdout, result.stderr])
        return result

    # the pins land over SSH, then a check fails: messages and evidence are journaled
    logins = sshd_server.log.read_text().count("Accepted publickey")
    failed = run("run", "--yes")
    # preflight, pin, check and cleanup on client03: one SSH session for the whole run
    assert sshd_server.log.read_text().count("Accepted publickey") == logins + 1
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "client03 resolves localhost to 127.0.0.1, expected 198.18.0.99" in failed.stderr
    pinned = (ssh_pool.dir / "hosts-client03").read_bytes()
    assert b"198.18.0.41 pool.lab.test" in pinned, "the SSH host was really changed"
    status = run("status", "--json", playbook=False)
    report = json.loads(status.stdout)
    assert {e["step"] for e in report["rollback_would_undo"]} >= {"validate-fe/pin[client03]"}
    plan = run("plan", "--json")
    assert json.loads(plan.stdout)["pool"] == "pool.lab.test"
    assert run("run", "--dry-run").returncode == 0  # reads every host, changes nothing
    rolled = run("rollback", "--yes", playbook=False)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert (ssh_pool.dir / "hosts-client03").read_bytes() == ORIGINAL_HOSTS

    assert all(PASSPHRASE not in text for text in outputs)
    # the journal (with its WAL), the lock, backups, everything in the pool's directory
    assert (ssh_pool.state_dir / "journal.sqlite").exists()
    assert _files_holding(ssh_pool.dir, PASSPHRASE.encode()) == []
    assert _files_holding(ssh_pool.dir, PASSPHRASE.encode("utf-16-le")) == []


def test_a_wrong_secret_is_not_echoed_by_the_failure(
    ssh_pool: LocalPool, plugin_env: dict[str, str]
) -> None:
    canary = "ocsscale-canary-9d41e7-not-the-passphrase"
    env = {**plugin_env, SECRET_ENV: canary}
    result = _ocsscale(ssh_pool, env, "run", "--phase", "preflight", "--yes")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "client03" in result.stderr and "Traceback" not in result.stderr
    assert canary not in result.stdout + result.stderr
    status = _ocsscale(ssh_pool, env, "status", "--json", playbook=False)
    assert canary not in status.stdout
    assert _files_holding(ssh_pool.dir, canary.encode()) == []
