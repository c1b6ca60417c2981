"""Commands the tool starts never see the variables the pool file's credentials are
read from: the failover drill's link commands (`sh -c` on the admin machine) and
the local transport's commands run with them taken out of the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsscale.actions.base import Context, registry
from ocsscale.config import load_pool
from ocsscale.runner.plugins import load_actions
from ocsscale.secrets import resolve_env
from ocsscale.transports.commands import ShCommand
from ocsscale.transports.local import LocalHost

REPO = Path(__file__).resolve().parents[2]
ONE_ARMED = (REPO / "examples" / "one-armed.yaml").read_text(encoding="utf-8")

# the example's WinRM credential, and a variable no credential names (proves the
# dump is the command's real environment)
WINRM_PASSWORD = ("OCS_ADMIN_PASSWORD", "winrm-pa55-in-the-env")
TSIG = ("OCSSCALE_TSIG_SECRET", "tsig-key-in-the-env")
UNRELATED = ("OCSSCALE_TEST_UNRELATED", "kept-as-it-is")


def _pool(tmp_path: Path) -> Path:
    dump = tmp_path / "env-{name}.txt"
    text = ONE_ARMED.replace(
        "  expected_peak_connections: 20000\n",
        "  expected_peak_connections: 20000\n"
        "  failover:\n"
        f"    link_down_command: env > {dump}\n"
        f"    link_up_command: env > {tmp_path}/env-up.txt\n",
        1,
    )
    path = tmp_path / "pool.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (WINRM_PASSWORD, TSIG, UNRELATED):
        monkeypatch.setenv(name, value)


def test_the_drills_link_commands_run_without_the_credential_variables(
    tmp_path: Path, secrets_in_env: None
) -> None:
    load_actions()
    loaded = load_pool(_pool(tmp_path))
    ctx = Context(pool=loaded.pool, profile=loaded.profile, host=lambda name: LocalHost(name))
    drill = registry()["lb.failover_drill"](ctx, {"fe": "ocsfe01", "mode": "link"})
    drill._fault(restore=False)  # the link-down command, as the drill runs it
    drill.revert({"fe": "ocsfe01", "mode": "link"})  # the link-up command, as rollback does
    for dump in (tmp_path / "env-ocsfe01.txt", tmp_path / "env-up.txt"):
        seen = dump.read_text(encoding="utf-8")
        assert f"{UNRELATED[0]}={UNRELATED[1]}" in seen
        for name, value in (WINRM_PASSWORD, TSIG):
            assert name not in seen and value not in seen


def test_local_commands_run_without_the_credential_variables(
    tmp_path: Path, secrets_in_env: None
) -> None:
    load_pool(_pool(tmp_path))  # the pool file names both variables
    seen = LocalHost("admin").run(ShCommand.of("env")).stdout
    assert f"{UNRELATED[0]}={UNRELATED[1]}" in seen
    assert WINRM_PASSWORD[1] not in seen and TSIG[1] not in seen


def test_a_variable_resolved_from_the_journal_is_hidden_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rollback reaches hosts through the references the journal recorded, which
    the current pool file may no longer hold: resolving one hides it as well."""
    monkeypatch.setenv("OCSSCALE_TEST_JOURNAL_ONLY", "journal-pa55")
    host = LocalHost("admin")
    assert "journal-pa55" in host.run(ShCommand.of("env")).stdout  # nothing names it yet
    assert resolve_env("OCSSCALE_TEST_JOURNAL_ONLY").reveal() == "journal-pa55"
    assert "journal-pa55" not in host.run(ShCommand.of("env")).stdout


def test_the_link_commands_run_in_a_session_of_their_own(tmp_path: Path) -> None:
    """A Ctrl-C at the terminal goes to the whole foreground process group: the link
    command must not be in it, or it dies half-way while the tool shields it."""
    import os

    load_actions()
    text = ONE_ARMED.replace(
        "  expected_peak_connections: 20000\n",
        "  expected_peak_connections: 20000\n"
        "  failover:\n"
        f"    link_down_command: ps -o sid= -p $$ > {tmp_path}/sid.txt\n"
        "    link_up_command: 'true'\n",
        1,
    )
    path = tmp_path / "pool.yaml"
    path.write_text(text, encoding="utf-8")
    loaded = load_pool(path)
    ctx = Context(pool=loaded.pool, profile=loaded.profile, host=lambda name: LocalHost(name))
    drill = registry()["lb.failover_drill"](ctx, {"fe": "ocsfe01", "mode": "link"})
    drill._fault(restore=False)
    child_session = int((tmp_path / "sid.txt").read_text().strip())
    assert child_session != os.getsid(0)
