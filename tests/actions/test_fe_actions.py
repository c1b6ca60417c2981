"""The front-end phase actions without a lab: arguments, the checklist, how an
answer is judged, TCP probes from the admin host over loopback, and how the CLI
shows checklists and findings. The lab tests (tests/lab) run them for real."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from ocsscale.actions.base import Action, Context, registry
from ocsscale.actions.probe_ports import _answered
from ocsscale.actions.routing import _addresses
from ocsscale.cli.progress import RunProgress
from ocsscale.config import load_pool
from ocsscale.errors import CheckFailed, TransportError, UsageError
from ocsscale.probes import ProbeEvidence
from ocsscale.probes.evidence import CertSummary
from ocsscale.runner.events import Event
from ocsscale.runner.plugins import load_actions
from ocsscale.transports.local import LocalHost

REPO = Path(__file__).resolve().parents[2]
ONE_ARMED = REPO / "examples" / "one-armed.yaml"


def _no_connection(name: str) -> Any:
    raise TransportError(f"no connection in this test (asked for {name})")


@pytest.fixture
def events() -> list[tuple[str, Mapping[str, Any]]]:
    return []


@pytest.fixture
def ctx(events: list[tuple[str, Mapping[str, Any]]]) -> Context:
    load_actions()
    loaded = load_pool(ONE_ARMED)

    def host(name: str) -> Any:
        if name == "admin":
            return LocalHost("admin")
        return _no_connection(name)

    return Context(
        pool=loaded.pool,
        profile=loaded.profile,
        host=host,
        emit=lambda kind, data: events.append((kind, data)),
        pool_path=ONE_ARMED,
    )


def _action(ctx: Context, action: str, **args: object) -> Action:
    return registry()[action](ctx, args)


def test_the_checklist_carries_this_pools_values(
    ctx: Context, events: list[tuple[str, Mapping[str, Any]]]
) -> None:
    action = _action(ctx, "fe.checklist", fe="ocsfe02")
    assert action.targets() == ["ocsfe02"]
    evidence = action.apply(action.read())
    assert events == [("checklist", evidence)]
    assert evidence["title"] == "Configuring New Front End Servers: ocsfe02 (ocsfe02.contoso.com)"
    steps = evidence["steps"]
    assert len(steps) == 9 and len(evidence["requirements"]) == 3
    assert "static IP address 10.0.1.42" in steps[0]
    assert "ocsfe02.contoso.com -> 10.0.1.42" in steps[1]
    assert (
        "Subject Name to ocspool.contoso.com and add ocsfe02.contoso.com and sip.contoso.com"
        in steps[5]
    )
    assert steps[8] == "Repeat these steps on ocsfe01.contoso.com (10.0.1.41)."
    assert "dc01" in evidence["requirements"][1] and "135" in evidence["requirements"][1]


@pytest.mark.parametrize(
    ("action", "args", "message"),
    [
        ("fe.checklist", {"fe": "client01"}, "client01 is not a front end"),
        ("fe.checklist", {"fe": "ocsfe01", "checklist": "nope"}, "no checklist nope"),
        ("fe.gate", {}, "argument 'fe' is required"),
        ("probe.tcp", {"from": "ocsfe01", "address": "10.0.0.10", "port": 0}, "TCP port"),
        ("probe.tcp", {"from": "nobody", "address": "10.0.0.10", "port": 135}, "no host named"),
        (
            "probe.ports",
            {
                "from": "client01",
                "name": "x.contoso.com",
                "expect_server": "ocsfe01",
                "through": "1.2.3.4",
            },
            "exactly one of",
        ),
        (
            "probe.ports",
            {"from": "client01", "name": "x.contoso.com", "expect_server": "client02"},
            "not a front end",
        ),
        ("routing.enable", {"address": "10.0.0.40/24"}, "argument 'backend_address'"),
    ],
)
def test_bad_arguments_are_usage_errors(
    ctx: Context, action: str, args: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        _action(ctx, action, **args)


def test_routing_needs_the_lb_host(ctx: Context) -> None:
    lb = ctx.pool.load_balancer.model_copy(update={"host": None})
    ctx = dataclasses.replace(ctx, pool=ctx.pool.model_copy(update={"load_balancer": lb}))
    with pytest.raises(UsageError, match="no load_balancer.host"):
        _action(ctx, "routing.enable", address="10.0.0.40/24", backend_address="10.0.1.40/24")


def test_ip_addr_output_is_read() -> None:
    out = (
        "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
        "2: eth0    inet 10.0.0.39/24 brd 10.0.0.255 scope global eth0\n"
        "3: eth1    inet 10.0.1.40/24 scope global dynamic eth1\n"
    )
    assert _addresses(out) == ["127.0.0.1", "10.0.0.39", "10.0.1.40"]


def _evidence(**found: object) -> ProbeEvidence:
    values: dict[str, Any] = {
        "probe": "sip",
        "host": "10.0.1.41",
        "port": 5061,
        "presented_name": "ocspool.contoso.com",
        "ok": True,
        "detail": "SIP/2.0 200 OK",
    }
    return ProbeEvidence(**(values | found))


def test_an_answer_must_come_from_the_expected_front_end(ctx: Context) -> None:
    probe = _action(
        ctx,
        "probe.ports",
        **{"from": "client01", "name": "ocspool.contoso.com", "expect_server": "ocsfe01"},
    )
    judge = probe._judge  # type: ignore[attr-defined]
    assert judge(_evidence(server="ocsfe01", pool_resolved="10.0.1.41")) is None
    assert judge(_evidence(server="OCSFE01.contoso.com")) is None
    # a real OCS names its product, not itself: the address the client used decides
    assert judge(_evidence(server="RTC/3.5.0.0")) is None
    assert judge(_evidence(server="ocsfe02")) == "answered by ocsfe02, expected ocsfe01"
    stale = judge(_evidence(server="ocsfe01", pool_resolved="10.0.0.30"))
    assert stale is not None and "were not restarted" in stale
    assert judge(_evidence(ok=False, detail="connection refused")) == "connection refused"

    through = _action(
        ctx,
        "probe.ports",
        **{"from": "client01", "name": "ocspool.contoso.com", "through": "10.0.0.40"},
    )
    assert through._judge(_evidence(server="ocsfe02", pool_resolved="10.0.0.40")) is None  # type: ignore[attr-defined]
    legacy = through._judge(_evidence(server="ocsfe00", pool_resolved="10.0.0.40"))  # type: ignore[attr-defined]
    assert legacy is not None and "legacy server ocsfe00" in legacy


def _certificate(*san_dns: str) -> CertSummary:
    return CertSummary(
        subject="CN=ocspool.contoso.com",
        subject_cn="ocspool.contoso.com",
        issuer="CN=test CA",
        san_dns=san_dns,
        san_ip=(),
        not_before="2024-01-01T00:00:00Z",
        not_after="2034-01-01T00:00:00Z",
        serial="01",
        sha256="00",
        ext_key_usage=("serverAuth",),
        pem="",
    )


def test_a_server_that_does_not_name_itself_is_told_apart_by_its_certificate(
    ctx: Context,
) -> None:
    probe = _action(
        ctx,
        "probe.ports",
        **{"from": "client01", "name": "ocspool.contoso.com", "expect_server": "ocsfe01"},
    )
    judge, identify = probe._judge, probe._identify  # type: ignore[attr-defined]
    own = _certificate("ocsfe01.contoso.com", "sip.contoso.com")
    other = _certificate("OCSFE02.contoso.com.", "sip.contoso.com")
    assert judge(_evidence(server="RTC/3.5.0.0", certificate=own)) is None
    assert identify(_evidence(server="RTC/3.5.0.0", certificate=own)) == ("ocsfe01", "certificate")
    assert judge(_evidence(server="RTC/3.5.0.0", certificate=other)) == (
        "answered by ocsfe02, expected ocsfe01"
    )
    assert judge(_evidence(server="ocsfe01", certificate=other)) == (
        "the answer names ocsfe01 but its certificate names ocsfe02"
    )
    # a certificate naming several pool servers tells nothing
    shared = _certificate("ocsfe01.contoso.com", "ocsfe02.contoso.com")
    assert identify(_evidence(server="RTC/3.5.0.0", certificate=shared)) == (None, None)
    assert identify(_evidence(server="ocsfe01", certificate=own)) == ("ocsfe01", "answer")


def _port_result(port: int, **fields: object) -> dict[str, Any]:
    result: dict[str, Any] = {
        "port": port,
        "ok": True,
        "server": None,
        "answered_by": None,
        "identified_by": None,
        "pool_resolved": None,
    }
    return result | fields


def test_what_the_answers_cannot_show_is_marked_unproven(ctx: Context) -> None:
    probe = _action(
        ctx,
        "probe.ports",
        **{"from": "client01", "name": "ocspool.contoso.com", "expect_server": "ocsfe01"},
    )
    anonymous = _answered(_port_result(5061, server="RTC/3.5.0.0"), "10.0.1.41")
    assert "does not name itself (RTC/3.5.0.0): only the address says" in anonymous
    named = _answered(_port_result(5061, answered_by="ocsfe01", identified_by="certificate"), "a")
    assert named == "answered by ocsfe01 at a:5061 (named in its certificate)"

    silent = [_port_result(5061), _port_result(444)]
    (restart,) = probe._restart_finding(silent)  # type: ignore[attr-defined]
    assert restart["ok"] and restart["proven"] is False
    assert "confirm by hand that its services were restarted" in restart["message"]
    reported = [_port_result(5061, pool_resolved="10.0.1.41"), _port_result(444)]
    assert probe._restart_finding(reported) == []  # type: ignore[attr-defined]


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def test_probe_tcp_from_the_admin_host(ctx: Context, listener: int) -> None:
    ok = _action(ctx, "probe.tcp", **{"from": "admin", "address": "127.0.0.1", "port": listener})
    evidence = ok.apply(ok.read())
    assert evidence["connected"] and evidence["port"] == listener

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # bound then closed: nothing listens there
    refused = _action(ctx, "probe.tcp", **{"from": "admin", "address": "127.0.0.1", "port": port})
    with pytest.raises(CheckFailed, match=rf"admin: TCP connect to 127.0.0.1:{port} failed"):
        refused.apply(refused.read())


def test_the_cli_prints_checklists_and_findings(ctx: Context) -> None:
    console = Console(record=True, width=100, force_terminal=False)
    progress = RunProgress(console)
    checklist = _action(ctx, "fe.checklist", fe="ocsfe01")
    data = checklist.apply(None)
    progress(Event("checklist", "configure-fe", "configure-fe/checklist[ocsfe01]", data))
    findings = [
        {"check": "dns.a", "ok": True, "proven": True, "message": "A record fine"},
        {"check": "peer.ocsfe02", "ok": True, "proven": False, "message": "rule out NAT by hand"},
        {"check": "cert.san", "ok": False, "proven": True, "message": "SANs lack x"},
    ]
    progress(
        Event("findings", "configure-fe", "gate", {"title": "ocsfe01 gate", "findings": findings})
    )
    progress.close()
    text = console.export_text()
    assert "☐ Configuring New Front End Servers: ocsfe01 (ocsfe01.contoso.com)" in text
    assert "   1. Obtain a new physical server" in text
    assert "   9. Repeat these steps on ocsfe02.contoso.com" in text
    assert "Ensure the following requirements are met:" in text
    assert "✓ dns.a: A record fine" in text
    assert "? peer.ocsfe02: rule out NAT by hand" in text
    assert "✗ cert.san: SANs lack x" in text
