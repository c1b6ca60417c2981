"""What `run` prints on the lab, with and without -v: the same validate-fe
(real probes of every port from both test clients through both front ends),
once in the compact default and once in detail."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import RunningLab
from .fe_support import assert_untouched, hosts_files, output, pool_copy, tool

pytestmark = pytest.mark.lab


def _run_and_roll_back(lab: RunningLab, directory: Path, *flags: str) -> str:
    pool = pool_copy(lab, directory)
    before = hosts_files(lab)
    run = tool(lab, pool, "run", "--phase", "validate-fe", "--yes", "--no-hold", *flags)
    assert run.returncode == 0, output(run)
    rolled = tool(lab, pool, "rollback", "--yes", *flags)
    assert rolled.returncode == 0, output(rolled)
    assert_untouched(lab, before)
    return run.stdout


def test_run_prints_far_fewer_lines_without_v(one_armed_lab: RunningLab, tmp_path: Path) -> None:
    compact = _run_and_roll_back(one_armed_lab, tmp_path / "compact")
    detailed = _run_and_roll_back(one_armed_lab, tmp_path / "detailed", "-v")
    lines, every = compact.splitlines(), detailed.splitlines()
    # -v: a line per port of each of the 4 probes (2 FEs x 2 clients), as before
    assert sum("answered by" in line for line in every) >= 4 * 9, detailed
    # without (and no terminal here): a few lines for the phase, none per step or port
    assert not [line for line in lines if "answered by" in line], compact
    assert 5 * len(lines) < len(every), compact
    assert "validate-fe done: 30 steps: " in compact
    assert "probe 4✓ (findings 52✓)" in compact
    assert "client tests: skipped: --no-hold" in compact
