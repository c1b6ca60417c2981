"""`ocsscale status --json` walks the lab's migration: at each point its first
`next` command is the one the walkthrough expects (the next phase in order, the
cutover with --wait while lowered TTLs run out, the report once everything is
done), and that command is run, as shown, on the lab's admin host; then the
report says the --no-hold run's holds were skipped and nobody signed off.

The run commands get `--yes --no-hold` added: status leaves the go-ahead and
the client tests' sign-off to the person, and the lab runs unattended.
Everything is rolled back at the end (DNS, LB, hosts files, the legacy FE).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocsscale_lab.dns import POOL_TTL

from .conftest import RunningLab
from .fe_support import (
    assert_untouched,
    dns_record,
    edit_dns,
    entries,
    hosts_files,
    lb_untouched,
    output,
    pool_copy,
    tool,
)

#: the whole walk, ten phases, on a machine shared with other labs
pytestmark = [pytest.mark.lab, pytest.mark.timeout(2400)]

#: a phase of the lab's migration runs well within this (the drill is the longest)
PHASE_TIMEOUT = 600


def _status(lab: RunningLab, pool: Path) -> dict:
    shown = tool(lab, pool, "status", "--json")
    assert shown.returncode == 0, output(shown)
    return json.loads(shown.stdout)


def _as_shown(lab: RunningLab, command: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`command` exactly as status shows it, run by a shell-less exec on the admin
    host with the lab's `ocsscale` first on PATH, plus `extra` arguments."""
    argv = shlex.split(command)
    assert argv[0] == "ocsscale", command
    bin_dir = lab.state.bin_dir
    env = {
        **os.environ,
        "COLUMNS": "400",
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }
    return subprocess.run(
        ["ip", "netns", "exec", lab.topo.ns("admin"), *argv, *extra],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=PHASE_TIMEOUT,
        check=False,
    )


def _ready_at(pool: Path, phase: str) -> float:
    """When `phase` may start, from the journal: the lowered TTLs' end (cutover), or
    the old TTL since the cutover's change (decommission); 0 for the others."""
    if not (pool.parent / ".ocsscale" / "journal.sqlite").exists():
        return 0  # nothing has run yet
    done = [e for e in entries(pool) if e["status"] == "done" and e["evidence"]]
    if phase == "cutover":
        lowered = [e["evidence"].get("ready_at", 0) for e in done if e["action"] == "dns.lower_ttl"]
        return max(lowered, default=0)
    if phase == "decommission":
        moved = [
            e["evidence"]["changed_at"] + (e["evidence"].get("old") or {}).get("ttl", 0)
            for e in done
            if e["action"] in ("dns.replace", "dns.retarget_srv") and "changed_at" in e["evidence"]
        ]
        return max(moved, default=0)
    return 0


def test_status_names_each_next_phase_and_its_command_runs_as_shown(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    legacy = lab.address("ocsfe00")
    pool = pool_copy(lab, tmp_path / "walk")
    edit_dns(pool, watch_window=3, watch_interval=1)
    base = f"ocsscale -c {shlex.quote(str(pool))}"
    planned = json.loads(tool(lab, pool, "plan", "--json").stdout)
    walk = [p["id"] for p in planned["phases"] if not p.get("skipped")]
    assert walk[0] == "preflight" and walk[-2:] == ["cutover", "decommission"], walk
    hosts_before = hosts_files(lab)
    waited = []
    try:
        for phase in walk:
            before = time.time()
            report = _status(lab, pool)
            after = time.time()
            command = report["next"][0]["command"]
            ready = _ready_at(pool, phase)
            if ready > after:  # the old TTL has not run out: status says --wait
                assert command == f"{base} run --phase {phase} --wait", report
                assert f"{phase} waits for the old TTL until" in report["stage"]
                waited.append(phase)
            elif ready < before:
                assert command == f"{base} run --phase {phase}", report
            else:  # it ran out while status looked: either is right
                assert command.startswith(f"{base} run --phase {phase}"), report
            started = time.monotonic()
            ran = _as_shown(lab, command, "--yes", "--no-hold")
            assert ran.returncode == 0, f"{command}\n{output(ran)}"
            print(f"{phase}: {time.monotonic() - started:.0f} s", file=sys.stderr)
            assert [p["status"] for p in _status(lab, pool)["phases"] if p["id"] == phase] == [
                "done"
            ]
        # lower-ttl runs right before the cutover here: its TTL is waited out
        assert "cutover" in waited, "lower-ttl's old TTL should still run when cutover is next"

        report = _status(lab, pool)
        assert report["stage"] == "every phase is done: the migration is complete"
        assert report["next"][0]["command"] == f"{base} report"
        written = _as_shown(lab, report["next"][0]["command"])
        assert written.returncode == 0, output(written)
        assert (pool.parent / ".ocsscale" / "report.html").is_file()

        # the --no-hold run's holds: skipped, and the report says nobody signed off
        model = json.loads(tool(lab, pool, "report", "-f", "json", "-o", "-").stdout)
        people = model["sign_offs"]
        assert people["holds"] == 0 and people["holds_skipped"] >= 3, people
        assert {a["how"] for a in model["answers"]} == {"--yes on the command line"}
        assert len(model["answers"]) == len(walk)  # one go-ahead per run
        (tile,) = [t for t in model["summary"] if t["label"] == "sign-offs"]
        assert "skipped (--no-hold: nobody signed off)" in tile["value"]
    finally:
        rolled = tool(lab, pool, "rollback", "--yes", timeout=PHASE_TIMEOUT)
    assert rolled.returncode == 0, output(rolled)
    assert dns_record(lab) == ({legacy}, POOL_TTL)
    assert_untouched(lab, hosts_before)
    lb_untouched(lab)
