"""load_balancer.checks in the lab (issue 20), on Debian's HAProxy and on the bundled
engine: the values the pool file gives are what the LB runs with (its own config and
its own view, read back), a hand edit of them is drift the tool shows, a member whose
service stops and one whose link is cut are taken out and come back, and rollback
leaves the LB host as it was.

No wall-clock assertion here (house rule): how fast each driver takes a member out at
the defaults is measured by `bench/run.py --only detect`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from ocsscale.providers.lb import haproxy_text as hx
from ocsscale.providers.lb.base import view_diff
from ocsscale_lab import hostsvc, lbhost, services

from .conftest import REPO, RunningLab
from .fe_support import entries, lb_look, lb_untouched, output, pool_copy, tool

pytestmark = pytest.mark.lab

LAB_OF = {"engine": "one_armed_lab", "haproxy": "one_armed_haproxy_lab"}
#: not the defaults, so that nothing can pass by leaving them
CHECKS = {"interval": 0.6, "timeout": 0.4, "fall": 3, "rise": 2}
VICTIM = "ocsfe01"
WAIT = 30.0  # seconds any change of the member's state may take (a bound, not a figure)


def _set_checks(pool: Path) -> None:
    yaml = YAML()
    data = yaml.load(pool.read_text())
    data["load_balancer"]["checks"] = dict(CHECKS)
    with pool.open("w") as f:
        yaml.dump(data, f)


def _health(lab: RunningLab, pool: Path) -> str:
    return str(lb_look(lab, pool, lambda driver: driver.stats()[VICTIM].health))


def _until(lab: RunningLab, pool: Path, want: str) -> None:
    deadline = time.monotonic() + WAIT
    seen = "never read"
    while time.monotonic() < deadline:
        seen = _health(lab, pool)
        if seen == want:
            return
        time.sleep(0.2)
    raise AssertionError(f"{VICTIM} is {seen} at the LB, not {want}, {WAIT:.0f} s on")


def _link(lab: RunningLab, state: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ocsscale_lab.link", "--lab", lab.state.name, "--host", VICTIM,
         state],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _edit_on_lb(lab: RunningLab, kind: str) -> None:
    """A person changes the check timing on the LB host by hand and reloads the LB."""
    paths = lbhost.paths(lab.state, lab.topo)
    if kind == "haproxy":
        path, old, new = paths["haproxy_cfg"], "inter 600ms", "inter 2s"
        name = lbhost.HAPROXY_SERVICE
    else:
        path, old, new, name = paths["farm"], "inter: 0.6", "inter: 2.0", lbhost.ENGINE_SERVICE
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    services.reload(lab.state.directory, services.load(lab.state.directory, "lb01", name))


def _drift(lab: RunningLab, pool: Path) -> list[str]:
    view = lb_look(lab, pool, lambda driver: driver.read_farm()["view"])
    return view_diff({"checks": CHECKS}, {"checks": view["checks"]})


@pytest.mark.parametrize("kind", ["haproxy", "engine"])
def test_check_timing_configured_read_back_drift_shown_member_taken_out(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    lab: RunningLab = request.getfixturevalue(LAB_OF[kind])
    pool = pool_copy(lab, tmp_path / "run")
    _set_checks(pool)
    try:
        result = tool(lab, pool, "run", "--phase", "configure-lb", "--yes", "--no-hold")
        assert result.returncode == 0, output(result)
        farm = next(e for e in entries(pool) if e["step_id"] == "configure-lb/farm")
        assert farm["evidence"]["readback"]["checks"] == CHECKS

        # the LB's own configuration says them, in its own terms
        paths = lbhost.paths(lab.state, lab.topo)
        if kind == "haproxy":
            text = paths["haproxy_cfg"].read_text()
            assert "inter 600ms fall 3 rise 2" in text
            assert "timeout check 400ms" in text and "timeout connect 400ms" in text
            assert hx.config_view(text)["checks"] == CHECKS
        else:
            health: dict[str, Any] = YAML(typ="safe").load(paths["farm"].read_text())["health"]
            timing = (health["inter"], health["timeout"], health["fall"], health["rise"])
            assert timing == (0.6, 0.4, 3, 2)
            # and the running engine says it runs with them (its /status)
            assert _drift(lab, pool) == []

        # a member whose service stops is taken out, and comes back
        _until(lab, pool, "up")
        fe = services.load(lab.state.directory, VICTIM, hostsvc.POOLMEMBER)  # behind 5061
        services.stop(lab.state.directory, fe)
        try:
            _until(lab, pool, "down")
        finally:
            services.start(lab.state.directory, fe)
        _until(lab, pool, "up")
        # ... and so is one whose link is cut
        _link(lab, "down")
        try:
            _until(lab, pool, "down")
        finally:
            _link(lab, "up")
        _until(lab, pool, "up")

        # a hand edit of the timing on the LB host is drift: shown, never overwritten
        _edit_on_lb(lab, kind)
        deadline = time.monotonic() + WAIT
        while not _drift(lab, pool) and time.monotonic() < deadline:
            time.sleep(0.2)  # the LB takes its reload
        assert _drift(lab, pool) == ["checks interval: 2.0 on the LB, 0.6 planned"]
        # and so does the tool: a dry run of a fresh copy reads the LB and compares
        look = pool_copy(lab, tmp_path / "look")
        _set_checks(look)
        result = tool(lab, look, "run", "--phase", "configure-lb", "--dry-run")
        text = output(result)
        assert "checks interval: 2.0 on the LB, 0.6 planned" in text, text
    finally:
        result = tool(lab, pool, "rollback", "--yes", timeout=400)
        assert result.returncode == 0, output(result)
    lb_untouched(lab)
