"""The client load's failures outside the failover drill, per source (what the demo
and the lab tests hold to zero)."""

from __future__ import annotations

from ocsscale.runner.client_load import by_phase, outside_drill


def test_failures_outside_the_drill_are_summed_per_source() -> None:
    clients = {
        "admin": {
            "labels": {
                "validate-fe/restart[ocsfe01]": {"requests": 10, "failed": 0},
                "failover-test/drill[ocsfe01@link]": {"requests": 8, "failed": 3},
                "cutover/restart[ocsfe02]": {"requests": 5, "failed": 1},
            }
        },
        "client01": {
            "labels": {
                "validate-fe": {"requests": 4, "failed": 0},
                "failover-test": {"requests": 2, "failed": 2},
            }
        },
    }
    table = by_phase(clients)
    assert table["failover-test"]["admin"] == {"requests": 8, "failed": 3}
    assert outside_drill(table) == {
        "admin": {"requests": 15, "failed": 1},
        "client01": {"requests": 4, "failed": 0},
    }
    assert outside_drill({}) == {}


def test_phases_are_listed_in_the_order_the_run_went_through_them() -> None:
    """A source that first saw a phase late (a Windows burst) does not reorder the table."""
    clients = {
        "admin": {
            "labels": {"": {"requests": 1}, "validate-fe/pin": {"requests": 3}},
            "marks": [{"t": 2.0, "label": "validate-fe"}, {"t": 2.5, "label": "validate-fe/pin"}],
        },
        "client02": {
            "labels": {"validate-fe/pin": {"requests": 2}, "configure-fe/gate": {"requests": 1}},
            "marks": [{"t": 1.0, "label": "configure-fe"}, {"t": 2.0, "label": "validate-fe"}],
        },
    }
    assert list(by_phase(clients)) == ["(before the first step)", "configure-fe", "validate-fe"]


def test_the_demo_fails_a_source_with_a_failure_outside_the_drill_or_no_load() -> None:
    from ocsscale_lab import demo

    by_phase_table = {
        "validate-fe": {"admin": {"requests": 40, "failed": 0}},
        "failover-test": {"admin": {"requests": 9, "failed": 4}},
        "cutover": {
            "admin": {"requests": 30, "failed": 0},
            "client01": {"requests": 30, "failed": 2},
            "client02": {"requests": 12, "failed": 1},
        },
    }
    loads = {
        "outside_drill": outside_drill(by_phase_table),
        "per_source": {"admin": "…", "client01": "cutover 2/30", "client02": "cutover 1/12"},
        "not_loaded": {},
    }
    checks = {
        what.rsplit("(", 1)[1].rstrip(")"): (ok, d) for what, ok, d in demo.load_checks(loads)
    }
    # every test client, the Windows one (client02) too
    assert set(checks) == set(demo.LOAD_SOURCES) == {"admin", "client01", "client02"}
    assert checks["admin"][0] is True  # the drill's own failures do not count
    assert checks["client01"] == (False, "2 of 30 failed outside the drill; cutover 2/30")
    assert checks["client02"] == (False, "1 of 12 failed outside the drill; cutover 1/12")

    by_phase_table["cutover"]["client02"]["failed"] = 0
    loads["outside_drill"] = outside_drill(by_phase_table)
    loads["per_source"]["client02"] = "cutover 0/12"
    assert dict((w, ok) for w, ok, _ in demo.load_checks(loads))[
        "client load: no failed request outside the failover drill (client02)"
    ]

    del by_phase_table["cutover"]["client02"]
    loads["outside_drill"] = outside_drill(by_phase_table)
    loads["not_loaded"] = {
        "client02": "client02: WinRM at 198.18.0.102:5986 refused the connection"
    }
    checks = {
        what.rsplit("(", 1)[1].rstrip(")"): (ok, d) for what, ok, d in demo.load_checks(loads)
    }
    assert checks["client02"] == (
        False,
        "no load from client02: client02: WinRM at 198.18.0.102:5986 refused the connection",
    )
    assert [ok for _, ok, _ in demo.load_checks({})] == [False, False, False]


def test_the_load_asks_what_the_profile_serves() -> None:
    from ocsscale.config.profiles import load_profile
    from ocsscale.probes.load import targets_for

    ocs = [(t.port, t.kind) for t in targets_for("pool.test", load_profile("ocs2007r2"))]
    assert ocs == [(5061, "sip-tls"), (444, "tls")]
    generic = [(t.port, t.kind) for t in targets_for("pool.test", load_profile("generic-tls"))]
    assert generic == [(443, "tls")]  # no SIP on a generic TLS service


def test_the_drill_load_goes_to_the_vip_presenting_the_pool_name() -> None:
    from ocsscale.config.profiles import load_profile
    from ocsscale.probes.load import targets_for

    found = targets_for("pool.test", load_profile("generic-tls"), address="198.18.0.40")
    assert [(t.port, t.kind) for t in found] == [(443, "tls")]
    assert all(t.address == "198.18.0.40" and t.name == "pool.test" for t in found)
