"""lb.pair_drill's decisions: when the VIP answered again, where it must be after the
failback, what fails the drill, a held connection's fate, its record and the report's
reading of it. The drill itself runs in the lab (tests/lab/test_lab_lb_pair.py)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from ocsscale.actions.base import Context, registry
from ocsscale.actions.lb_pair_drill import (
    AFTER_REQUESTS,
    failback_expected,
    judge,
    outage,
    poke_alive,
    takeover_start,
)
from ocsscale.errors import Declined, UndoRecordError, UsageError
from ocsscale.evidence import EvidenceError, LbDrillResult
from ocsscale.report import findings
from ocsscale.runner.plugins import load_actions
from ocsscale.runner.session import prepare
from tests.config.helpers import ONE_ARMED, load_text, variant, write

SINGLE = """  host:                              # where the LB is administered
    name: lb01
    address: 10.0.0.39
    transport: {kind: ssh, credentials: lb-admin}
"""

PAIR = """  pair:
    hosts:
      - name: lb01
        address: 10.0.0.37
        transport: {kind: ssh, credentials: lb-admin}
        addresses: [10.0.0.37/16]
      - name: lb02
        address: 10.0.0.38
        transport: {kind: ssh, credentials: lb-admin}
        addresses: [10.0.0.38/16]
    preferred: lb01
    preempt: true
    router_id: 51
    secret: {env: OCS_VRRP_SECRET}
"""


def _ctx(tmp_path: Path, text: str, operator: Any = None) -> Context:
    load_actions()
    loaded = load_text(tmp_path, text)
    extra = {"operator": operator} if operator is not None else {}
    return Context(
        pool=loaded.pool,
        profile=loaded.profile,
        host=lambda name: pytest.fail(f"no host is needed (asked for {name})"),
        **extra,
    )


def _pair_text(*edits: tuple[str, str]) -> str:
    return variant(variant(ONE_ARMED, (SINGLE, PAIR)), *edits)


def pair_ctx(tmp_path: Path) -> Context:
    """A context whose pool file has a pair of LBs (lb01, lb02); nothing is contacted."""
    return _ctx(tmp_path, _pair_text())


def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "mode": "service",
        "host": "lb01",
        "standby": "lb02",
        "failed_before_fault": 0,
        "takeover_s": 1.2,
        "failed_after_takeover": 0,
        "after_takeover_requests": AFTER_REQUESTS,
        "holders_before": {"lb01": True, "lb02": False},
        "holders_during": {"lb01": False, "lb02": True},
        "holders_after": {"lb01": True, "lb02": False},
        "failed_after_failback": 0,
    }
    return row | changes


def test_the_takeover_is_the_first_answer_started_after_the_fault() -> None:
    outcomes = [(9.0, True), (10.1, False), (10.2, False), (11.4, True), (11.3, True)]
    assert takeover_start(outcomes, 10.0) == 11.3
    # an answer started before the fault proves nothing about the standby
    assert takeover_start([(9.9, True), (10.5, False)], 10.0) is None


def test_the_outage_runs_from_the_first_failure_to_the_first_answer_after_it() -> None:
    # the stop was asked at 10.0; the process stopped listening at about 10.4
    outcomes = [(9.9, True), (10.1, True), (10.4, False), (10.9, False), (12.0, True)]
    assert outage(outcomes, 10.0) == (10.4, 12.0)
    assert outage(outcomes[:4], 10.0) == (10.4, None)  # not answering again yet
    assert outage(outcomes[:2], 10.0) == (None, None)  # nothing failed (yet)


def test_the_failback_goes_to_the_preferred_host_only_with_preempt() -> None:
    assert failback_expected(True, "lb01") == "lb01"
    assert failback_expected(False, "lb01") is None


def test_a_clean_drill_passes_and_each_fault_is_named() -> None:
    assert judge(_row(), True, "lb01") == []
    # without preempt the VIP may stay on the standby
    assert judge(_row(holders_after={"lb01": False, "lb02": True}), False, "lb01") == []
    cases = {
        "failed before the fault": _row(failed_before_fault=2),
        "did not answer again": _row(takeover_s=None),
        "started after the takeover failed": _row(failed_after_takeover=1),
        "too few to prove": _row(after_takeover_requests=3),
        "lb02 did not hold the VIP": _row(holders_during={"lb01": None, "lb02": False}),
        "lb01 and lb02 held the VIP": _row(holders_after={"lb01": True, "lb02": True}),
        "not the preferred lb01": _row(holders_after={"lb01": False, "lb02": True}),
        "after the failback settled": _row(failed_after_failback=4),
    }
    for said, row in cases.items():
        problems = judge(row, True, "lb01")
        assert len(problems) == 1 and said in problems[0], (said, problems)


def test_a_held_connection_is_lost_when_reset_and_alive_while_it_waits() -> None:
    alive, peer = socket.socketpair()
    try:
        assert poke_alive(alive)  # the peer holds it and says nothing
        assert peer.recv(4) == b"\r\n\r\n"
    finally:
        peer.close()
    assert not poke_alive(alive)  # closed by the other end
    alive.close()
    # what was sent before the close is read past: the close is what counts
    held, peer = socket.socketpair()
    peer.sendall(b"SIP/2.0 200 OK\r\n")
    peer.close()
    assert not poke_alive(held)
    held.close()


def test_the_action_needs_a_pair_and_a_known_mode(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a pair"):
        registry()["lb.pair_drill"](_ctx(tmp_path, ONE_ARMED), {"mode": "service"})
    ctx = _ctx(tmp_path, _pair_text())
    with pytest.raises(UsageError, match="mode must be"):
        registry()["lb.pair_drill"](ctx, {"mode": "power"})
    action = registry()["lb.pair_drill"](ctx, {"mode": "link"})
    assert action.targets() == ["lb01", "lb02"]
    # the drilled host is the one that holds the VIP
    record = action.undo_record({"holders": ["lb02"], "running": {}})
    assert record == {"host": "lb02", "mode": "link"}
    action.check_undo(record)
    with pytest.raises(UndoRecordError):
        action.check_undo({"host": "lb09", "mode": "link"})


class _Operator:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.told: list[str] = []

    def tell(self, title: str, lines: list[str]) -> None:
        self.told += lines

    def ask(self, question: str, choices: list[str]) -> str:
        return self.answer


def test_without_a_link_command_the_operator_pulls_the_cable(tmp_path: Path) -> None:
    declines = _Operator("abort")
    ctx = _ctx(tmp_path, _pair_text(), operator=declines)
    action = registry()["lb.pair_drill"](ctx, {"mode": "link"})
    with pytest.raises(Declined):
        action._fault("lb01", restore=False)
    assert declines.told == ["pull the network cable of lb01 (10.0.0.37), or its switch port."]


def test_with_a_link_command_it_runs_on_the_admin_machine(tmp_path: Path) -> None:
    out = tmp_path / "link.log"
    text = _pair_text(
        (
            "    preempt: true\n",
            "    preempt: true\n"
            f"    link_down_command: 'echo down {{name}} {{address}} >> {out}'\n"
            f"    link_up_command: 'echo up {{name}} >> {out}'\n",
        )
    )
    action = registry()["lb.pair_drill"](_ctx(tmp_path, text), {"mode": "link"})
    action._fault("lb02", restore=False)
    action._fault("lb02", restore=True)
    assert out.read_text() == "down lb02 10.0.0.38\nup lb02\n"


def test_the_playbook_drills_the_pair_only_when_there_is_one(tmp_path: Path) -> None:
    def drills(text: str) -> list[tuple[str, dict[str, Any]]]:
        plan = prepare(write(tmp_path, text)).plan
        return [
            (s.id, dict(s.args))
            for phase in plan.phases
            for s in phase.steps
            if s.action == "lb.pair_drill"
        ]

    assert drills(ONE_ARMED) == []
    found = drills(_pair_text())
    assert [args for _, args in found] == [{"mode": "service"}, {"mode": "link"}]
    assert all(step.startswith("failover-test/lb-drill") for step, _ in found)


def test_the_procedure_gains_the_failed_load_balancer(tmp_path: Path) -> None:
    for text, expected in ((ONE_ARMED, False), (_pair_text(), True)):
        ctx = _ctx(tmp_path, text)
        action = registry()["lb.failover_procedure"](ctx, {})
        lines = action.apply(action.read())["lb_procedure"]
        assert bool(lines) is expected
    assert any("lb01 takes the VIP back" in line for line in lines)


def _evidence() -> dict[str, Any]:
    return _row(
        failed_until_takeover=90,
        failed_around_failback=2,
        requests=600,
        held=4,
        held_lost=4,
        preempt=True,
        failback_s=2.5,
        failback="measured",
        takeover_target_s=3.0,
        takeover_target_met=True,
        fault_at=1000.0,
        takeover_at=1001.2,
        restored_at=1010.0,
        failback_at=1012.5,
        load={
            "failed_seconds": [
                {"t": 1000.0, "label": "lb-fault", "ok": 3, "failed": 80},
                {"t": 1001.0, "label": "lb-fault", "ok": 50, "failed": 10},
                {"t": 1010.0, "label": "failback", "ok": 70, "failed": 2},
            ]
        },
    )


def test_the_record_reads_back_and_refuses_a_holder_that_is_no_flag() -> None:
    read = LbDrillResult.from_json(_evidence())
    assert read.takeover_s == 1.2 and read.failback_s == 2.5 and read.held_lost == 4
    assert LbDrillResult.from_json(read.to_json()) == read
    with pytest.raises(EvidenceError, match="holders_after"):
        LbDrillResult.from_json(_row(holders_after={"lb01": "yes"}))


class _Entry:
    def __init__(self, seq: int, action: str, evidence: Any, step: str) -> None:
        self.seq, self.action, self.evidence, self.step_id = seq, action, evidence, step
        self.cycle_id, self.args, self.status = 1, {}, "done"
        self.started, self.finished, self.undo, self.error = 900.0, 990.0, None, None


def test_the_report_follows_the_vip_holder_and_the_failures_per_second() -> None:
    entries = [
        _Entry(1, "lb.pair_holder", {"active": "lb01"}, "validate-lb/pair[client01]"),
        _Entry(2, "lb.pair_drill", _evidence(), "failover-test/lb-drill[service]"),
    ]
    found = findings.lb_pair(entries, [])
    assert [(h["moment"], h["holder"]) for h in found["holders"]] == [
        ("validate-lb", "lb01"),
        ("before the fault", "lb01"),
        ("after the takeover", "lb02"),
        ("after the failback", "lb01"),
    ]
    (drill,) = found["drills"]
    assert drill["takeover_s"] == 1.2 and drill["failback_s"] == 2.5
    assert drill["takeover_failed_per_s"] == ["+0 s: 80 failed", "+1 s: 10 failed"]
    assert drill["failback_failed_per_s"] == ["+0 s: 2 failed"]
    assert drill["held_lost"] == "4/4"


def test_the_report_renders_the_pair_section(tmp_path: Path) -> None:
    """The report's Markdown and HTML show the VIP holder and the LB drill's row
    (a report of a pool file with no journal, the pair's findings put in)."""
    from ocsscale.report.model import build
    from ocsscale.report.render import render
    from ocsscale.report.source import read_sources

    model = build(read_sources(write(tmp_path, _pair_text())))
    assert model["lb_pair"] == {"holders": [], "drills": []}
    entries = [
        _Entry(1, "lb.pair_holder", {"active": "lb01"}, "validate-lb/pair[client01]"),
        _Entry(2, "lb.pair_drill", _evidence(), "failover-test/lb-drill[service]"),
    ]
    model["lb_pair"] = findings.lb_pair(entries, [])
    md = render(model, "md")
    assert "## Load-balancer pair: VIP holder and LB drill" in md
    assert "| lb01 | service | 1.20 s | at most 3 s: met | 2.50 s |" in md
    assert "+0 s: 80 failed, +1 s: 10 failed; +0 s: 2 failed" in md
    html = render(model, "html")
    assert "Load-balancer pair: VIP holder and LB drill" in html and "after the takeover" in html
