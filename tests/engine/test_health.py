"""Health checks: every check port must answer; every port follows the result."""

from __future__ import annotations

from collections import Counter

from .conftest import Backends, EngineProc, Net, basic_farm, connect, wait_for


def _ok_rounds(engine: EngineProc, name: str) -> int:
    return engine.status()["check_results"].get(f"{name}:ok", 0)


def _fail_rounds(engine: EngineProc, name: str) -> int:
    return engine.status()["check_results"].get(f"{name}:fail", 0)


def test_closed_check_port_takes_server_out_of_every_port(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    # Data ports 16101/16102; check ports 16110 and 16111 (like 5061 + 444).
    for i in range(2):
        for port in (16101, 16102, 16110, 16111):
            backends.open(net.servers[i], port, f"fe{i + 1}")
    farm = basic_farm(net, [16101, 16102], [1, 1], health={"ports": [16110, 16111]})
    engine = engine_factory(farm)
    wait_for(lambda: _ok_rounds(engine, "fe1") >= 1, 10, "first good check round")

    backends.close(net.servers[0], 16111)  # only the second check port goes away
    wait_for(lambda: engine.server("fe1")["state"] == "down", 10, "fe1 to go down")
    down = engine.events("server-down")
    assert down and down[-1]["server"] == "fe1" and "16111" in down[-1]["reason"]
    assert down[-1]["ts"]  # every state change carries a timestamp

    # fe1's data ports still listen, yet no port sends it anything.
    names = Counter(connect(net.vip, p)[1] for p in (16101, 16102) * 4)
    assert names == {"fe2": 8}

    backends.open(net.servers[0], 16111, "fe1")
    wait_for(lambda: engine.server("fe1")["state"] == "up", 10, "fe1 to come back")
    assert "rounds in a row passed" in engine.events("server-up")[-1]["reason"]


def test_single_failed_check_does_not_take_server_out(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    for port in (16120, 16121):
        backends.open(net.servers[0], port, "fe1")
    # A long fastinter leaves a wide window to restore the port after one failure.
    health = {"ports": [16121], "inter": 0.2, "fastinter": 1.5, "fall": 2, "rise": 2}
    engine = engine_factory(basic_farm(net, [16120], [1], health=health))
    wait_for(lambda: _ok_rounds(engine, "fe1") >= 2, 10, "two good check rounds")

    backends.close(net.servers[0], 16121)
    wait_for(lambda: _fail_rounds(engine, "fe1") >= 1, 10, "one failed check round")
    backends.open(net.servers[0], 16121, "fe1")
    assert _fail_rounds(engine, "fe1") == 1
    ok_before = _ok_rounds(engine, "fe1")
    wait_for(lambda: _ok_rounds(engine, "fe1") >= ok_before + 2, 10, "checks to pass again")

    assert _fail_rounds(engine, "fe1") == 1
    assert engine.server("fe1")["state"] == "up"
    assert engine.events("server-down") == []
    sock, name = connect(net.vip, 16120)
    assert name == "fe1"
    sock.close()


def test_never_checked_server_that_fails_is_out_at_once(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    backends.open(net.servers[0], 16130, "fe1")
    backends.open(net.servers[1], 16130, "fe2")
    backends.open(net.servers[1], 16131, "fe2")  # fe1 has no check port listening
    engine = engine_factory(basic_farm(net, [16130], [1, 1], health={"ports": [16131]}))
    wait_for(lambda: engine.server("fe1")["state"] == "down", 10, "fe1 to be marked down")
    assert engine.server("fe2")["state"] == "up"


def test_refused_connect_is_redispatched_before_checks_notice(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    # fe1's check port answers but its data port is closed: every client still
    # lands on fe2 (one retry elsewhere), and the failure is an event.
    backends.open(net.servers[0], 16141, "fe1")
    backends.open(net.servers[1], 16140, "fe2")
    backends.open(net.servers[1], 16141, "fe2")
    engine = engine_factory(basic_farm(net, [16140], [1, 1], health={"ports": [16141]}))
    names = [connect(net.vip, 16140)[1] for _ in range(6)]
    assert names == ["fe2"] * 6
    assert engine.events("connect-failed")[0]["server"] == "fe1"
    assert engine.server("fe1")["active"] == 0


def test_blackholed_check_port_times_out_and_takes_server_out(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    import socket

    backends.open(net.servers[0], 16150, "fe1")
    # A listener that never accepts: once its backlog is full the kernel drops SYNs,
    # which is what a check sees when a server's link is cut.
    hole = socket.socket()
    hole.bind((net.servers[0], 16151))
    hole.listen(0)
    try:
        health = {"ports": [16151], "timeout": 0.3}
        engine = engine_factory(basic_farm(net, [16150], [1], health=health))
        wait_for(lambda: engine.server("fe1")["state"] == "down", 20, "fe1 to go down")
        reason = engine.events("server-down")[-1]["reason"]
        assert "port 16151: no answer within 0.3s" in reason
    finally:
        hole.close()


def test_status_reports_the_check_settings_in_use_across_a_reload(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    """/status says what the checker runs with (read back by the engine driver), and a
    reload that changes it changes what it says."""
    backends.open(net.servers[0], 16401, "fe1")
    farm = basic_farm(net, [16401], [1])
    farm["health"] = {"ports": [16401], "inter": 0.4, "timeout": 0.3, "fall": 2, "rise": 3}
    engine = engine_factory(farm)
    health = engine.status()["health"]
    assert (health["inter"], health["timeout"], health["fall"], health["rise"]) == (0.4, 0.3, 2, 3)
    farm["health"] = {**farm["health"], "inter": 1.5, "fall": 4}
    engine.write(farm)
    engine.api("POST", "/reload")
    health = engine.status()["health"]
    assert (health["inter"], health["fall"], health["ports"]) == (1.5, 4, [16401])
