"""The report's reading of evidence, in-process: load records found wherever
they are and counted once, DNS records old and new, and SVG text escaped."""

from __future__ import annotations

from typing import Any

from ocsscale.report import charts, findings, topology
from ocsscale.runner.journal import Cycle, Entry


def _entry(seq: int, action: str, evidence: Any, **kw: Any) -> Entry:
    fields: dict[str, Any] = {
        "seq": seq,
        "cycle_id": 1,
        "run_id": "r",
        "phase": "cutover",
        "phase_index": 8,
        "step_id": f"cutover/s{seq}",
        "action": action,
        "args": {},
        "cleanup": False,
        "status": "done",
        "started": 1000.0,
        "finished": 1100.0,
        "attempts": 1,
        "changes": [],
        "undo": None,
        "evidence": evidence,
        "error": None,
        "rollback_id": None,
    }
    fields.update(kw)
    return Entry(**fields)


CYCLE = Cycle(1, "cutover", 8, "r", "done", 1000.0, 1100.0, None)


def _bucket(t: int, ok: int, failed: int, label: str = "x") -> dict[str, Any]:
    return {"t": t, "label": label, "ok": ok, "failed": failed}


def test_load_records_are_found_anywhere_and_counted_once() -> None:
    merged = [_bucket(1010, 10, 1), _bucket(1011, 9, 2)]
    entries = [
        # a merged report: its own buckets, not its clients' copies again
        _entry(
            1, "x.load", {"report": {"buckets": merged, "clients": {"c1": {"buckets": merged}}}}
        ),
        # buckets and failed_seconds side by side: the full buckets only
        _entry(
            2,
            "y.load",
            {"load": {"buckets": [_bucket(1020, 5, 0)], "failed_seconds": [_bucket(1020, 5, 0)]}},
        ),
        # numbers written as text still count; a list of other things is not a load
        _entry(3, "z.load", {"deep": [{"per_second": [_bucket(1030, "4", "1")]}], "x": [1, 2]}),
        _entry(4, "w.other", {"list": [{"t": 1, "label": "no ok or failed"}]}),
    ]
    load = findings.load_timeline(entries, [CYCLE])
    assert [s["path"] for s in load["series"]] == [
        "report.buckets",
        "load.buckets",
        "deep.0.per_second",
    ]
    assert [(r["step"], r["ok"], r["failed"], r["seconds_failing"]) for r in load["per_phase"]] == [
        ("cutover/s1", 19, 3, 2),
        ("cutover/s2", 5, 0, 0),
        ("cutover/s3", 4, 1, 1),
    ]
    assert {r["phase"] for r in load["per_phase"]} == {"cutover"}
    svg = charts.timeline(load)
    assert svg is not None and "4 failed request(s) in 3 second(s)" in svg


def test_a_bucket_outside_every_phase_is_counted_between_phases() -> None:
    load = findings.load_timeline([_entry(1, "x", {"buckets": [_bucket(5000, 1, 1)]})], [CYCLE])
    assert load["per_phase"][0]["phase"] == "between phases"


def test_no_load_record_draws_no_timeline() -> None:
    assert charts.timeline(findings.load_timeline([_entry(1, "x", {"a": 1})], [CYCLE])) is None


def test_dns_steps_old_and_new_from_undo_or_evidence() -> None:
    old = {"values": ["198.18.0.30"], "ttl": 30}
    lowered = _entry(1, "dns.lower_ttl", {"name": "pool.t", "old": old, "ttl": 5})
    replaced = _entry(
        2,
        "dns.replace",
        {"changed_at": 1.0},
        undo={"name": "pool.t", "type": "A", "old": old, "new": {"values": "198.18.0.40"}},
    )
    failed = _entry(3, "dns.replace", None, status="failed", error="refused: changed since")
    rows = findings.dns_changes([lowered, replaced, failed, _entry(4, "hosts.pin", {})])
    assert [r["action"] for r in rows] == ["dns.lower_ttl", "dns.replace", "dns.replace"]
    assert rows[0]["new"] == {"values": ["198.18.0.30"], "ttl": 5}
    assert rows[1]["old"] == old and rows[1]["new"] == {"values": ["198.18.0.40"], "ttl": None}
    assert rows[2]["old"] is None and rows[2]["error"] == "refused: changed since"


def test_svg_text_from_evidence_is_escaped() -> None:
    hostile = '<script>alert(1)</script>"'
    dist = findings.distributions(
        [
            _entry(
                1,
                "lb.distribution",
                {"vip": hostile, "port": 5061, "counts": {hostile: 3}, "ideal": {hostile: 3}},
            )
        ]
    )
    drawn = charts.distribution(dist[0])
    assert "<script" not in drawn and "&lt;script&gt;" in drawn


def test_topology_places_hosts_by_their_network() -> None:
    host = {"fqdn": "h.t", "os": "linux", "transport": "ssh"}
    pool = {
        "fqdn": "pool.t",
        "load_balancer": {
            "driver": "engine",
            "topology": "two-armed-routed",
            "mode": "full-proxy",
            "vip": "198.18.0.40/24",
            "backend_address": "198.19.0.40/24",
            "snat_addresses": [],
            "host": None,
        },
        "front_ends": [
            {**host, "name": "fe01", "address": "198.19.0.41", "weight": 1},
            {**host, "name": "odd01", "address": "198.18.0.77", "weight": 1},
        ],
        "legacy_fe": {**host, "name": "fe00", "address": "198.18.0.30"},
        "test_clients": [{**host, "name": "c1", "address": "198.18.0.101"}],
        "directory": {"name": "dc01", "address": "198.18.0.10", "port": 135},
        "dns": {"zone": "t", "servers": ["198.18.0.53"], "host": None},
    }
    drawn = topology.draw(pool)
    assert "198.19.0.0/24" in drawn and "back-end arm 198.19.0.40/24" in drawn
    # the FE on the client network is drawn beside the LB, above the second network
    assert drawn.index("odd01") < drawn.index("front-end net") < drawn.index("fe01")


def test_two_armed_transparent_puts_every_fe_behind_the_lb() -> None:
    host = {"fqdn": "h.t", "os": "linux", "transport": "ssh"}
    pool = {
        "fqdn": "pool.t",
        "load_balancer": {
            "driver": "haproxy",
            "topology": "two-armed-transparent",
            "mode": "full-proxy",
            "vip": "198.18.0.40/24",
            "backend_address": None,
            "snat_addresses": ["198.18.0.45"],
            "host": None,
        },
        "front_ends": [{**host, "name": "fe01", "address": "198.18.0.41", "weight": 1}],
        "legacy_fe": {**host, "name": "fe00", "address": "198.18.0.30"},
        "test_clients": [],
        "directory": {"name": "dc01", "address": "198.18.0.10", "port": 135},
        "dns": {"zone": "t", "servers": [], "host": None},
    }
    drawn = topology.draw(pool)
    assert drawn.index("front-end net") < drawn.index(">fe01<")
    assert "SNAT 198.18.0.45" in drawn
