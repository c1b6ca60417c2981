"""Errors in the tool's own words: Ctrl-C is "interrupted", and preflight names
every host it cannot log in to, not only the first."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from sshd_fixture import SshdServer

from ocsscale.errors import StepFailed
from ocsscale.runner import session
from ocsscale.runner.events import Event

from .conftest import ORIGINAL_HOSTS, POOL_YAML, REPO, LocalPool
from .test_crash_resume import FE01_STEPS, PLAYBOOK, _done, _entries, _ocsscale, _run, _wait_for


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGINT, 130), (signal.SIGHUP, 129), (signal.SIGTERM, 143)],
    ids=["ctrl-c", "sighup", "sigterm"],
)
def test_interrupt_exits_128_plus_signal_and_resumes_like_a_kill(
    local_pool: LocalPool, plugin_env: dict[str, str], signum: int, code: int
) -> None:
    pool = local_pool
    (pool.dir / "playbook.yaml").write_text(PLAYBOOK.replace("@DIR@", str(pool.dir)))
    proc = subprocess.Popen(
        _ocsscale(pool, plugin_env, "run", "--yes"),
        env=plugin_env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
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
        assert proc.poll() is None, "the run ended before it could be interrupted"
        os.kill(proc.pid, signum)  # SIGINT is what Ctrl-C sends; SIGHUP a closed terminal
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    text = out + err
    assert proc.returncode == code, text
    assert "KeyboardInterrupt" not in text and "Traceback" not in text, text
    assert "validate-fe interrupted" in out, out
    assert "error: interrupted: the journal keeps every step" in err, err
    # as a kill leaves it: no cleanup (the steps after the interrupted one need the
    # pins), the lock released, the interrupted step still open in the journal
    assert pool.hosts_file("client01").read_bytes() != ORIGINAL_HOSTS
    assert not (pool.state_dir / "lock").exists()
    first = {e["step_id"]: e for e in _entries(pool)}
    assert first["validate-fe/wait[fe01]"]["status"] == "applying"
    # resumed: not one finished step is redone, and the run ends as a whole one does
    (pool.dir / "release").write_text("go")
    resumed = _run(_ocsscale(pool, plugin_env, "run", "--yes"), plugin_env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = _entries(pool)
    for step in FE01_STEPS:
        assert len([e for e in after if e["step_id"] == step]) == 1, step
    wait = [e for e in after if e["step_id"] == "validate-fe/wait[fe01]"]
    assert len(wait) == 1 and wait[0]["status"] == "done" and wait[0]["attempts"] == 2
    assert pool.hosts_file("fe01").read_bytes() == ORIGINAL_HOSTS


PREFLIGHT = """\
version: 1
phases:
  - id: preflight
    title: Preflight
    section: test
    steps:
      - id: reachable
        action: host.reachable
        foreach: "[legacy_fe] + front_ends + test_clients"
        as: host
        args: {host: "{{ host.name }}", name: localhost}
      - id: pin
        action: hosts.pin
        foreach: test_clients
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}", address: 198.18.0.41}
"""


def test_preflight_names_every_host_it_cannot_log_in_to(
    local_pool: LocalPool, sshd_server: SshdServer, tmp_path: Path
) -> None:
    """Five SSH hosts: four at loopback addresses where nothing listens, one at
    the suite's real sshd with a key it does not accept."""
    wrong_key = tmp_path / "wrong-key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", wrong_key],
        check=True,
        capture_output=True,
    )
    text = POOL_YAML.format(d=local_pool.dir)
    hosts = ""
    for n, address in enumerate(("127.0.0.1", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6")):
        port = sshd_server.port if address == "127.0.0.1" else 9  # discard: nothing listens
        hosts += (
            f"  - name: ssh0{n}\n"
            f"    address: {address}\n"
            f"    transport: {{kind: ssh, credentials: lab, port: {port}, "
            f"known_hosts: {sshd_server.known_hosts}}}\n"
        )
    text = text.replace("directory:", hosts + "directory:", 1)
    text += f"credentials:\n  lab:\n    username: {sshd_server.username}\n"
    text += f"    key_file: {wrong_key}\n"
    local_pool.pool.write_text(text)
    (local_pool.dir / "playbook.yaml").write_text(PREFLIGHT)
    gate = session.prepare_run(local_pool.pool, local_pool.dir / "playbook.yaml")
    events: list[Event] = []
    with pytest.raises(StepFailed) as failed:
        session.execute_run(gate, events.append, command="test")
    message = failed.value.message
    assert "5 checks failed" in message, message
    for n in range(5):
        assert f"ssh0{n}" in message, message
    assert "authentication" in message and "refused" in message.lower(), message
    # the local hosts' checks passed, and nothing after the failed checks ran
    assert [e.step for e in events if e.kind == "step_start" and "pin" in (e.step or "")] == []
    assert local_pool.hosts_file("client01").read_bytes() == ORIGINAL_HOSTS
