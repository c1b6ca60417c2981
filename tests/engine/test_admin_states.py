"""Admin states: drain, maint (with and without shutdown), ready."""

from __future__ import annotations

import contextlib
import time

from .conftest import Backends, EngineProc, Net, basic_farm, connect, wait_for


def _checks(engine: EngineProc, name: str) -> int:
    results = engine.status()["check_results"]
    return results.get(f"{name}:ok", 0) + results.get(f"{name}:fail", 0)


def test_drain_keeps_established_sessions_and_takes_no_new(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    for i in range(2):
        backends.open(net.servers[i], 16201, f"fe{i + 1}")
    engine = engine_factory(basic_farm(net, [16201], [1, 1]))
    held = dict((name, sock) for sock, name in (connect(net.vip, 16201) for _ in range(2)))
    assert set(held) == {"fe1", "fe2"}

    answer = engine.api("POST", "/servers/fe1/drain")
    assert answer["server"]["admin"] == "drain" and answer["server"]["active"] == 1
    new = [connect(net.vip, 16201) for _ in range(4)]
    assert {name for _, name in new} == {"fe2"}
    held["fe1"].sendall(b"still here")  # the drained server's session carries on
    assert held["fe1"].recv(10) == b"still here"

    engine.api("POST", "/servers/fe1/ready")
    sock, name = connect(net.vip, 16201)
    assert name == "fe1"  # the least loaded server again
    kinds = [e["reason"] for e in engine.events("admin-state")]
    assert any("ready -> drain" in r for r in kinds) and any("drain -> ready" in r for r in kinds)
    for s in [sock, *held.values(), *(s for s, _ in new)]:
        s.close()


def test_maint_stops_checks_and_shutdown_closes_sessions(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    for i in range(2):
        backends.open(net.servers[i], 16202, f"fe{i + 1}")
        backends.open(net.servers[i], 16203, f"fe{i + 1}")
    farm = basic_farm(net, [16202], [1, 1], health={"ports": [16203], "inter": 0.1})
    engine = engine_factory(farm)
    wait_for(lambda: _checks(engine, "fe1") >= 1, 10, "first check")
    held = dict((name, sock) for sock, name in (connect(net.vip, 16202) for _ in range(2)))

    answer = engine.api("POST", "/servers/fe1/maint?shutdown=1")
    assert answer["sessions_closed"] == 1
    held["fe1"].settimeout(5)
    with contextlib.suppress(ConnectionResetError):  # a reset counts as closed too
        assert held["fe1"].recv(10) == b""
    wait_for(lambda: engine.server("fe1")["active"] == 0, 5, "session count to drop")

    checks = _checks(engine, "fe1")
    time.sleep(0.5)  # several check intervals
    assert _checks(engine, "fe1") == checks, "maint must stop health checks"
    assert {connect(net.vip, 16202)[1] for _ in range(3)} == {"fe2"}

    engine.api("POST", "/servers/fe1/ready")
    wait_for(lambda: engine.server("fe1")["state"] == "up", 10, "fe1 back after checks")
    assert _checks(engine, "fe1") > checks


def test_unknown_server_is_a_clear_error(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    backends.open(net.servers[0], 16204, "fe1")
    engine = engine_factory(basic_farm(net, [16204], [1]))
    from ocsscale.engine.client import AdminClientError

    try:
        engine.api("POST", "/servers/nope/drain")
    except AdminClientError as err:
        assert "no server named 'nope'" in str(err)
    else:
        raise AssertionError("draining an unknown server must fail")
