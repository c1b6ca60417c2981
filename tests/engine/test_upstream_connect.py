"""The server-side connect on both event loops: snat.connect_socket (health
checks), the engine's own connect when it has to wait for the handshake, and
the SNAT pool's per-family candidates, which are computed when addresses are set."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from ocsscale.engine.snat import SnatPool, connect_socket, make_upstream_socket

from .conftest import EngineProc, Net, basic_farm, wait_for

LOOPS: dict[str, Callable[[Coroutine[Any, Any, Any]], Any]] = {
    "asyncio": asyncio.run,
    "uvloop": uvloop.run,
}


@pytest.fixture
def listener() -> Any:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_connect_socket_connects_from_the_snat_address(
    loop_name: str, listener: socket.socket
) -> None:
    async def dial() -> tuple[str, int]:
        sock = make_upstream_socket("127.0.0.1", "127.0.0.1")
        try:
            await connect_socket(asyncio.get_running_loop(), sock, listener.getsockname())
            return sock.getpeername()
        finally:
            sock.close()

    assert LOOPS[loop_name](dial()) == listener.getsockname()
    accepted, peer = listener.accept()
    accepted.close()
    assert peer[0] == "127.0.0.1"


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_connect_socket_refused_raises_connection_refused(loop_name: str) -> None:
    port = _closed_port()

    async def dial() -> None:
        sock = make_upstream_socket("127.0.0.1", None)
        try:
            await connect_socket(asyncio.get_running_loop(), sock, ("127.0.0.1", port))
        finally:
            sock.close()

    with pytest.raises(ConnectionRefusedError):
        LOOPS[loop_name](dial())


def test_snat_candidates_by_family_and_after_reassignment() -> None:
    pool = SnatPool(["10.0.0.1", "fd00::1", "10.0.0.2"])
    first = pool.candidates("10.1.1.1")
    second = pool.candidates("10.1.1.1")
    assert sorted(first) == sorted(second) == ["10.0.0.1", "10.0.0.2"]
    assert first != second  # the starting address rotates
    assert pool.candidates("fd00::9") == ["fd00::1"]
    assert pool.first("10.1.1.1") == "10.0.0.1"

    pool.addresses = ["10.0.0.3"]  # what a reload does
    assert pool.candidates("10.1.1.1") == ["10.0.0.3"]
    assert pool.candidates("fd00::9") == [None]
    assert pool.first("fd00::9") is None


# -- the engine's own connect when the handshake does not finish inside connect() --
# On loopback a server's handshake normally completes inside connect(). A listener
# whose accept queue is full drops the SYN; the kernel sends it again after 1 s,
# so the engine must wait for writability (the slow path, with its deadline).


class _FullQueue:
    """A listener with a full accept queue (backlog 0, one connection waiting)."""

    def __init__(self, address: str, port: int) -> None:
        self.listener = socket.socket()
        self.listener.bind((address, port))
        self.listener.listen(0)
        self.plug = socket.create_connection((address, port), timeout=5)

    def drain(self) -> None:
        """Accept the plug: the next SYN the engine sends again is answered."""
        conn, _ = self.listener.accept()
        conn.close()
        self.plug.close()

    def close(self) -> None:
        self.plug.close()
        self.listener.close()


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_a_connect_that_waits_for_the_handshake_serves_the_client(
    loop_name: str, net: Net, engine_factory: type[EngineProc]
) -> None:
    server = _FullQueue(net.servers[0], 16981)
    try:
        farm = basic_farm(net, [16981], [1], timeouts={"idle": 60, "connect": 10})
        engine = engine_factory(farm, env={"OCSSCALE_ENGINE_LOOP": loop_name})
        client = socket.create_connection((net.vip, 16981), timeout=10)
        client.sendall(b"hello")  # held until the server connection exists
        wait_for(lambda: engine.status()["active"] == 1, 5, "the session to wait for its server")
        server.drain()
        conn, _ = server.listener.accept()  # the engine's SYN, sent again
        conn.settimeout(10)
        got = b""
        while len(got) < 5:
            got += conn.recv(5 - len(got))
        assert got == b"hello"
        conn.sendall(b"fe1\n")
        assert client.recv(4) == b"fe1\n"
        assert engine.status()["snat"]["in_use"] == {net.snat[0]: 1}
        client.close()
        assert conn.recv(1) == b""  # the client's FIN reached the server
        conn.close()
        wait_for(lambda: engine.status()["active"] == 0, 5, "the session to end")
        assert engine.status()["snat"]["in_use"] == {net.snat[0]: 0}
        assert engine.events("connect-failed") == []
    finally:
        server.close()


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_a_client_that_leaves_while_its_server_connect_waits_frees_its_session(
    loop_name: str, net: Net, engine_factory: type[EngineProc]
) -> None:
    server = _FullQueue(net.servers[0], 16982)
    try:
        farm = basic_farm(net, [16982], [1], timeouts={"idle": 60, "connect": 2})
        engine = engine_factory(farm, env={"OCSSCALE_ENGINE_LOOP": loop_name})
        client = socket.create_connection((net.vip, 16982), timeout=10)
        wait_for(lambda: engine.status()["active"] == 1, 5, "the session to wait for its server")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # a reset: uvloop sees it at once; plain asyncio keeps a
        # connecting client paused and ends the session at the connect timeout
        wait_for(lambda: engine.status()["active"] == 0, 10, "the session to end")
        status = engine.status()
        assert status["maxconn"]["sessions"] == 0
        assert status["snat"]["in_use"] == {net.snat[0]: 0}
        # The server socket was closed with the session: once the queue drains, no
        # connection from the engine arrives.
        server.drain()
        server.listener.settimeout(2.5)  # past the kernel's 1 s SYN retransmission
        with pytest.raises(TimeoutError):
            server.listener.accept()
    finally:
        server.close()
