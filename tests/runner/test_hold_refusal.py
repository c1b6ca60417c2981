"""A run that would hold for the operator's sign-off, with nobody at a terminal,
is refused before anything is contacted or changed (exit 2)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ocsscale.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-armed.yaml"


def test_holds_without_a_terminal_are_refused_naming_no_hold(tmp_path: Path) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(EXAMPLE.read_text())
    for phases in (["--phase", "validate-fe"], ["--through", "validate-fe"]):
        result = CliRunner().invoke(app, ["-c", str(pool), "run", *phases, "--yes"])
        assert result.exit_code == 2, result.output
        assert "holds for the operator's sign-off of the client tests" in result.output
        assert "pass --no-hold to run it unattended (nothing was changed)" in result.output
    assert not (tmp_path / ".ocsscale").exists()


def test_plan_shows_the_holds() -> None:
    result = CliRunner().invoke(app, ["-c", str(EXAMPLE), "plan", "--json"])
    assert result.exit_code == 0, result.output
    assert '"validate-fe/hold[ocsfe01]"' in result.output
    assert '"validate-lb/hold"' in result.output
