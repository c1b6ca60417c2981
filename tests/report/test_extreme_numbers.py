"""`ocsscale report` on evidence with numbers no run produces (1e308, -1e308, ints
past any float, NaN and infinities a hand-edited journal may hold): every format is
written (exit 0), the JSON stays strict JSON, and failures are not hidden by them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ocsscale import report
from ocsscale.report import findings
from ocsscale.runner.journal import Journal

from .conftest import _step, cli
from .test_findings import _entry

NOW = 1_700_000_000


def _evidence(v: Any) -> dict[str, dict[str, Any]]:
    """The evidence shapes the report draws, with `v` in every number it reads."""
    return {
        "lb.distribution": {
            "vip": "198.18.0.40",
            "port": v,
            "connections": v,
            "counts": {"fe01": v, "fe02": 3},
            "ideal": {"fe01": v, "fe02": v},
            "weights": {"fe01": v, "fe02": 1},
        },
        "lb.failover_drill": {
            "fe": "fe01",
            "mode": "link",
            "detect_s": v,
            "back_s": v,
            "requests": v,
            "failed_until_detection": v,
            "failed_after_detection": v,
            "held_survived": {"fe02": v},
            "load": {
                "labels": {"fault": {"requests": v, "ok": v, "failed": v}},
                "failed_seconds": [
                    {"t": v, "label": "fault", "ok": v, "failed": 2},
                    {"t": NOW, "label": "fault", "ok": 1, "failed": v},
                ],
            },
        },
        "dns.replace": {
            "old": {"values": ["198.18.0.30"], "ttl": v},
            "new": {"values": ["198.18.0.40"], "ttl": v},
        },
        "lab.load_report": {
            "load": {
                "buckets": [
                    {"t": NOW, "label": "cutover", "ok": v, "failed": 1},
                    {"t": v, "label": "cutover", "ok": 1, "failed": v},
                ]
            }
        },
    }


def _journal(state_dir: Path, v: Any) -> None:
    journal = Journal.open(state_dir)
    try:
        journal.start_run("r", "run", "ops", "admin", 1, {"pool": "p.test", "phases": []})
        cycle = journal.open_cycle("validate-lb", 5, "r")
        for i, (action, evidence) in enumerate(_evidence(v).items()):
            _step(journal, cycle, "r", f"validate-lb/s{i}", action, {}, evidence=evidence)
        journal.close_cycle(cycle.cycle_id, "done")
        journal.finish_run("r", "done")
    finally:
        journal.close()


def _strict(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} in the JSON report")

    return json.loads(text, parse_constant=refuse)


def _reports(tmp_path: Path) -> dict[str, str]:
    """Every format, as `ocsscale report` builds and renders it (in this process)."""
    model = report.build(report.read_sources(tmp_path / "pool.yaml"))
    return {fmt: report.render(model, fmt) for fmt in ("html", "md", "json")}


def test_the_cli_writes_every_format_with_minus_1e308(tmp_path: Path) -> None:
    _journal(tmp_path / ".ocsscale", -1e308)  # exit 70 (OverflowError) before
    for fmt in ("html", "md", "json"):
        result = cli(tmp_path / "pool.yaml", "report", "-f", fmt)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / ".ocsscale" / f"report.{fmt}").stat().st_size > 0


EXTREMES = [-1e308, 1e308, 10**400, -(10**400), 10**30, "1e400", "-inf"]


@pytest.mark.parametrize(
    "v", EXTREMES, ids=["-1e308", "1e308", "10**400", "-10**400", "10**30", "text-1e400", "-inf"]
)
def test_extreme_numbers_give_a_report(tmp_path: Path, v: Any) -> None:
    _journal(tmp_path / ".ocsscale", v)
    reports = _reports(tmp_path)
    data = _strict(reports["json"])
    assert "<svg" in reports["html"]
    for number in _numbers(data):
        assert abs(number) < 1e16  # clamped (sums of a few): nothing sees 1e308
    # every bucket is still counted, those whose second cannot be placed too
    assert sum(r["failed"] for r in data["load"]["per_phase"]) >= 3


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    return []


def test_nan_and_infinity_in_a_hand_edited_journal(tmp_path: Path) -> None:
    """The journal never writes them, but reads them: the report leaves them out."""
    _journal(tmp_path / ".ocsscale", 7)
    db = sqlite3.connect(tmp_path / ".ocsscale" / "journal.sqlite")
    try:
        rows = db.execute("SELECT seq, evidence FROM entries").fetchall()
        for seq, evidence in rows:
            edited = evidence.replace(": 7", ": NaN", 2).replace(": 7", ": -Infinity")
            db.execute("UPDATE entries SET evidence = ? WHERE seq = ?", (edited, seq))
        db.commit()
    finally:
        db.close()
    data = _strict(_reports(tmp_path)["json"])  # strict JSON: no NaN, no Infinity
    assert data["failover"][0]["fe"] == "fe01"
    assert data["failover"][0]["detect_s"] is None  # NaN: unreadable, not a number


def test_a_count_that_cannot_be_read_is_not_within_one() -> None:
    evidence = {
        "counts": {"fe01": "NaN", "fe02": -4, "fe03": 3, "fe04": 1e308},
        "ideal": {"fe01": 3.0, "fe02": 3.0, "fe03": 3.0, "fe04": 3.0},
    }
    (dist,) = findings.distributions([_entry(1, "lb.distribution", evidence)])
    within = {r["fe"]: r["within_one"] for r in dist["rows"]}
    assert within == {"fe01": False, "fe02": False, "fe03": True, "fe04": False}
