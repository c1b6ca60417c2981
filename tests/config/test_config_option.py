"""-c/--config after the command, on every command that reads the pool file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ocsscale.cli.main import app

from .helpers import EXAMPLES

ONE = str(EXAMPLES / "one-armed.yaml")
TWO = str(EXAMPLES / "two-armed-routed.yaml")


def test_every_root_command_takes_config_after_its_name() -> None:
    runner = CliRunner()
    names = [info.name for info in app.registered_commands]
    assert {"check", "init", "plan", "run", "status", "rollback", "unlock"} <= set(names)
    for name in names:
        result = runner.invoke(app, [name, "--help"], terminal_width=200)
        assert result.exit_code == 0, result.output
        assert "-c, --config" in result.stdout, name


@pytest.mark.parametrize("option", ["-c", "--config"])
def test_check_with_config_after_the_command(option: str) -> None:
    result = CliRunner().invoke(app, ["check", option, TWO], env={"OCSSCALE_POOL": None})
    assert result.exit_code == 0, result.output
    assert f"{TWO}: valid" in result.stdout
    assert "two-armed-routed" in result.stdout


def test_after_the_command_wins_over_before_and_the_environment() -> None:
    result = CliRunner().invoke(
        app, ["-c", ONE, "check", "-c", TWO], env={"OCSSCALE_POOL": "/nonexistent.yaml"}
    )
    assert result.exit_code == 0, result.output
    assert f"{TWO}: valid" in result.stdout


@pytest.mark.parametrize("name", ["check", "plan"])
def test_pool_commands_read_the_file_given_after(name: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = CliRunner().invoke(app, ["-c", ONE, name, "-c", str(missing)])
    assert result.exit_code == 2, result.output
    assert f"{missing}: no such pool file" in result.stderr


@pytest.mark.parametrize("args", [["status"], ["unlock", "1f2e3d4c"]])
def test_state_commands_read_the_state_next_to_the_file_given_after(
    args: list[str], tmp_path: Path
) -> None:
    # an unreadable lock next to the file given after: only that file's state is read
    (tmp_path / ".ocsscale").mkdir()
    (tmp_path / ".ocsscale" / "lock").write_text("not json")
    pool = tmp_path / "pool.yaml"
    result = CliRunner().invoke(app, ["-c", ONE, *args[:1], "-c", str(pool), *args[1:]])
    assert result.exit_code == 2, result.output
    assert f"the lock file {tmp_path / '.ocsscale' / 'lock'} is unreadable" in result.stderr


def test_init_writes_to_the_file_given_after(tmp_path: Path) -> None:
    target = tmp_path / "new.yaml"
    result = CliRunner().invoke(app, ["init", "-c", str(target)])
    assert result.exit_code == 0, result.output
    assert target.is_file()
