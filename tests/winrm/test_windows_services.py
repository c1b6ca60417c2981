"""Services by display name on a Windows front end: found, restarted in dependency order,
proven Running, journaled, named by `plan` after preflight, and read by the gate. The front
ends are WinRM stand-ins with the OCS front-end services (`--ocs-front-end`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from windows_pool import WindowsPool, windows_pool

from ocsscale.actions.fe_gate_windows import service_findings
from ocsscale.actions.host import HostReachable, RestartServices
from ocsscale.errors import CommandFailed
from ocsscale.runner.journal import Journal
from ocsscale.runner.session import prepare, state_dir_for
from ocsscale.transports.windows_facts import ServiceInfo, stop_order

pytestmark = pytest.mark.timeout(120)


def test_stop_order_puts_dependants_first() -> None:
    services = [
        ServiceInfo("A", "a", "Running", "Auto"),
        ServiceInfo("B", "b", "Running", "Auto", ("A",)),
        ServiceInfo("C", "c", "Running", "Auto", ("B", "X")),  # X is not in the set
        ServiceInfo("D", "d", "Running", "Auto"),
    ]
    order = stop_order(services)
    assert order.index("C") < order.index("B") < order.index("A")
    assert sorted(order) == ["A", "B", "C", "D"]
    cycle = [ServiceInfo("P", "", "", "", ("Q",)), ServiceInfo("Q", "", "", "", ("P",))]
    assert sorted(stop_order(cycle)) == ["P", "Q"]  # no hang on a cycle


@pytest.fixture()
def pool(tmp_path: Path) -> Iterator[WindowsPool]:
    with windows_pool(tmp_path) as made:
        yield made


def _states(pool: WindowsPool, fe: str) -> dict[str, dict[str, object]]:
    return json.loads((pool.standins[fe].sandbox / "services.json").read_text())


def _set_state(pool: WindowsPool, fe: str, name: str, **values: object) -> None:
    path = pool.standins[fe].sandbox / "services.json"
    states = json.loads(path.read_text())
    states[name].update(values)
    path.write_text(json.dumps(states))


def _log(pool: WindowsPool, fe: str) -> list[str]:
    path = pool.standins[fe].sandbox / "services.log"
    return [line.split(" ", 1)[1] for line in path.read_text().splitlines()]


def test_restart_finds_by_display_name_and_keeps_dependency_order(pool: WindowsPool) -> None:
    ctx, hosts = pool.context()
    with hosts:
        action = RestartServices(ctx, {"host": "fe01"})
        assert "like 'Office Communications Server*', and W3SVC" in action.describe()[0].summary
        current = action.read()
        found = {s["name"] for s in current["services"]}
        # every OCS service, the running agent that depends on RTCSRV, and W3SVC by name
        assert {"RTCSRV", "RTCHOST", "RTCRGS", "RTCOVC", "RTCMONAGENT", "W3SVC"} <= found
        assert "CONTOSOAGENT" in found and "WAS" not in found
        undo = action.undo_record(current)
        assert "RTCMONAGENT" not in undo["restarted"]  # Manual and stopped: left alone
        evidence = action.apply(current)

    log = _log(pool, "fe01")
    stops = [e.split()[1] for e in log if e.startswith("stop ")]
    starts = [e.split()[1] for e in log if e.startswith("start ")]
    assert sorted(stops) == sorted(starts) == sorted(evidence["restarted"])
    for dependant, dependency in [
        ("RTCRGS", "RTCHOST"),
        ("RTCOVC", "RTCHOST"),
        ("RTCHOST", "RTCSRV"),
        ("RTCIMMCU", "RTCSRV"),
        ("CONTOSOAGENT", "RTCSRV"),
    ]:
        assert stops.index(dependant) < stops.index(dependency)
        assert starts.index(dependency) < starts.index(dependant)
    assert all(log.index(f"stop {n}") < log.index(f"start {m}") for n in stops for m in starts)
    states = _states(pool, "fe01")
    assert all(states[n]["status"] == "Running" for n in evidence["restarted"])
    assert states["RTCMONAGENT"]["status"] == "Stopped"
    assert [s["status"] for s in evidence["order"]] == ["Running"] * len(evidence["order"])
    assert {s["name"] for s in evidence["found"]} == found  # journaled with the step


def test_a_service_that_does_not_start_fails_the_step_and_the_others_still_run(
    pool: WindowsPool,
) -> None:
    _set_state(pool, "fe01", "RTCOVC", start_mode="Disabled")  # running, but cannot start
    ctx, hosts = pool.context()
    with hosts, pytest.raises(CommandFailed, match="not started: RTCOVC: Cannot start service"):
        action = RestartServices(ctx, {"host": "fe01"})
        action.apply(action.read())
    states = _states(pool, "fe01")
    assert states["RTCOVC"]["status"] == "Stopped"
    running = [n for n, s in states.items() if n not in ("RTCOVC", "RTCMONAGENT")]
    assert all(states[n]["status"] == "Running" for n in running)


def test_preflight_journals_the_services_and_plan_names_them(pool: WindowsPool) -> None:
    before = prepare(pool.path).plan
    step = _restart_step(before, "fe01")
    assert "named here once preflight has read them" in step.summary

    ctx, hosts = pool.context()
    with hosts:
        evidence = HostReachable(ctx, {"host": "fe01", "name": "localhost"}).apply(None)
    names = [s["name"] for s in evidence["services"]]
    assert "RTCSRV" in names and "W3SVC" in names
    # journaled as the runner journals a done step
    journal = Journal.open(state_dir_for(pool.path))
    try:
        cycle = journal.open_cycle("preflight", 0, "run-1")
        seq = journal.begin_step(
            cycle, "run-1", "preflight/reachable[fe01]", "host.reachable", {"host": "fe01"}, False
        )
        journal.finish_step(seq, evidence, [])
    finally:
        journal.close()

    after = _restart_step(prepare(pool.path).plan, "fe01")
    assert "(as preflight found them)" in after.summary
    assert "RTCSRV" in after.summary and "W3SVC" in after.summary
    assert "RTCMONAGENT" not in after.summary  # not started with Windows: not restarted
    # fe02 has no preflight evidence yet: still described by pattern
    assert "named here once preflight" in _restart_step(prepare(pool.path).plan, "fe02").summary


def _restart_step(plan: object, fe: str) -> object:
    for phase in plan.phases:  # type: ignore[attr-defined]
        for step in phase.all_steps:
            if step.id == f"validate-fe/restart[{fe}]":
                return step
    raise AssertionError(f"no restart step for {fe}")


def test_the_gate_reads_service_states(pool: WindowsPool) -> None:
    ctx, hosts = pool.context()
    with hosts:
        fe = ctx.pool.front_ends[0]
        findings = {f["check"]: f for f in service_findings(ctx, fe)}
        assert all(f["ok"] and f["proven"] for f in findings.values())
        assert "is Running" in findings["service.RTCSRV"]["message"]
        assert "does not start with Windows" in findings["service.RTCMONAGENT"]["message"]

        _set_state(pool, "fe01", "RTCSRV", status="Stopped")
        stopped = {f["check"]: f for f in service_findings(ctx, fe)}
        assert not stopped["service.RTCSRV"]["ok"]
        assert "is Stopped, but starts with Windows (Auto)" in stopped["service.RTCSRV"]["message"]


def test_the_gate_says_when_ocs_is_not_installed(tmp_path: Path) -> None:
    with windows_pool(tmp_path) as made:
        for fe in ("fe01",):
            (made.standins[fe].sandbox / "services.json").write_text(
                json.dumps({"Dnscache": "Running", "WinRM": "Running"})
            )
        ctx, hosts = made.context()
        with hosts:
            findings = service_findings(ctx, ctx.pool.front_ends[0])
    failed = {f["check"]: f["message"] for f in findings if not f["ok"]}
    assert failed["service.W3SVC"] == "W3SVC is not installed"
    assert "no service whose display name is like" in failed["service.display"]
