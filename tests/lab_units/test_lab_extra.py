"""The `lab` extra is empty on purpose (pyproject.toml says why): the wheel ships
ocsscale_lab beside ocsscale, and the lab imports no third-party module the
product does not import itself, so installing the product installs all it needs."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def third_party(root: Path) -> set[str]:
    """Top-level modules imported anywhere under `root` (lazily too) that are
    neither the standard library nor ocsscale's own packages."""
    found: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.partition(".")[0])
    own = {"ocsscale", "ocsscale_lab"}
    return {m for m in found if m not in sys.stdlib_module_names and m not in own}


def test_the_lab_needs_no_python_package_the_product_does_not() -> None:
    lab, product = third_party(REPO / "ocsscale_lab"), third_party(REPO / "ocsscale")
    assert {"rich", "dns"} <= lab  # the scan sees the lab's imports
    assert lab - product == set(), "the lab extra must list what only the lab imports"


def test_the_extra_is_empty_and_the_wheel_ships_the_lab() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["optional-dependencies"]["lab"] == []
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert "ocsscale_lab" in wheel
