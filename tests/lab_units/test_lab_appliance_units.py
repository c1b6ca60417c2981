"""The lab appliance's pure parts (no root): its ruleset, its pool file, what the
lab's operator refuses before it changes anything."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from ocsscale.config.loader import load_pool
from ocsscale_lab import appliance, poolfile
from ocsscale_lab.appliance_operator import (
    ApplianceDataError,
    LabAppliance,
    act,
    farm_from_data,
    run_operator,
)
from ocsscale_lab.state import LabState
from ocsscale_lab.topology import build

MEMBERS = [
    {"name": "ocsfe01", "address": "198.18.0.41", "weight": 2},
    {"name": "ocsfe02", "address": "198.18.0.42", "weight": 1},
    {"name": "ocsfe03", "address": "198.18.0.43", "weight": 1},
]
FARM = {
    "kind": "farm",
    "vendor": "webmux",
    "vip": "198.18.0.40",
    "vip_prefix": 24,
    "ports": [443, 444, 5061],
    "check_ports": [5061, 444],
    "idle_timeout": 1800,
    "scheduling": "weighted-least-connections",
    "snat": True,
    "snat_addresses": ["198.18.0.40"],
    "members": MEMBERS,
}
UP = dict.fromkeys(("ocsfe01", "ocsfe02", "ocsfe03"), True)


def config(**changes: Any) -> dict[str, Any]:
    base = appliance.initial_config(build("tlab", "one-armed", 3))
    return {**base, **changes}


def test_ruleset_splits_by_weight_with_snat_and_routing_off() -> None:
    text = appliance.render_ruleset(config(farm=farm_from_data(FARM, config())), UP)
    # a rotation of its own per port (a load cycling through the ports reaches every member)
    for port in (443, 444, 5061):
        assert (
            f"ip daddr 198.18.0.40 tcp dport {port} dnat to numgen inc mod 4 map "
            "{ 0-1 : 198.18.0.41, 2 : 198.18.0.42, 3 : 198.18.0.43 }"
        ) in text
    assert "ct status dnat snat to 198.18.0.40" in text
    assert "policy drop;" in text and "ct status dnat accept" in text
    # one transaction replaces the whole table
    assert text.startswith(f"table ip {appliance.TABLE}\ndelete table ip {appliance.TABLE}\n")


def test_members_out_of_rotation_get_no_new_connections() -> None:
    farm = farm_from_data(FARM, config())
    admin = {"ocsfe01": "drain", "ocsfe02": "ready", "ocsfe03": "ready"}
    text = appliance.render_ruleset(config(farm=farm, admin=admin), {**UP, "ocsfe03": False})
    assert "dnat to 198.18.0.42\n" in text and "198.18.0.41" not in text
    nobody = appliance.render_ruleset(config(farm=farm), dict.fromkeys(UP, False))
    assert "dnat to" not in nobody


def test_routing_on_accepts_forwarding_and_no_farm_has_no_nat() -> None:
    text = appliance.render_ruleset(config(routing=True), {})
    assert "policy accept;" in text and "nat" not in text


def test_several_snat_addresses_rotate_and_snat_off_has_none() -> None:
    two_armed = config() | {"hardware": appliance.hardware(build("tlab", "two-armed-routed", 3))}
    farm = farm_from_data(dict(FARM, snat_addresses=["198.18.0.39", "198.19.0.40"]), two_armed)
    text = appliance.render_ruleset(config(farm=farm), UP)
    assert "snat to numgen inc mod 2 map { 0 : 198.18.0.39, 1 : 198.19.0.40 }" in text
    off = farm_from_data(dict(FARM, snat=False), config())
    assert "snat to" not in appliance.render_ruleset(config(farm=off), UP)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"idle_timeout": None}, "lacks 'idle_timeout'"),
        ({"members": [{"name": "ocsfe01", "address": "198.18.0.41"}]}, "lacks 'weight'"),
        ({"snat_addresses": ["198.18.0.7"]}, "not the appliance's"),
        ({"vip": "198.20.0.40"}, "none of the appliance's networks"),
        ({"check_ports": [5062]}, "check_ports must be ports of the farm"),
        ({"scheduling": "round-robin"}, "weighted method"),
        ({"ports": "443"}, "list of 1 to"),
        ({"members": [MEMBERS[0], dict(MEMBERS[1], name="ocsfe01")]}, "name twice"),
        ({"members": [dict(MEMBERS[0], weight=0)]}, "weight must be"),
    ],
)
def test_farm_data_the_appliance_cannot_take_is_refused(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApplianceDataError, match=message):
        farm_from_data({**FARM, **change}, config())


def test_pool_file_names_the_manual_driver_and_no_lb_host(tmp_path: Path) -> None:
    state = LabState("tlab", "two-armed-routed", 3, True, tmp_path, lb="appliance")
    path = tmp_path / "pool.yaml"
    path.write_text(poolfile.render(state, state.topo()))
    pool = load_pool(path).pool
    lb = pool.load_balancer
    assert (lb.driver.kind, lb.driver.vendor) == ("manual", "webmux")
    assert lb.host is None
    assert pool.run.lease.host == "admin"
    assert [str(a) for a in lb.snat_addresses] == ["198.19.0.40"]


class OneQuestion:
    def __init__(self, question: dict[str, Any]) -> None:
        self.question: dict[str, Any] | None = question
        self.answers: list[tuple[str, str]] = []

    def waiting(self) -> dict[str, Any] | None:
        return self.question

    def answer(self, value: str, by: str) -> None:
        self.answers.append((value, by))
        self.question = None


def _box(tmp_path: Path) -> LabAppliance:
    cfg = tmp_path / "config.json"
    appliance.write_json(cfg, config())
    return LabAppliance(cfg, tmp_path / "view.json", tmp_path / "lock", build("tlab"))


def test_operator_answers_abort_when_farm_data_lacks_a_field(tmp_path: Path) -> None:
    box = _box(tmp_path)
    asked = {
        "id": "a1",
        "choices": ["done", "abort"],
        "checklist": {"title": "Enter these settings", "lines": ["..."], "data": {"kind": "farm"}},
    }
    channel = OneQuestion(asked)
    with pytest.raises(ApplianceDataError, match="'vip'"):
        run_operator(channel, threading.Event(), appliance=box, max_seconds=5)
    assert channel.answers == [("abort", "lab-operator")]
    assert box.read_config()["generation"] == 0  # nothing entered


def test_questions_that_are_not_the_appliances_are_left_alone(tmp_path: Path) -> None:
    box = _box(tmp_path)
    assert act(box, {"id": "x", "choices": ["passed", "failed"], "checklist": None}) is None
    dns = {"kind": "dns-change", "zone": "lab.test", "name": "ocspool"}
    assert act(box, {"id": "y", "choices": ["done"], "checklist": {"data": dns}}) is None
    person = {"title": "Client tests", "lines": ["sign in"], "data": None}
    assert act(box, {"id": "z", "choices": ["passed", "failed"], "checklist": person}) is None
    tests = {"kind": "client-tests", "target": "the VIP"}
    assert act(box, {"id": "w", "choices": ["passed"], "checklist": {"data": tests}}) is None
    stop = threading.Event()
    stop.set()
    assert run_operator(OneQuestion({"id": "z"}), stop, appliance=box) == []
