"""The phases behind an appliance (load_balancer.driver: manual) without a lab:
`plan` of the two-armed example with no LB host, routing.enable as the operator's
checklist proven from a front end over a real sshd, and lb.reach's optional ports
against real loopback listeners."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
from collections.abc import Iterator, Mapping, Sequence
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

import pytest
from machine_route import machine_gateway
from typer.testing import CliRunner

from ocsscale.actions.base import Action, Context, registry
from ocsscale.cli.main import app
from ocsscale.config import load_pool
from ocsscale.errors import CheckFailed, Declined, UndoRecordError
from ocsscale.plan import PHASE_IDS
from ocsscale.runner.plugins import load_actions
from ocsscale.transports.local import LocalHost
from ocsscale.transports.ssh import SSHHost

REPO = Path(__file__).resolve().parents[2]
TWO_ARMED = REPO / "examples" / "two-armed-routed.yaml"


def appliance_pool(path: Path) -> Path:
    """The two-armed example with the manual driver and no load_balancer.host."""
    text = TWO_ARMED.read_text()
    assert "  driver: engine " in text
    text = text.replace("  driver: engine ", "  driver: manual ")
    start = text.index("  host:                              # where the LB is administered")
    text = text[:start] + text[text.index("\ndns:") :]
    path.write_text(text)
    return path


def test_plan_of_the_two_armed_example_behind_an_appliance(tmp_path: Path) -> None:
    pool = appliance_pool(tmp_path / "pool.yaml")
    assert CliRunner().invoke(app, ["-c", str(pool), "check"]).exit_code == 0
    result = CliRunner().invoke(app, ["-c", str(pool), "plan", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    routing = next(p for p in plan["phases"] if p["id"] == "routing")
    assert routing["skipped"] is None
    enable = routing["steps"][0]
    assert enable["id"] == "routing/enable" and enable["built"] is True
    assert enable["target"] == "lb (WebMux, by hand), ocsfe01, ocsfe02"
    summary = enable["summary"]
    # the operator's steps, with this pool's values
    assert "operator: Enable routing between these two networks" in summary
    for fe in ("ocsfe01 (10.0.1.41)", "ocsfe02 (10.0.1.42)"):
        assert f"Front end {fe}: default gateway 10.0.1.40" in summary
    assert "10.0.0.40 stays unconfigured" in summary
    assert "TCP connect to dc01 10.0.0.10:135 through the WebMux" in summary
    # every phase plans, every step built (the routing step stopped the whole plan before)
    assert [p["id"] for p in plan["phases"]] == list(PHASE_IDS)
    assert all(s["built"] for p in plan["phases"] for s in p["steps"])
    configure = next(p for p in plan["phases"] if p["id"] == "configure-lb")
    reach = next(s for s in configure["steps"] if s["id"] == "configure-lb/reach[client01]")
    assert "optional 5060, 5069, 8404, 80 (shown when they answer" in reach["summary"]
    text = CliRunner().invoke(app, ["-c", str(pool), "plan"], env={"COLUMNS": "300"})
    assert text.exit_code == 0 and "Traceback" not in text.output


# -- routing.enable with an operator and a real front end (sshd) -------------------


class ScriptedOperator:
    """Acts on the 'appliance' when asked, from the checklist's data only, then answers."""

    def __init__(self, act: Any, answer: str = "done") -> None:
        self.act = act
        self.answer = answer
        self.told: list[tuple[str, list[str], Mapping[str, Any] | None]] = []
        self.asked: list[str] = []

    def tell(self, title: str, lines: Sequence[str], data: Mapping[str, Any] | None = None) -> None:
        self.told.append((title, list(lines), data))

    def ask(self, question: str, choices: Sequence[str], default: str | None = None) -> str:
        self.asked.append(question)
        assert self.told and self.told[-1][2] is not None, "a checklist without data"
        self.act(self.told[-1][2])
        return self.answer

    def text(self, question: str, default: str = "") -> str:
        raise AssertionError("not asked")


class Directory:
    """The directory server's port: closed until routing is 'enabled' (a listener)."""

    def __init__(self) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        self.listener: socket.socket | None = None

    def open(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None


@pytest.fixture
def fe_over_ssh(sshd_server: Any, tmp_path: Path) -> Iterator[SSHHost]:
    known = tmp_path / "known_hosts"
    shutil.copy(sshd_server.known_hosts, known)
    host = SSHHost(
        "ocsfe01",
        sshd_server.address,
        port=sshd_server.port,
        username=sshd_server.username,
        key_file=sshd_server.client_key,
        known_hosts=known,
    )
    yield host
    host.close()


def _context(tmp_path: Path, host: Any, directory_port: int, operator: Any) -> Context:
    load_actions()
    loaded = load_pool(appliance_pool(tmp_path / "pool.yaml"))
    pool = loaded.pool
    # one front end, reached over SSH on loopback; the directory on loopback too
    fe = pool.front_ends[0]
    directory = pool.directory.model_copy(
        update={"address": IPv4Address("127.0.0.1"), "port": directory_port}
    )
    pool = pool.model_copy(update={"front_ends": [fe], "directory": directory})

    def by_name(name: str) -> Any:
        assert name == fe.name, name
        return host

    return Context(
        pool=pool, profile=loaded.profile, host=by_name, emit=lambda k, d: None, operator=operator
    )


def _routing(ctx: Context, backend: str) -> Action:
    return registry()["routing.enable"](
        ctx, {"address": "10.0.0.40/24", "backend_address": f"{backend}/24"}
    )


@pytest.mark.sshd
def test_routing_behind_an_appliance_is_the_operators_checklist_proven_from_the_fe(
    fe_over_ssh: SSHHost, tmp_path: Path
) -> None:
    gateway = machine_gateway()
    if gateway is None:
        pytest.skip("this machine has no IPv4 default gateway to read back")
    directory = Directory()
    operator = ScriptedOperator(
        lambda data: directory.open() if data["enable"] else directory.close()
    )
    ctx = _context(tmp_path, fe_over_ssh, directory.port, operator)
    action = _routing(ctx, gateway)
    assert action.targets() == ["ocsfe01"]
    try:
        current = action.read()
        seen = current["front_ends"]["ocsfe01"]
        assert seen["reaches_directory"] is False and seen["gateways"] == [gateway]
        assert action.diff(current)  # not reached yet: the checklist is needed
        undo = json.loads(json.dumps(action.undo_record(current)))
        action.check_undo(undo)
        evidence = action.verify(action.apply(current))
        title, lines, data = operator.told[0]
        assert title == "Enable routing on the WebMux"
        assert data is not None and data["kind"] == "routing" and data["enable"] is True
        assert data["backend_address"] == gateway and data["vip"] == "10.0.0.40"
        assert data["front_ends"] == [{"name": "ocsfe01", "address": "10.0.1.41"}]
        assert any(gateway in line and "default gateway" in line for line in lines)
        proven = evidence["front_ends"]["ocsfe01"]
        assert proven["reaches_directory"] is True and proven["gateways"] == [gateway]
        # a second run finds nothing to do
        assert action.diff(action.read()) == []

        action.revert(undo)
        _, revert_lines, revert_data = operator.told[-1]
        assert revert_data is not None and revert_data["enable"] is False
        assert "clear “Enable Routing”" in revert_lines[0]
        assert action.verify_reverted(undo) == {
            "not_reaching": ["ocsfe01"],
            "unreadable": {},
            "proven": True,
        }
        # still reached after the revert's done: the rollback fails, saying so
        directory.open()
        with pytest.raises(CheckFailed, match="ocsfe01 still reach dc01 127.0.0.1"):
            action.verify_reverted(undo)
    finally:
        directory.close()


@pytest.mark.sshd
def test_a_done_that_did_not_happen_fails_with_what_the_fe_sees(
    fe_over_ssh: SSHHost, tmp_path: Path
) -> None:
    directory = Directory()
    operator = ScriptedOperator(lambda data: None)  # says done, changes nothing
    ctx = _context(tmp_path, fe_over_ssh, directory.port, operator)
    action = _routing(ctx, "198.18.2.1")  # not this machine's gateway
    current = action.read()
    with pytest.raises(CheckFailed) as failed:
        action.verify(action.apply(current))
    message = failed.value.message
    assert "ocsfe01 does not reach dc01 127.0.0.1" in message
    assert "ocsfe01's default gateway is" in message and "expected 198.18.2.1" in message

    # the operator aborts: nothing verified, a clear refusal
    ctx = dataclasses.replace(ctx, operator=ScriptedOperator(lambda data: None, answer="abort"))
    with pytest.raises(Declined):
        _routing(ctx, "198.18.2.1").apply(current)


def test_the_appliance_undo_record_is_checked(tmp_path: Path) -> None:
    ctx = _context(tmp_path, None, 9, ScriptedOperator(lambda data: None))
    action = _routing(ctx, "10.0.1.40")
    good = {
        "appliance": True,
        "vendor": "WebMux",
        "backend_address": "10.0.1.40",
        "reached_before": [],
        "gateways_before": {"ocsfe01": ["10.0.1.1"]},
    }
    action.check_undo(good)
    for bad in (
        {**good, "backend_address": "10.0.1.99"},
        {**good, "reached_before": ["client01"]},
        {**good, "gateways_before": {"ocsfe01": "10.0.1.1"}},
        {**good, "gateways_before": {"nobody": []}},
    ):
        with pytest.raises(UndoRecordError):
            action.check_undo(bad)


# -- lb.reach: required and optional ports ------------------------------------------


@pytest.fixture
def ports() -> Iterator[dict[str, int]]:
    """Two ports that answer on 127.0.0.1 and two that refuse."""
    servers = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    closed = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed.append(int(s.getsockname()[1]))
    yield {
        "required_open": int(servers[0].getsockname()[1]),
        "optional_open": int(servers[1].getsockname()[1]),
        "optional_closed": closed[0],
        "required_closed": closed[1],
    }
    for server in servers:
        server.close()


def _reach_ctx(tmp_path: Path, requirements: dict[int, str], events: list[Any]) -> Context:
    load_actions()
    loaded = load_pool(appliance_pool(tmp_path / "pool.yaml"))
    pool = loaded.pool
    lb = pool.load_balancer.model_copy(update={"vip": IPv4Interface("127.0.0.1/8")})
    pool = pool.model_copy(
        update={
            "load_balancer": lb,
            "pool": pool.pool.model_copy(update={"ports": requirements}),
        }
    )
    return Context(
        pool=pool,
        profile=loaded.profile,
        host=lambda name: LocalHost("admin"),
        emit=lambda kind, data: events.append((kind, data)),
    )


def test_an_optional_port_refused_is_information_a_required_one_fails(
    tmp_path: Path, ports: dict[str, int]
) -> None:
    events: list[Any] = []
    requirements = {
        ports["required_open"]: "required",
        ports["optional_open"]: "optional",
        ports["optional_closed"]: "optional",
    }
    ctx = _reach_ctx(tmp_path, requirements, events)
    reach = registry()["lb.reach"](ctx, {"from": "admin", "ports": list(requirements)})
    evidence = reach.apply(None)
    assert evidence["required"] == [ports["required_open"]]
    assert evidence["optional_answering"] == [ports["optional_open"]]
    assert evidence["optional_not_answering"] == [ports["optional_closed"]]
    [(kind, shown)] = events
    by_port = {f["check"]: f for f in shown["findings"]}
    assert by_port[f"port {ports['required_open']}"]["ok"] is True
    assert by_port[f"port {ports['optional_open']} (optional)"]["message"] == "accepted"
    refused = by_port[f"port {ports['optional_closed']} (optional)"]
    assert refused["ok"] is True and refused["info"] is True
    assert refused["message"].startswith("optional port, not answering")

    requirements[ports["required_closed"]] = "required"
    ctx = _reach_ctx(tmp_path, requirements, [])
    reach = registry()["lb.reach"](ctx, {"from": "admin", "ports": list(requirements)})
    with pytest.raises(CheckFailed) as failed:
        reach.apply(None)
    assert f"1 of 2 required port(s): {ports['required_closed']}:" in failed.value.message
    assert str(ports["optional_closed"]) + ":" not in failed.value.message


def test_reach_takes_the_profiles_optional_ports_and_skips_absent_ones(tmp_path: Path) -> None:
    ctx = _reach_ctx(tmp_path, {5069: "absent", 5060: "required"}, [])
    reach = registry()["lb.reach"](ctx, {"from": "client01"})
    assert 5069 not in reach.ports and 5060 in reach.required
    assert reach.optional == [8404, 80]
    [change] = reach.describe()
    assert "optional 8404, 80" in change.summary and "5060" in change.summary
