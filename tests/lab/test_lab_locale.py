"""A German Windows in the lab (`--fault client02:locale-de`): the WinRM stand-in's
netstat says HERGESTELLT. The lab's front ends are Linux (no Windows FE yet), so what
is proven here: decommission's drain, reading the legacy FE (ocsfe00) over SSH with
`ss`, sees the German Windows client's connection and fails listing it, then passes
once it is gone; and the Windows host's own table, read through .NET, lists the
admin host's WinRM connection to it whatever its language."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsscale_lab import services

from .conftest import RUN_ID, RunningLab, bring_up
from .fe_support import drain_sees_a_held_client, pool_copy

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def german_lab() -> Iterator[RunningLab]:
    yield from bring_up(f"tde{RUN_ID}", "one-armed", 1, faults=["client02:locale-de"])


def test_the_drain_and_the_windows_table_hold_with_a_german_windows(
    german_lab: RunningLab, tmp_path: Path
) -> None:
    lab = german_lab
    pool = pool_copy(lab, tmp_path / "run")
    windows = lab.address("client02")
    admin = lab.address("admin")
    standin = services.load(lab.state.directory, "client02", "winrm")
    assert "--locale de" in " ".join(standin.argv)  # the fault is in place
    seen = drain_sees_a_held_client(lab, pool)
    assert seen["held"]["connected"], seen
    assert seen["failed"] and f"{windows} (port " in seen["failed"], seen
    assert seen["drained"]["seen"][-1]["clients"] == 0
    assert admin in seen["winrm"], seen
