"""The engine's seams with the rest of the tool: no import cycle inside it, its
errors the tool's own (OcsscaleError) rendered by the tool's one funnel
(cli/render.py) with the exit codes they always had, no error class named as one
of the tool's."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ocsscale import errors
from ocsscale.engine.cli import app
from ocsscale.engine.client import AdminClientError
from ocsscale.engine.loader import FarmFileError
from ocsscale.engine.server import EngineError

from .conftest import Backends, EngineProc, Net, basic_farm

REPO = Path(__file__).resolve().parents[2]
ENGINE = REPO / "ocsscale" / "engine"
RUN_TIMEOUT = 30  # a hang guard; each run takes well under a second
# `python -m ocsscale.engine ...` and `ocsscale lb ...`: the same commands, one funnel
ENTRIES = [["ocsscale.engine"], ["ocsscale", "lb"]]


def _runs(tree: ast.AST) -> list[ast.AST]:
    """The nodes of `tree` that can run: all but `if TYPE_CHECKING:` blocks, whose
    imports (for annotations) never execute."""
    nodes: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        nodes.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return nodes


def _imports(path: Path) -> set[str]:
    """The engine modules `path` imports, lazy ones included: an import inside a
    function is an arrow all the same."""
    found: set[str] = set()
    for node in _runs(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:  # from . import loader
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[:2] == ["ocsscale", "engine"] and len(parts) > 2:
                found.add(parts[2])
    return found - {path.stem}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as the modules along it, or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return path[path.index(name) :] + [name]
        if name in done:
            return None
        for dep in sorted(graph.get(name, ())):
            found = visit(dep, [*path, name])
            if found:
                return found
        done.add(name)
        return None

    for name in sorted(graph):
        found = visit(name, [])
        if found:
            return found
    return None


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"runtime": {"workers"}, "workers": {"loop", "runtime"}, "loop": set()}) == [
        "runtime",
        "workers",
        "runtime",
    ]
    assert _cycle({"runtime": {"workers", "loop"}, "workers": {"loop"}, "loop": set()}) is None


def test_no_engine_module_imports_one_that_imports_it_back() -> None:
    graph = {path.stem: _imports(path) for path in ENGINE.glob("*.py")}
    assert "loop" in graph["workers"] and "runtime" not in graph["workers"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_no_engine_error_class_is_named_as_one_of_the_tools() -> None:
    tool = {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, Exception)}
    engine = {
        node.name
        for path in ENGINE.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
    }
    assert "CheckFailed" in tool and "HealthCheckFailed" in engine
    assert not tool & engine


@pytest.mark.parametrize(
    ("error", "base", "code"),
    [
        (FarmFileError, errors.UsageError, errors.EXIT_USAGE),
        (EngineError, errors.OcsscaleError, errors.EXIT_FAILED),
        (AdminClientError, errors.OcsscaleError, errors.EXIT_FAILED),
    ],
)
def test_engine_errors_are_the_tools(error: type[Exception], base: type, code: int) -> None:
    assert issubclass(error, base)
    assert error.exit_code == code  # type: ignore[attr-defined]


def test_the_engine_cli_raises_its_errors_and_prints_none(tmp_path: Path) -> None:
    """Rendering is the entry point's: a command of the engine only raises."""
    result = CliRunner().invoke(app, ["status", "--socket", str(tmp_path / "none")])
    assert isinstance(result.exception, AdminClientError)
    assert result.output == ""


def _run(entry: list[str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *entry, *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize("entry", ENTRIES)
def test_the_funnel_renders_them_with_their_exit_codes(entry: list[str], tmp_path: Path) -> None:
    gone = tmp_path / "none.sock"
    result = _run(entry, "status", "--socket", gone)
    assert (result.returncode, result.stdout) == (1, "")
    expected = f"error: no admin socket at {gone}: is the engine running (ocsscale lb serve)?\n"
    assert result.stderr == expected
    result = _run(entry, "status")
    assert (result.returncode, result.stderr) == (
        2,
        "error: say which engine: --socket PATH or --farm FILE\n",
    )
    # a name that looks like console markup is shown as it is, not read as a style
    farm = tmp_path / "[red]farm.yaml"
    farm.write_text("farm: x\nports: [5061]\n")
    result = _run(entry, "check", "--farm", farm)
    assert (result.returncode, result.stderr) == (
        2,
        f"error: {farm}:1:1: vip: required key is missing\n",
    )


@pytest.mark.parametrize("entry", ENTRIES)
def test_serve_refusals_of_this_machine_exit_1_through_the_funnel(
    entry: list[str],
    tmp_path: Path,
    net: Net,
    backends: Backends,
    engine_factory: type[EngineProc],
) -> None:
    backends.open(net.servers[0], 16621, "fe1")
    running = engine_factory(basic_farm(net, [16621], [1]))
    # its port is taken: an EngineError of the engine itself
    taken = tmp_path / "taken.yaml"
    taken.write_text(running.farm_path.read_text().replace(running.socket, str(tmp_path / "t")))
    result = _run(entry, "serve", "--farm", taken)
    assert result.returncode == 1, result.stderr
    assert f"error: cannot listen on {net.vip}:16621: Address already in use\n" in result.stderr
    # its admin socket is taken: an OSError of this machine, the same exit 1
    shared = tmp_path / "shared.yaml"
    shared.write_text(running.farm_path.read_text().replace("16621", "16622"))
    result = _run(entry, "serve", "--farm", shared)
    assert result.returncode == 1, result.stderr
    assert f"error: {running.socket} is in use by another running engine\n" in result.stderr
    assert "Traceback" not in result.stderr
    assert running.server("fe1")["healthy"]  # the running engine never noticed
