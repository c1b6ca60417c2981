"""maxconn: more idle clients than the descriptors allow. The engine stops
accepting at its limit (the excess waits in the kernel's listen queue, as with
HAProxy), closes no client, keeps its admin API and health checks working, and
takes the waiting clients as soon as sessions end."""

from __future__ import annotations

import resource
import socket
import time

import pytest

from .conftest import Backends, EngineProc, Net, basic_farm, wait_for
from .test_client_speaks_first import LOOPS

FD_LIMIT = 200
EXTRA = 150  # clients beyond maxconn: more clients in all than RLIMIT_NOFILE
LEAVE = 20  # served clients that leave so that waiting ones get their turn


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def _client(address: str, port: int) -> socket.socket:
    sock = socket.create_connection((address, port), timeout=5)
    sock.settimeout(None)  # blocking, so that MSG_DONTWAIT below never waits
    return sock


def _state(sock: socket.socket) -> str:
    """'data' (the greeting arrived), 'waiting' (nothing yet) or 'closed'."""
    try:
        data = sock.recv(64, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return "waiting"
    except OSError:
        return "closed"
    return "data" if data else "closed"


def _states(clients: list[socket.socket]) -> list[str]:
    return [_state(s) for s in clients]


@pytest.mark.parametrize("loop", LOOPS)
def test_maxconn_holds_the_excess_in_the_queue(
    loop: str, net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    port = 16991
    for i in range(2):
        backends.open(net.servers[i], port, f"fe{i + 1}")
    farm = basic_farm(net, [port], [1, 1], health={"ports": [port]})
    engine = engine_factory(farm, env={"OCSSCALE_ENGINE_LOOP": loop}, preexec=_low_fd_limit)
    view = engine.status()["maxconn"]
    maxconn = view["limit"]
    assert 0 < maxconn < FD_LIMIT // 2 and "RLIMIT_NOFILE 200" in view["source"]

    clients: list[socket.socket] = []
    try:
        for _ in range(maxconn + EXTRA):  # the kernel completes the handshakes
            clients.append(_client(net.vip, port))
        wait_for(lambda: _states(clients).count("data") == maxconn, 10, "maxconn greetings")
        time.sleep(1.0)  # several check rounds (inter 0.25 s) while saturated
        states = _states(clients)
        assert states.count("data") == maxconn and states.count("waiting") == EXTRA
        status = engine.status()  # the admin API answers at the limit
        assert status["active"] == maxconn and status["maxconn"]["sessions"] == maxconn
        assert all(s["healthy"] for s in status["servers"])
        assert not any(k.endswith(":fail") for k in status["check_results"])
        assert all(status["check_results"].get(f"fe{i}:ok", 0) >= 2 for i in (1, 2))

        served = [c for c, st in zip(clients, states, strict=True) if st == "data"]
        for c in served[:LEAVE]:
            c.close()
        rest = [c for c in clients if c not in served[:LEAVE]]
        wait_for(lambda: _states(rest).count("data") == maxconn, 10, "waiting clients served")
        assert _states(rest).count("waiting") == EXTRA - LEAVE  # none was closed
        assert engine.status()["active"] == maxconn
    finally:
        for c in clients:
            c.close()
    wait_for(lambda: engine.status()["active"] == 0, 10, "sessions to end")
    reached = engine.events("maxconn-reached")
    assert reached and f"maxconn {maxconn} reached" in reached[0]["reason"]
    for kind in ("server-down", "connect-failed", "accept-paused", "no-server"):
        assert engine.events(kind) == [], kind
    assert "Traceback" not in engine.log


def test_listener_maxconn_and_reload(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    backends.open(net.servers[0], 16993, "fe1")
    backends.open(net.servers[0], 16994, "fe1")
    ports = [{"port": 16993, "maxconn": 3}, 16994]
    engine = engine_factory(basic_farm(net, ports, [1]))
    assert engine.status()["maxconn"]["ports"]["16993"] == {"limit": 3, "sessions": 0}
    clients: list[socket.socket] = []
    try:
        clients = [_client(net.vip, 16993) for _ in range(5)]
        wait_for(lambda: _states(clients).count("data") == 3, 10, "three greetings")
        other = _client(net.vip, 16994)  # not limited
        clients.append(other)
        wait_for(lambda: _state(other) == "data", 10, "the other port to serve")
        time.sleep(0.3)
        assert _states(clients[:5]).count("waiting") == 2
        # A reload that raises the limit lets the waiting clients in at once.
        engine.write({**engine.farm, "ports": [{"port": 16993, "maxconn": 10}, 16994]})
        engine.api("POST", "/reload")
        wait_for(lambda: _states(clients).count("data") == 6, 10, "all served after reload")
        assert engine.status()["maxconn"]["ports"]["16993"] == {"limit": 10, "sessions": 5}
    finally:
        for c in clients:
            c.close()
    wait_for(lambda: engine.status()["active"] == 0, 10, "sessions to end")
    assert "Traceback" not in engine.log
