"""`ocsscale status` as an operator reads it: every step by its full id, and
a run that was killed shown as such, not as still running."""

from __future__ import annotations

import json
import subprocess

from ocsscale.runner import session
from ocsscale.runner.events import discard

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
    session.execute_run(prepared, prepared.plan.phases, discard, command="test")


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
