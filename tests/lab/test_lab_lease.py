"""One run per pool, wherever its copies are: two copies of the lab's pool file in
two directories (two journals, two locks) share the run lease on lb01, over SSH.

A read-only phase (preflight) takes the lease like any run, so the test changes
nothing on the lab. The first run is paused (SIGSTOP) while it holds the lease,
so the second meets it for sure, then let go, or killed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocsscale_lab import lbhost

from .conftest import REPO, RunningLab
from .fe_support import output, pool_copy, tool, tool_argv

pytestmark = pytest.mark.lab

PREFLIGHT = ("run", "--phase", "preflight", "--yes")


def _start(lab: RunningLab, pool: Path) -> subprocess.Popen[bytes]:
    # lab exec, `ip netns exec` and the wrapper all exec: the pid is the run's own
    return subprocess.Popen(
        [sys.executable, "-m", "ocsscale", *tool_argv(lab, pool, *PREFLIGHT)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _paused_holding(lease: Path, proc: subprocess.Popen[bytes]) -> dict[str, object]:
    """Wait until the run holds the lease, then pause it there; the lease."""
    deadline = time.monotonic() + 120
    while not lease.exists():
        assert proc.poll() is None, f"the first run ended (exit {proc.returncode}) without it"
        assert time.monotonic() < deadline, "the first run never took the lease"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGSTOP)
    assert lease.exists(), "the first run released the lease before it could be paused"
    return json.loads(lease.read_text())


def _runs(pool: Path) -> int:
    """How many runs the copy's journal has started (0: no journal)."""
    path = pool.parent / ".ocsscale" / "journal.sqlite"
    if not path.exists():
        return 0
    db = sqlite3.connect(path, timeout=30)
    try:
        return int(db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    finally:
        db.close()


def _refused(lab: RunningLab, pool: Path, holder: dict[str, object], first: Path) -> str:
    runs = _runs(pool)
    result = tool(lab, pool, *PREFLIGHT)
    text = output(result)
    assert result.returncode == 3, text
    for part in (
        f"pid {holder['pid']}",
        f"lease {holder['lease_id']}",
        f"{holder['user']}@{holder['host']}",
        "`ocsscale -c ",
        str(first.parent / ".ocsscale"),
        "on lb01",
        "nothing was changed",
    ):
        assert part in text, (part, text)
    assert "Traceback" not in text
    assert _runs(pool) == runs  # nothing started
    return text


def test_two_copies_of_the_pool_file_run_one_at_a_time(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    first, second = pool_copy(lab, tmp_path / "one"), pool_copy(lab, tmp_path / "two")
    lease = lbhost.paths(lab.state, lab.topo)["leases"] / "ocspool.lab.test.lease"
    assert not lease.exists()

    # 1. the second copy is refused while the first runs, naming it
    proc = _start(lab, first)
    try:
        holder = _paused_holding(lease, proc)
        assert holder["pid"] == proc.pid
        text = _refused(lab, second, holder, first)
        assert "stale" not in text
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.wait(timeout=300)
    assert proc.returncode == 0
    assert not lease.exists()  # released at its end

    # 2. ... and runs once the first has ended
    result = tool(lab, second, *PREFLIGHT)
    assert result.returncode == 0, output(result)
    assert not lease.exists()

    # 3. a run killed holding it: another copy is refused, told how to clear it
    proc = _start(lab, first)
    try:
        holder = _paused_holding(lease, proc)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    text = _refused(lab, second, holder, first)
    assert "stale" in text and f"ocsscale unlock {holder['lease_id']}" in text
    assert lease.exists()  # never taken over
    cleared = tool(lab, second, "unlock", str(holder["lease_id"]))
    assert cleared.returncode == 0, output(cleared)
    assert f"lease {holder['lease_id']}" in output(cleared) and not lease.exists()
    result = tool(lab, second, *PREFLIGHT)
    assert result.returncode == 0, output(result)
    # the killed copy clears its own lock, then runs
    cleared = tool(lab, first, "unlock", str(holder["lease_id"]))
    assert cleared.returncode == 0, output(cleared)
    result = tool(lab, first, *PREFLIGHT)
    assert result.returncode == 0, output(result)
    assert not lease.exists()
