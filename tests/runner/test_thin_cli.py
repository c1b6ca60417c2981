"""The CLI only parses, renders and asks: the gate of a run or rollback (unbuilt
steps, credentials, the lock) is the runner's, and each check is made once."""

from __future__ import annotations

import inspect
from collections import Counter
from typing import Any

import pytest
from typer.testing import CliRunner

from ocsscale.cli import run_cmds
from ocsscale.cli.main import app
from ocsscale.runner import rollback as rollback_mod
from ocsscale.runner import session, walk
from ocsscale.transports import factory, recorded

from .conftest import ORIGINAL_HOSTS, VALIDATE_HEAD, LocalPool

PLAYBOOK = (
    VALIDATE_HEAD
    + """\
      - id: pin
        action: hosts.pin
        foreach: test_clients
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}", address: 198.18.0.41}
"""
)


def test_the_cli_holds_no_core_work() -> None:
    source = inspect.getsource(run_cmds)
    for core in ("refuse_not_built", "load_actions", "check_credentials", "load_pool", "read_lock"):
        assert core not in source, core


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each gate check runs (the real function is still called)."""
    counted: Counter[str] = Counter()

    def spy(owner: Any, name: str, key: str | None = None) -> None:
        real = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counted[key or name] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    spy(session, "load_actions")
    spy(session, "refuse_not_built")
    spy(factory, "check_credentials")
    spy(session, "_refuse_held")
    real_reach = recorded.RecordedHosts.check_reach

    def reach(self: Any, wanted: Any, *, log_in: bool = True) -> None:
        counted["log in" if log_in else "credentials of the reverts"] += 1
        real_reach(self, wanted, log_in=log_in)

    monkeypatch.setattr(recorded.RecordedHosts, "check_reach", reach)
    spy(rollback_mod, "needless_reverts")
    spy(walk.Walker, "run", "walk")
    return counted


def test_run_and_rollback_make_each_check_once(local_pool: LocalPool, calls: Counter[str]) -> None:
    playbook = local_pool.dir / "playbook.yaml"
    playbook.write_text(PLAYBOOK)
    runner = CliRunner()
    args = ["-c", str(local_pool.pool)]
    done = runner.invoke(app, [*args, "run", "--yes", "--playbook", str(playbook)])
    assert done.exit_code == 0, done.output
    assert dict(calls) == {
        "load_actions": 1,
        "refuse_not_built": 1,
        "check_credentials": 1,
        "_refuse_held": 1,
        "walk": 1,
    }
    assert b"198.18.0.41" in local_pool.hosts_file("client01").read_bytes()

    calls.clear()
    rolled = runner.invoke(app, [*args, "rollback", "--yes", "-v"])  # -v: the list too
    assert rolled.exit_code == 0, rolled.output
    assert dict(calls) == {
        "load_actions": 1,
        "credentials of the reverts": 1,
        "needless_reverts": 2,  # shown before asking; read anew under the lock
        "_refuse_held": 1,
        "log in": 1,
    }
    assert "↶ validate-fe/pin[client01]" in rolled.output
    assert local_pool.hosts_file("client01").read_bytes() == ORIGINAL_HOSTS
