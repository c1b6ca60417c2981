"""`ocsscale plan` on the shipped examples: built from the pool file alone (the
walkthrough's 10.x addresses are never contacted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ocsscale.cli.main import app
from ocsscale.plan import PHASE_IDS

REPO = Path(__file__).resolve().parents[2]
ONE_ARMED = REPO / "examples" / "one-armed.yaml"
TWO_ARMED = REPO / "examples" / "two-armed-routed.yaml"


def _plan_json(pool: Path, *extra: str) -> dict:
    result = CliRunner().invoke(app, ["-c", str(pool), "plan", "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_plan_json_shape_on_the_one_armed_example() -> None:
    plan = _plan_json(ONE_ARMED)
    assert set(plan) == {"pool", "phases"}
    assert plan["pool"] == "ocspool.contoso.com"
    assert [p["id"] for p in plan["phases"]] == list(PHASE_IDS)
    for phase in plan["phases"]:
        assert set(phase) == {"id", "title", "skipped", "steps"}
        for step in phase["steps"]:
            assert set(step) == {"id", "action", "target", "change", "summary", "built"}
            assert step["change"] in {"add", "change", "remove", "check", "none"}
            assert step["id"].startswith(phase["id"] + "/")
    routing = plan["phases"][1]
    assert routing["skipped"] == "Enabling Load Balancer Routing is for two-armed routed only"
    assert routing["steps"] == []

    validate = {s["id"]: s for s in plan["phases"][3]["steps"]}
    pin = validate["validate-fe/pin[ocsfe01@client01]"]
    assert pin["action"] == "hosts.pin" and pin["built"] is True
    assert pin["target"] == "client01" and pin["change"] == "add"
    assert "10.0.1.41" in pin["summary"]
    assert validate["validate-fe/unpin[client01]"]["change"] == "remove"
    probe = validate["validate-fe/probe[ocsfe02@client02]"]
    assert probe["built"] is True and probe["target"] == "client02"
    assert "reaches ocsfe02" in probe["summary"]
    restart = validate["validate-fe/restart[ocsfe01]"]
    # the profile's Windows services: found by display name on the FE, named once preflight ran
    assert "'Office Communications Server*'" in restart["summary"] and "W3SVC" in restart["summary"]


def test_plan_of_one_phase_and_the_two_armed_example() -> None:
    only = _plan_json(ONE_ARMED, "--phase", "cutover")
    assert [p["id"] for p in only["phases"]] == ["cutover"]
    steps = {s["id"]: s for s in only["phases"][0]["steps"]}
    assert list(steps)[0] == "cutover/inventory" and "cutover/raise-ttl" in steps
    replace = steps["cutover/replace"]
    assert replace["built"] is True and replace["target"] == "dns:contoso.com"
    assert replace["summary"].startswith("ocspool.contoso.com A 10.0.0.30 -> 10.0.0.40 (TTL 60 s)")
    # clients reach the FEs through the VIP now: each FE is restarted drained at the LB
    restart = steps["cutover/restart[ocsfe01]"]
    assert restart["action"] == "lb.drain_restart" and restart["target"] == "ocsfe01"
    assert (
        "drained at lb01 first (until no session is left, at most 120 s, then restarted "
        "anyway, the sessions left cut)" in restart["summary"]
    )
    lowered = {
        s["id"]: s for s in _plan_json(ONE_ARMED, "--phase", "lower-ttl")["phases"][0]["steps"]
    }
    lower = lowered["lower-ttl/lower"]
    assert lower["action"] == "dns.lower_ttl" and lower["change"] == "change"
    assert "TTL of ocspool.contoso.com A to 60 s" in lower["summary"]
    # sip.<domain> and the SIP SRV records aimed at the legacy FE move with it
    assert "lower-ttl/lower-names[sip.contoso.com]" in lowered
    assert (
        "when it targets ocsfe00.contoso.com"
        in (lowered["lower-ttl/lower-srv[_sipinternaltls._tcp.contoso.com]"]["summary"])
    )

    two = _plan_json(TWO_ARMED, "--phase", "routing")
    routing = two["phases"][0]
    assert routing["skipped"] is None
    assert [s["id"] for s in routing["steps"]] == [
        "routing/enable",
        "routing/directory[ocsfe01]",
        "routing/directory[ocsfe02]",
    ]


def test_plan_tree_and_unknown_phase() -> None:
    result = CliRunner().invoke(app, ["-c", str(ONE_ARMED), "plan"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "validate-fe/pin[ocsfe01@client01]" in result.stdout
    assert "skipped: Enabling Load Balancer Routing is for two-armed routed only" in result.stdout
    assert "not built yet" not in result.stdout  # every phase of the walkthrough is built

    bad = CliRunner().invoke(app, ["-c", str(ONE_ARMED), "plan", "--phase", "nope"])
    assert bad.exit_code == 2
    assert "no phase nope" in bad.output


@pytest.mark.parametrize("profile", ["generic-tls"])
def test_generic_tls_playbook_plans(tmp_path: Path, profile: str) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(ONE_ARMED.read_text().replace("profile: ocs2007r2", f"profile: {profile}"))
    plan = _plan_json(pool)
    ids = [p["id"] for p in plan["phases"]]
    assert ids == [
        "preflight",
        "routing",
        "validate-fe",
        "configure-lb",
        "validate-lb",
        "lower-ttl",
        "cutover",
    ]
    steps = [s["id"] for s in plan["phases"][2]["steps"]]
    assert "validate-fe/probe[ocsfe01@client01]" in steps
    cutover = {s["id"]: s for s in plan["phases"][-1]["steps"]}
    assert [s.split("[")[0] for s in cutover][:2] == ["cutover/inventory", "cutover/no-pins"]
    assert {"cutover/watch", "cutover/raise-ttl", "cutover/probe[client01]"} <= set(cutover)
    assert "SIP" not in cutover["cutover/inventory"]["summary"]  # not a SIP service
    assert cutover["cutover/restart[ocsfe01]"]["summary"] == "no services to restart"


def test_drain_restart_refuses_bad_arguments_in_the_plan(tmp_path: Path) -> None:
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(
        "version: 1\nphases:\n  - id: cutover\n    title: t\n    section: t\n    steps:\n"
        "      - id: restart\n        action: lb.drain_restart\n"
        "        args: {fe: ocsfe01, drain_timeout: soon}\n"
        "      - id: other\n        action: lb.drain_restart\n        args: {fe: client01}\n"
    )
    result = CliRunner().invoke(
        app, ["-c", str(ONE_ARMED), "plan", "--playbook", str(playbook)], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 2, result.output
    assert "argument 'drain_timeout' must be seconds in 1..3600" in result.output
    assert "soon" not in result.output  # what the file said is not echoed
    assert "'fe' must name a front end (ocsfe01, ocsfe02)" in result.output
    assert "Traceback" not in result.output


def test_cutover_restart_with_the_manual_driver_says_it_cannot_drain(tmp_path: Path) -> None:
    pool = tmp_path / "pool.yaml"
    text = ONE_ARMED.read_text()
    assert "  driver: engine " in text
    pool.write_text(text.replace("  driver: engine ", "  driver: manual "))
    steps = {s["id"]: s for s in _plan_json(pool, "--phase", "cutover")["phases"][0]["steps"]}
    restart = steps["cutover/restart[ocsfe02]"]
    assert restart["action"] == "lb.drain_restart" and restart["target"] == "ocsfe02"
    assert "manual driver cannot drain at the load balancer: a plain restart" in restart["summary"]


def test_an_action_that_stops_services_is_refused_outside_its_phases(tmp_path: Path) -> None:
    """A playbook of one's own cannot stop the legacy FE's services before the
    cutover, drill a failover during it or restart FEs undrained: refused when the
    plan is built, at the step's `action:`, with the phases it may run in."""
    playbook = tmp_path / "playbook.yaml"
    text = (
        "version: 1\nphases:\n"
        "  - id: validate-lb\n    title: t\n    section: t\n    steps:\n"
        "      - id: drill\n        action: lb.failover_drill\n"
        "        args: {fe: ocsfe01, mode: link}\n"
        "  - id: cutover\n    title: t\n    section: t\n    steps:\n"
        "      - id: stop-legacy\n        action: legacy.stop_services\n"
        "      - id: restart\n        action: host.restart_services\n"
        "        foreach: front_ends\n        as: fe\n        args: {host: '{{ fe.name }}'}\n"
        "      - id: drained\n        action: lb.drain_restart\n        args: {fe: ocsfe01}\n"
    )
    playbook.write_text(text)
    result = CliRunner().invoke(
        app, ["-c", str(ONE_ARMED), "plan", "--playbook", str(playbook)], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 2, result.output
    lines = text.splitlines()

    def at(action: str) -> str:
        return f"{playbook}:{lines.index(f'        action: {action}') + 1}:9:"

    expected = [
        (at("lb.failover_drill"), "validate-lb/drill: lb.failover_drill", "failover-test"),
        (at("legacy.stop_services"), "cutover/stop-legacy: legacy.stop_services", "decommission"),
        (
            at("host.restart_services"),
            "cutover/restart[ocsfe01]: host.restart_services",
            "configure-fe, validate-fe",
        ),
    ]
    for where, step, phases in expected:
        assert f"{where} " in result.stderr and step in result.stderr
        assert f"it runs only in phase(s) {phases}" in result.stderr
    assert "[playbook.action-phase]" in result.stderr
    assert "lb.drain_restart" not in result.stderr  # in one of its phases
    assert "Traceback" not in result.output


def test_the_phases_actions_are_bound_to_are_the_shipped_playbooks_phases() -> None:
    from ocsscale.actions.base import registry
    from ocsscale.runner.plugins import load_actions

    load_actions()
    bound = {name: cls.phases for name, cls in registry().items() if cls.phases}
    assert set(bound) >= {
        "legacy.stop_services",
        "lb.failover_drill",
        "lb.drain_restart",
        "lb.isolate",
        "host.restart_services",
    }
    for phases in bound.values():
        assert set(phases) <= set(PHASE_IDS)
    plan = _plan_json(ONE_ARMED)  # the shipped playbook builds: each is in its phases
    used = {(s["action"], p["id"]) for p in plan["phases"] for s in p["steps"]}
    assert ("legacy.stop_services", "decommission") in used
    assert ("lb.failover_drill", "failover-test") in used
