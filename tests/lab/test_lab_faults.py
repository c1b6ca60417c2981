"""Faults injected at `lab up --fault`: each stops the run with a clear message
(exit code 1), and a rollback afterwards leaves nothing behind.

Two small labs carry the faults; each test runs on a copy of the lab's pool
file that lists only the front ends or clients the fault is about (as an
operator validating one server would), so one lab serves several faults.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import RUN_ID, RunningLab, bring_up, ocsscale_cli
from .fe_support import (
    assert_untouched,
    error_line,
    hosts_files,
    output,
    pool_copy,
    rollback_leaves_nothing,
    status,
    tool,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def fe_fault_lab() -> Iterator[RunningLab]:
    yield from bring_up(
        f"tfe{RUN_ID}", "one-armed", 2, faults=["ocsfe01:bad-san", "ocsfe02:close:444"]
    )


@pytest.fixture(scope="module")
def pin_fault_lab() -> Iterator[RunningLab]:
    yield from bring_up(
        f"tpin{RUN_ID}",
        "one-armed",
        1,
        faults=["client01:hosts-readonly", "client02:hosts-readonly"],
    )


@pytest.fixture(scope="module")
def old_windows_lab() -> Iterator[RunningLab]:
    yield from bring_up(f"tps1{RUN_ID}", "one-armed", 1, faults=["client02:powershell-1.0"])


def test_lab_status_lists_the_faults(fe_fault_lab: RunningLab) -> None:
    shown = ocsscale_cli("lab", "status", "--name", fe_fault_lab.state.name)
    assert shown.returncode == 0, output(shown)
    assert "faults:     ocsfe01:bad-san, ocsfe02:close:444" in shown.stdout


def test_wrong_san_stops_the_run_at_the_configure_fe_gate(
    fe_fault_lab: RunningLab, tmp_path: Path
) -> None:
    lab = fe_fault_lab
    pool = pool_copy(lab, tmp_path, front_ends=["ocsfe01"])
    before = hosts_files(lab)
    result = tool(lab, pool, "run", "--through", "validate-fe", "--yes", "--no-hold")
    assert result.returncode == 1, output(result)
    error = error_line(output(result))
    assert "configure-fe/gate[ocsfe01]" in error
    assert "ocsfe01: 1 of" in error and "cert.san: SANs lack ocsfe01.lab.test" in error
    phases = {p["id"]: p["status"] for p in status(lab, pool)["phases"]}
    assert phases["configure-fe"] == "failed" and phases["validate-fe"] == "not started"
    rollback_leaves_nothing(lab, pool, before)


def test_closed_444_fails_the_gate_naming_the_fe_and_port(
    fe_fault_lab: RunningLab, tmp_path: Path
) -> None:
    lab = fe_fault_lab
    pool = pool_copy(lab, tmp_path, front_ends=["ocsfe02"])
    before = hosts_files(lab)
    result = tool(lab, pool, "run", "--through", "validate-fe", "--yes", "--no-hold")
    assert result.returncode == 1, output(result)
    error = error_line(output(result))
    assert "ocsfe02: 1 of" in error
    assert "service.444: port 444 (https) does not answer" in error and "refused" in error
    rollback_leaves_nothing(lab, pool, before)


def test_closed_444_fails_validation_naming_the_fe_and_port(
    fe_fault_lab: RunningLab, tmp_path: Path
) -> None:
    lab = fe_fault_lab
    pool = pool_copy(lab, tmp_path, front_ends=["ocsfe02"])
    before = hosts_files(lab)
    result = tool(lab, pool, "run", "--phase", "validate-fe", "--yes", "--no-hold")
    assert result.returncode == 1, output(result)
    error = error_line(output(result))
    assert "validate-fe/probe[ocsfe02@client01]" in error
    assert "client01: 1 of 9 required ports failed through ocspool.lab.test to ocsfe02" in error
    assert "port 444 (https)" in error
    # the phase's cleanup ran although the probe failed: no pin is left
    assert_untouched(lab, before)
    rollback_leaves_nothing(lab, pool, before)


@pytest.mark.parametrize(
    ("client", "reason"),
    [
        ("client01", "cannot create /etc/hosts: Read-only file system"),
        ("client02", r"Access to the path 'C:\Windows\System32\drivers\etc\hosts' is denied"),
    ],
)
def test_a_pin_that_cannot_be_written_stops_the_run_naming_the_client(
    pin_fault_lab: RunningLab, tmp_path: Path, client: str, reason: str
) -> None:
    lab = pin_fault_lab
    pool = pool_copy(lab, tmp_path, test_clients=[client])
    before = hosts_files(lab)
    result = tool(lab, pool, "run", "--phase", "validate-fe", "--yes", "--no-hold")
    assert result.returncode == 1, output(result)
    error = error_line(output(result))
    assert f"validate-fe/pin[ocsfe01@{client}] failed: {client}: " in error
    assert reason in error
    assert_untouched(lab, before)
    rollback_leaves_nothing(lab, pool, before)


def test_powershell_1_stops_preflight_naming_the_host_and_what_to_install(
    old_windows_lab: RunningLab, tmp_path: Path
) -> None:
    lab = old_windows_lab
    pool = pool_copy(lab, tmp_path, test_clients=["client02"])
    result = tool(lab, pool, "run", "--phase", "preflight", "--yes")
    assert result.returncode == 1, output(result)
    error = error_line(output(result))
    assert "preflight/reachable[client02]" in error
    assert "client02 lacks what the tool's scripts need" in error
    assert "PowerShell 2.0 or later (found 1.0)" in error
    assert "Windows Management Framework 2.0 (KB968930)" in error
