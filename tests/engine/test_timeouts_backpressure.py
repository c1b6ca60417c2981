"""Idle timeout with tunnel semantics, and bounded buffering under back-pressure."""

from __future__ import annotations

import socket
import time

from ocsscale.engine.proxy import HIGH_WATER

from .conftest import Backends, EngineProc, Net, basic_farm, connect, wait_for


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_idle_timeout_closes_quiet_sessions_only(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    backends.open(net.servers[0], 16301, "fe1")
    farm = basic_farm(net, [16301], [1], timeouts={"idle": 0.6, "connect": 2, "half_close": 5})
    engine = engine_factory(farm)
    quiet, _ = connect(net.vip, 16301)
    chatty, _ = connect(net.vip, 16301)
    quiet.settimeout(10)
    # Keep `chatty` busy well past the idle timeout; traffic resets its timer.
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        chatty.sendall(b"k")
        assert chatty.recv(1) == b"k"
        time.sleep(0.1)
    assert _closed_by_peer(quiet)
    chatty.sendall(b"alive")
    assert chatty.recv(5) == b"alive"
    assert engine.status()["idle_closed"] == 1
    chatty.close()


def test_server_flooding_a_client_that_does_not_read_is_bounded(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    backends.open(net.servers[0], 16302, "fe1", flood=True)
    engine = engine_factory(basic_farm(net, [16302], [1]))
    client = socket.create_connection((net.vip, 16302))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    key = (net.servers[0], 16302)

    # The backend keeps writing until every buffer on the way is full, then blocks.
    def settled() -> bool:
        before = backends.flood_sent.get(key, 0)
        time.sleep(0.3)
        return before > 0 and backends.flood_sent.get(key, 0) == before

    wait_for(settled, 20, "the flooding server to be blocked")
    status = engine.status()
    # Engine memory held for this session: one write buffer at its high-water mark
    # plus at most one read's worth that arrived before reading was paused.
    assert status["buffered_bytes"] <= HIGH_WATER + 512 * 1024, status["buffered_bytes"]
    # The server was stopped by back-pressure long before a large transfer finished.
    assert backends.flood_sent[key] < 64 * 1024 * 1024
    # Once the client reads again, data flows again.
    client.settimeout(5)
    got = 0
    while got < 4 * 1024 * 1024:
        got += len(client.recv(1 << 20))
    client.close()


def test_half_close_is_forwarded(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    backends.open(net.servers[0], 16303, "fe1")
    engine = engine_factory(
        basic_farm(net, [16303], [1], timeouts={"idle": 60, "connect": 2, "half_close": 0.5})
    )
    sock, _ = connect(net.vip, 16303)
    sock.sendall(b"last words")
    sock.shutdown(socket.SHUT_WR)  # the echo server answers, then closes its side
    sock.settimeout(5)
    data = b""
    while chunk := sock.recv(100):
        data += chunk
    assert data == b"last words"
    wait_for(lambda: engine.status()["active"] == 0, 5, "session to end")
    sock.close()


def test_half_close_timeout_ends_a_session_the_server_never_closes(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    backends.open(net.servers[0], 16304, "fe1", hold=True)
    engine = engine_factory(
        basic_farm(net, [16304], [1], timeouts={"idle": 60, "connect": 2, "half_close": 0.5})
    )
    sock, _ = connect(net.vip, 16304)
    sock.sendall(b"bye")
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(10)
    assert sock.recv(3) == b"bye"
    assert _closed_by_peer(sock)  # the engine ends it; the server never would
    wait_for(lambda: engine.status()["active"] == 0, 5, "session to end")
    sock.close()
