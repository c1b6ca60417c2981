"""The test suite's own layout (issue 19): every contract suite in tests/contract/, and
every test that brings a lab up selected by `-m lab` (so `-m "not lab"` runs the rest
without root). Read from the files, and for the markers from pytest's own collection.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
LAB_TESTS = TESTS / "lab"
CONTRACT = TESTS / "contract"
#: how a module outside tests/lab/ brings a lab up, besides the lab conftest's fixtures
LAB_NAMES = {"RunningLab", "bring_up"}


def _lab_fixtures() -> set[str]:
    """The fixtures tests/lab/conftest.py defines (each brings a lab up)."""
    tree = ast.parse((LAB_TESTS / "conftest.py").read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any("fixture" in ast.unparse(d) for d in node.decorator_list)
    }


def _names_used(path: Path) -> set[str]:
    """The names a module imports, and its functions' parameters (fixtures asked for)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.update(arg.arg for arg in node.args.args)
    return found


def _lab_modules_elsewhere() -> list[Path]:
    names = _lab_fixtures() | LAB_NAMES
    return [
        path
        for path in sorted(TESTS.rglob("test_*.py"))
        if LAB_TESTS not in path.parents and names & _names_used(path)
    ]


def test_module_discovery_sees_the_lb_contract_as_bringing_a_lab_up() -> None:
    """The check below covers the modules this discovery finds: it must find the known one."""
    assert CONTRACT / "test_lb_contract.py" in _lab_modules_elsewhere()
    assert CONTRACT / "test_dns_contract.py" not in _lab_modules_elsewhere()


def test_every_lab_test_is_selected_by_the_lab_marker() -> None:
    """Collected by pytest itself (nothing runs): every test under tests/lab/, and in
    any other module that brings a lab up, carries `lab`; none is left to `not lab`."""
    lab_modules = sorted(LAB_TESTS.glob("test_*.py"))
    modules = lab_modules + _lab_modules_elsewhere()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        + ["-m", "lab", *map(str, modules)],
        capture_output=True,
        text=True,
        cwd=TESTS.parent,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert "deselected" not in summary, f"tests left out of `-m lab`: {summary}"
    selected = {line.split("::")[0] for line in result.stdout.splitlines() if "::" in line}
    missing = [m for m in modules if str(m.relative_to(TESTS.parent)) not in selected]
    assert not missing, f"modules with no test selected by `-m lab`: {missing}"


def test_every_contract_suite_is_in_tests_contract() -> None:
    elsewhere = [p for p in TESTS.rglob("test_*_contract.py") if p.parent != CONTRACT]
    assert not elsewhere
    assert {p.name for p in CONTRACT.glob("test_*_contract.py")} >= {
        "test_dns_contract.py",
        "test_lb_contract.py",
        "test_transport_contract.py",
    }
