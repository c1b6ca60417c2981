"""The lab and the engine are imported only when one of their commands runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
POOL = str(REPO / "examples" / "one-armed.yaml")
HANG_GUARD = 60

# runs `ocsscale ARGS...` as the entry point does, then lists the modules it imported
PROBE = """
import sys
from ocsscale.cli.entry import main
sys.argv = ["ocsscale", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("MODULES", " ".join(sorted(m for m in sys.modules if m.startswith("ocsscale"))))
print("CODE", code)
"""


def imported(*args: str) -> tuple[set[str], str, str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    return set(lines.get("MODULES", "").split()), lines.get("CODE", ""), result.stdout


@pytest.mark.parametrize("args", [["-c", POOL, "check"], ["check", "-c", POOL], ["--help"]])
def test_commands_of_the_pool_do_not_import_the_lab_or_the_engine(args: list[str]) -> None:
    modules, code, out = imported(*args)
    assert code == "0", out
    assert "ocsscale.cli.main" in modules
    assert not {m for m in modules if m.startswith(("ocsscale_lab", "ocsscale.engine"))}


def test_help_still_lists_the_lab_and_the_engine() -> None:
    _, code, out = imported("--help")
    assert code == "0"
    assert "lab       A rehearsal lab of the whole topology." in out
    assert "lb        The bundled load-balancer engine." in out


@pytest.mark.parametrize(
    ("group", "package", "command"),
    [("lab", "ocsscale_lab", "exec"), ("lb", "ocsscale.engine", "serve")],
)
def test_a_group_is_imported_when_it_runs(group: str, package: str, command: str) -> None:
    modules, code, out = imported(group, "--help")
    assert code == "0", out
    assert f"{package}.cli" in modules
    assert command in out


def test_lb_commands_skip_the_pool_file_model_and_the_runner(tmp_path: Path) -> None:
    """The tool polls `ocsscale lb status --json` on the LB host: it must start fast."""
    modules, code, out = imported("lb", "status", "--json", "--socket", str(tmp_path / "none"))
    assert code == "1", out  # no engine there: one clear error, no traceback
    assert "ocsscale.engine.cli" in modules
    heavy = ("ocsscale.cli.main", "ocsscale.config", "ocsscale.runner", "ocsscale.engine.farm")
    assert not {m for m in modules if m.startswith(heavy)}, modules


def test_the_lb_api_plumbing_command_needs_only_the_standard_library(tmp_path: Path) -> None:
    """The engine driver polls `ocsscale lb api GET /status` on the LB host."""
    modules, code, out = imported("lb", "api", "GET", "/status", "--socket", str(tmp_path / "x"))
    assert code == "1", out  # no engine there: one clear error
    # errors.py: the client's errors are the tool's (itself the standard library alone)
    assert modules == {
        "ocsscale", "ocsscale.cli", "ocsscale.cli.entry", "ocsscale.engine",
        "ocsscale.engine.api_cli", "ocsscale.engine.client", "ocsscale.errors",
    }, modules  # fmt: skip


def test_lb_errors_are_reported_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ocsscale", "lb", "status", "--socket", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert result.returncode == 1
    assert "no admin socket" in result.stderr and "Traceback" not in result.stderr


def test_the_lab_imports_nothing_of_the_cli_or_the_actions() -> None:
    code = (
        "import sys, ocsscale_lab.cli, ocsscale_lab.up, ocsscale_lab.down\n"
        "above = ('ocsscale.cli', 'ocsscale.actions')\n"
        "print(sorted(m for m in sys.modules if m.startswith(above)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_GUARD, check=True
    ).stdout
    assert out.strip() == "[]"


# `ocsscale ARGS...` with a module of the lab unimportable, as in an install without it
WITHOUT = """
import sys
sys.modules[sys.argv[1]] = None  # import of it raises ModuleNotFoundError
from ocsscale.cli.entry import main
sys.argv = ["ocsscale", *sys.argv[2:]]
main()
"""


def without(module: str, *args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)} if cache else None
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, module, *args],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
        cwd=REPO,
        env=env,
    )


@pytest.mark.parametrize("args", [["lab", "up"], ["lab", "--help"], ["lab"]])
def test_without_the_lab_package_lab_says_how_to_install_it(args: list[str]) -> None:
    result = without("ocsscale_lab", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: `ocsscale lab` is not installed here: ")
    assert "pip install 'ocsscale[lab]'" in lines[0] and "make venv" in lines[0]
    # the rest of the tool does not need it
    assert without("ocsscale_lab", "--help").returncode == 0
    assert without("ocsscale_lab", "-c", POOL, "check").returncode == 0


def test_a_module_missing_inside_the_lab_is_not_taken_for_a_missing_install(
    tmp_path: Path,
) -> None:
    result = without("ocsscale_lab.up", "lab", "up", cache=tmp_path)
    assert result.returncode == 70, result.stderr  # a bug: reported as one, not as usage
    assert "pip install" not in result.stderr and "Traceback" not in result.stderr
    assert "ocsscale_lab.up" in (tmp_path / "ocsscale" / "debug.log").read_text()


def test_lab_errors_are_rendered_by_the_root_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ocsscale", "lab", "exec", "admin", "-n", "h1-none", "--", "true"],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
