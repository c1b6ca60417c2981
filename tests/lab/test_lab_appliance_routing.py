"""routing.enable behind an appliance, on the two-armed lab: the pool file names the
manual driver and no LB host, so the LB namespace plays the appliance, and the
operator (this test) acts on it from the checklist's data only (routing on, or off
for the revert). The proof is the tool's own: every lab FE, over its real SSH, reaches
the directory server through the LB and reads back the LB's back-end address as its
default gateway. (The lab's admin host reaches the FE network through lb01 as well, so
before routing is on the FEs cannot be read at all: the step treats that as not done.)"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from ocsscale.actions.base import Context, registry
from ocsscale.config import load_pool
from ocsscale.lab import system
from ocsscale.runner.plugins import load_actions
from ocsscale.transports.factory import HostPool

from .conftest import RunningLab
from .fe_support import pool_copy

pytestmark = pytest.mark.lab


class ApplianceOperator:
    """Turns forwarding on or off in the LB's namespace as the checklist's data says."""

    def __init__(self, lab: RunningLab) -> None:
        self.lab = lab
        self.data: list[Mapping[str, Any]] = []

    def tell(self, title: str, lines: Sequence[str], data: Mapping[str, Any] | None = None) -> None:
        assert data is not None and data["kind"] == "routing", "a checklist without data"
        self.data.append(data)

    def ask(self, question: str, choices: Sequence[str], default: str | None = None) -> str:
        data = self.data[-1]
        assert data["backend_address"] == self.lab.state.topo().host("lb01").interfaces[1].address
        system.sysctl(
            self.lab.topo.ns("lb01"), "net.ipv4.ip_forward", "1" if data["enable"] else "0"
        )
        return "done"

    def text(self, question: str, default: str = "") -> str:
        raise AssertionError("not asked")


def _appliance_pool(lab: RunningLab, directory: Path) -> Path:
    path = pool_copy(lab, directory)
    yaml = YAML()
    data = yaml.load(path.read_text())
    data["load_balancer"]["driver"] = {"kind": "manual", "vendor": "lab appliance"}
    del data["load_balancer"]["host"]
    with path.open("w") as f:
        yaml.dump(data, f)
    return path


def test_routing_at_an_appliance_is_proven_from_every_front_end(
    two_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = two_armed_lab
    pool = _appliance_pool(lab, tmp_path / "appliance")
    operator = ApplianceOperator(lab)
    system.sysctl(lab.topo.ns("lb01"), "net.ipv4.ip_forward", "0")  # routing off
    load_actions()
    loaded = load_pool(pool)
    lb = loaded.pool.load_balancer
    args = {"address": str(lb.vip), "backend_address": str(lb.backend_address)}
    backend = str(lb.backend_address.ip)

    def go() -> tuple[Any, Any, Any, Any]:
        with HostPool(loaded) as hosts:
            ctx = Context(pool=loaded.pool, profile=loaded.profile, host=hosts, operator=operator)
            action = registry()["routing.enable"](ctx, args)
            current = action.read()
            assert action.diff(current)
            undo = json.loads(json.dumps(action.undo_record(current)))
            evidence = action.verify(action.apply(current))
            action.revert(undo)
            reverted = action.verify_reverted(undo)
            return current, undo, evidence, reverted

    try:
        current, undo, evidence, reverted = lab.inside("admin", go)
    finally:
        system.sysctl(lab.topo.ns("lb01"), "net.ipv4.ip_forward", "1")
    fes = [fe.name for fe in loaded.pool.front_ends]
    for fe in fes:
        before = current["front_ends"][fe]
        # the admin host reaches the FE network through lb01 too: with routing off,
        # nothing can be read, which proves nothing (the checklist is needed)
        assert before["reaches_directory"] is False and before["gateways"] is None
        assert fe in before["gateway_error"], before
        after = evidence["front_ends"][fe]
        assert after["reaches_directory"] is True and after["gateways"] == [backend]
    assert undo["reached_before"] == []
    # routing off again: the admin host cannot read the FEs (it reaches them through
    # lb01), which the rollback says is not proven rather than calling it proof
    assert reverted["proven"] is False and reverted["not_reaching"] == []
    assert sorted(reverted["unreadable"]) == sorted(fes)
    assert [d["enable"] for d in operator.data] == [True, False]
