"""The typed evidence records (ocsscale/evidence.py): a record of the wrong shape
is refused with a message naming the field and what it found (never its value),
the report leaves it out and says so in its notes, and what an action writes
reads back unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocsscale import report
from ocsscale.evidence import (
    Distribution,
    DnsChange,
    DrillResult,
    EvidenceError,
    LoadReport,
    NatProof,
    SignOff,
)
from ocsscale.report import findings
from ocsscale.runner.journal import Journal

from .conftest import _step, cli
from .test_findings import _entry

HOSTILE = "<script>s3cret-value</script>"

#: lb.distribution's evidence as the action writes it (ints stay ints)
DISTRIBUTION: dict[str, Any] = {
    "vip": "198.18.0.40",
    "port": 5061,
    "connections": 8,
    "counts": {"fe01": 4, "fe02": 4},
    "ideal": {"fe01": 4.0, "fe02": 4.0},
    "weights": {"fe01": 1, "fe02": 1},
    "landed": [{"from": "client01", "fe": "fe01"}, {"from": "client02", "fe": None}],
    "nat": {
        "fe01": {
            "proven": True,
            "peers": ["198.18.0.45"],
            "from_snat": 4,
            "from_clients": [],
            "local_not_own": [],
        },
        "fe02": {"proven": False, "why": "fe02: ss failed"},
    },
}


def test_what_an_action_writes_reads_back_unchanged() -> None:
    record = Distribution.from_json(DISTRIBUTION)
    assert record.to_json() == DISTRIBUTION
    assert json.dumps(record.to_json()) == json.dumps(DISTRIBUTION)  # 1 stays 1, not 1.0
    assert record.nat["fe02"] == NatProof(proven=False, why="fe02: ss failed")


@pytest.mark.parametrize(
    ("read", "data", "message"),
    [
        (Distribution.from_json, [HOSTILE], "lb.distribution evidence: not a mapping but a list"),
        (
            Distribution.from_json,
            {"counts": [HOSTILE]},
            "lb.distribution evidence: `counts` is not a mapping but a list",
        ),
        (
            Distribution.from_json,
            {"counts": {"fe01": 1}, "nat": {"fe01": HOSTILE}},
            "lb.distribution evidence: `nat` entry 1: not a mapping but a text",
        ),
        (
            DrillResult.from_json,
            {"fe": {"name": HOSTILE}},
            "lb.failover_drill evidence: `fe` is not a text but a mapping",
        ),
        (
            DrillResult.from_json,
            {"fe": "fe01", "detected_by": HOSTILE},
            "lb.failover_drill evidence: `detected_by`: not a mapping but a text",
        ),
        (
            lambda d: DnsChange.from_json(d, None),
            {"servers": [HOSTILE]},
            "DNS evidence: `servers` item 1: not a mapping but a text",
        ),
        (
            lambda d: DnsChange.from_json({}, d),
            {"old": {"values": [{"x": HOSTILE}]}},
            "DNS undo record: `old`: `values` holds something that is not a value",
        ),
        (
            LoadReport.from_json,
            {"buckets": [{"t": 1, "failed": 0, "ok": 1}], "labels": [HOSTILE]},
            "a load report: `labels` is not a mapping but a list",
        ),
        (
            SignOff.from_json,
            {"run_id": "r", "question": "q", "answer": "passed", "by": 7, "via": "x", "at": "t"},
            "an answer: `by` is not a text but a number",
        ),
        (
            SignOff.from_json,
            {"run_id": "r", "question": "q", "by": "Alice", "via": "x", "at": "t"},
            "an answer: `answer` is missing",
        ),
    ],
)
def test_a_record_of_the_wrong_shape_is_refused_clearly(read: Any, data: Any, message: str) -> None:
    with pytest.raises(EvidenceError) as refused:
        read(data)
    assert refused.value.message == message
    assert "s3cret" not in refused.value.message and refused.value.__cause__ is None


def test_numbers_stay_lenient_shapes_do_not() -> None:
    # numbers written as text, unreadable ones: read or None, as the report always did
    drill = DrillResult.from_json({"fe": "fe01", "detect_s": "1.5", "requests": "many"})
    assert drill.detect_s == 1.5 and drill.requests is None
    assert drill.detected_by is None
    record = DnsChange.from_json({"ttl": "60", "address": "198.18.0.40"}, None)
    assert record.ttl == 60 and record.ttl_changed and record.address == "198.18.0.40"


def test_the_report_leaves_a_malformed_record_out_and_says_so() -> None:
    problems: list[str] = []
    good = _entry(1, "lb.distribution", DISTRIBUTION)
    bad = _entry(2, "lb.distribution", {"counts": {"fe01": 1}, "ideal": [HOSTILE]})
    rows = findings.distributions([good, bad], problems)
    assert [r["seq"] for r in rows] == [1]
    assert problems == [
        "step cutover/s2 (#2): lb.distribution evidence: `ideal` is not a mapping but a list; "
        "not shown"
    ]
    # the DNS rows, the drill rows and the load: the same
    problems.clear()
    dns = _entry(3, "dns.replace", {"read_back": [HOSTILE]})
    drill = _entry(4, "lb.failover_drill", {"fe": "fe01", "held_survived": [HOSTILE]})
    load = _entry(5, "x", {"load": {"buckets": [{"t": 1, "ok": 1, "failed": 0}], "labels": 3}})
    assert findings.dns_changes([dns], problems) == []
    assert findings.drills([drill], problems) == []
    assert findings.load_timeline([load], [], problems)["series"] == []
    assert [p.split(":")[0] for p in problems] == [
        "step cutover/s3 (#3)",
        "step cutover/s4 (#4)",
        "step cutover/s5 (#5)",
    ]
    assert not any("s3cret" in p for p in problems)


def test_the_cli_reports_a_journal_with_malformed_evidence(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / ".ocsscale")
    try:
        journal.start_run("r", "run", "ops", "admin", 1, {"pool": "p.test", "phases": []})
        cycle = journal.open_cycle("validate-lb", 5, "r")
        _step(journal, cycle, "r", "validate-lb/dist", "lb.distribution", {}, evidence=DISTRIBUTION)
        bad = {"counts": HOSTILE, "vip": HOSTILE}
        _step(journal, cycle, "r", "validate-lb/odd", "lb.distribution", {}, evidence=bad)
        journal.close_cycle(cycle.cycle_id, "done")
        journal.finish_run("r", "done")
    finally:
        journal.close()
    result = cli(tmp_path / "pool.yaml", "report", "-f", "json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    data = json.loads((tmp_path / ".ocsscale" / "report.json").read_text())
    assert [d["step"] for d in data["distribution"]] == ["validate-lb/dist"]
    assert (
        "Evidence not read: step validate-lb/odd (#2): lb.distribution evidence: `counts` is "
        "not a mapping but a text; not shown." in data["notes"]
    )
    model = report.build(report.read_sources(tmp_path / "pool.yaml"))
    assert model["distribution"] == data["distribution"]
