"""Issue 18's "done when", behind the lab's packet-forwarding appliance
(`lab up --lb appliance`, nftables NAT, nothing accepts on an FE's behalf):
`run --through failover-test --yes` completes while the lab's operator, at
"another terminal", reads each checklist with `ocsscale answer --json`, enters
its data into the appliance and answers `done` with `ocsscale answer`
(`ocsscale lab operator`, the real command). Three FEs at weights 2:1:1: the
held connections of validate-lb split exactly by weight. The drill's detection is
measured from outside (the appliance's view cannot be read). `rollback` leaves
the VIP silent on every port.

One-armed with `ocsfe01:close:5060` (a default R2 pool's optional port refused
through the appliance as a reset: configure-lb shows it, and does not fail);
two-armed routed (the routing step proves routing from every FE: the directory
reached through the appliance, the default gateway read back).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from ocsscale.probes.basic import tcp_probe

from .conftest import REPO, RUN_ID, RunningLab, bring_up
from .fe_support import VIP_ADDRESS, entries, journaled_answers, output, pool_copy, tool

pytestmark = pytest.mark.lab

WEIGHTS = {"ocsfe01": 2, "ocsfe02": 1, "ocsfe03": 1}
RUN_TIMEOUT = 900.0

CASES = {
    "one-armed": ("one-armed", ["ocsfe01:close:5060"], {}),
    # routing already on at the appliance: the admin machine reaches the FEs' network
    # only through it (preflight comes first), so the routing step proves it and changes
    # nothing (its checklist is proven in test_lab_appliance.py and tests/actions)
    "two-armed-routed": ("two-armed-routed", [], {}),
}


@pytest.fixture(params=sorted(CASES))
def appliance_lab(request: pytest.FixtureRequest) -> Iterator[RunningLab]:
    kind, faults, options = CASES[request.param]
    name = f"tr{'1' if kind == 'one-armed' else '2'}{RUN_ID}"
    yield from bring_up(name, kind, 3, faults=faults, lb="appliance", **options)


def _weighted_pool(lab: RunningLab, directory: Path) -> Path:
    pool = pool_copy(lab, directory)
    yaml = YAML()
    data = yaml.load(pool.read_text())
    for fe in data["front_ends"]:
        fe["weight"] = WEIGHTS[fe["name"]]
    with pool.open("w") as f:
        yaml.dump(data, f)
    return pool


class LabOperator:
    """`ocsscale lab operator` for this lab and pool file, stopped by its pid."""

    def __init__(self, lab: RunningLab, pool: Path, log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.log = log
        argv = [sys.executable, "-m", "ocsscale", "lab", "operator", "-n", lab.state.name]
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [*argv, "--pool", str(pool), "--max-seconds", str(2 * RUN_TIMEOUT)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        return self.log.read_text()


def _last(pool: Path, action: str) -> dict:
    found = [e for e in entries(pool) if e["action"] == action and e["status"] == "done"]
    assert found, f"no {action} done"
    return found[-1]


def test_run_through_the_drill_behind_the_appliance_with_the_lab_operator_answering(
    appliance_lab: RunningLab, tmp_path: Path
) -> None:
    lab = appliance_lab
    pool = _weighted_pool(lab, tmp_path / "appliance")
    operator = LabOperator(lab, pool, tmp_path / "operator.log")
    try:
        result = tool(
            lab, pool, "run", "--through", "failover-test", "--yes", "--no-hold",
            "--answer-timeout", "300", timeout=RUN_TIMEOUT,
        )  # fmt: skip
        text = output(result)
        assert result.returncode == 0, text + operator.log.read_text()

        # every question was the lab operator's, answered through `ocsscale answer`
        answers = journaled_answers(pool)
        assert answers and all(a["by"] == "lab-operator" for a in answers), answers
        assert all(a["via"] == "answer" and a["answer"] == "done" for a in answers), answers
        # the go-ahead was --yes's, journaled as such (the sign-off table shows it)
        given = [a for a in journaled_answers(pool, go_ahead=True) if a not in answers]
        assert [a["via"] for a in given] == ["flag"], given

        distribution = _last(pool, "lb.distribution")["evidence"]
        counts, total = distribution["counts"], distribution["connections"]
        assert total % 4 == 0, distribution
        assert counts == {n: total * w // 4 for n, w in WEIGHTS.items()}, distribution

        reaches = [e["evidence"] for e in entries(pool) if e["action"] == "lb.reach"]
        refused = [r for r in reaches if 5060 in (r.get("optional_not_answering") or [])]
        if lab.topo.kind == "one-armed":
            # configure-lb: ocsfe01 refuses 5060, passed through as a reset: information
            assert refused, reaches
        else:
            assert not refused, reaches
        if lab.topo.kind == "one-armed":
            assert "5060" in text and "optional" in text, text
        else:
            routing = _last(pool, "routing.enable")
            assert routing["evidence"], routing

        drills = [
            e["evidence"]
            for e in entries(pool)
            if e["action"] == "lb.failover_drill" and e["status"] == "done"
        ]
        assert drills, text
        # the appliance's own view cannot be read: detection and return seen from outside
        assert all(d["back_detected_by"]["by"] in ("outside", "operator") for d in drills), drills
        assert all(d["detected_by"]["by"] in ("outside", "operator") for d in drills), drills
    finally:
        result = tool(lab, pool, "rollback", "--yes", "--answer-timeout", "300", timeout=600)
        log = operator.stop()
    assert result.returncode == 0, output(result) + log
    for port in (5061, 443, 444):
        probe = lab.inside("client01", lambda p=port: tcp_probe(VIP_ADDRESS, p, timeout=1.0))
        assert not probe.ok, (port, probe)
