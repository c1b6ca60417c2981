"""Clients that send before the engine's server connection exists (HTTP, iperf3).

Run on both event loops: uvloop ignores pause_reading() inside connection_made, so
the early bytes reach the engine before it has anywhere to write them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import socket
import threading
import time

import pytest

from ocsscale.engine.proxy import HIGH_WATER

from .conftest import Backends, EngineProc, Net, basic_farm, wait_for

LOOPS = [
    pytest.param(
        "uvloop",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"
        ),
    ),
    "asyncio",
]


def _env(loop: str) -> dict[str, str]:
    return {"OCSSCALE_ENGINE_LOOP": loop}


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


@pytest.mark.parametrize("loop", LOOPS)
def test_client_that_speaks_first_gets_its_answer(
    loop: str, net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    backends.open(net.servers[0], 16801, "fe1")
    engine = engine_factory(basic_farm(net, [16801], [1]), env=_env(loop))
    assert engine.status()["loop"] == loop
    for i in range(20):
        request = f"GET /{i} HTTP/1.1\r\nHost: vip\r\n\r\n".encode()
        with socket.create_connection((net.vip, 16801), timeout=5) as sock:
            sock.sendall(request)  # at once, before the engine can reach the server
            assert _read_exactly(sock, len(b"fe1\n") + len(request)) == b"fe1\n" + request
    # Request and FIN both sent before the server connection exists: both arrive.
    with socket.create_connection((net.vip, 16801), timeout=5) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(100):
            data += chunk
        assert data == b"fe1\nlast words"
    wait_for(lambda: engine.status()["active"] == 0, 5, "sessions to end")
    assert "data_received" not in engine.log  # no "protocol.data_received() call failed"


class _SlowServer:
    """A server whose listen queue is full, so the engine's SYN is dropped and its
    connect waits for the retransmit; `release()` makes room and takes the bytes."""

    def __init__(self, address: str, port: int) -> None:
        self.listener = socket.socket()
        self.listener.bind((address, port))
        self.listener.listen(0)
        self.plug = socket.create_connection((address, port), timeout=5)  # fills the queue
        self.digest = ""
        self.received = 0
        self.thread = threading.Thread(target=self._take, daemon=True)

    def release(self) -> None:
        self.thread.start()

    def _take(self) -> None:
        self.listener.settimeout(15)
        self.listener.accept()[0].close()  # the plug
        conn, _ = self.listener.accept()  # the engine, once its SYN is retransmitted
        h = hashlib.sha256()
        with conn:
            conn.settimeout(15)
            while chunk := conn.recv(1 << 20):
                h.update(chunk)
                self.received += len(chunk)
        self.digest = h.hexdigest()

    def close(self) -> None:
        if self.thread.is_alive():
            self.thread.join(20)
        self.plug.close()
        self.listener.close()


@pytest.mark.parametrize("loop", LOOPS)
def test_early_bytes_are_bounded_while_the_server_connects(
    loop: str, net: Net, engine_factory: type[EngineProc]
) -> None:
    slow = _SlowServer(net.servers[0], 16802)
    try:
        farm = basic_farm(net, [16802], [1], timeouts={"idle": 60, "connect": 10, "half_close": 10})
        engine = engine_factory(farm, env=_env(loop))
        payload = bytes(range(256)) * (32 * 1024)  # 8 MiB
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        client.connect((net.vip, 16802))
        sent = [0]

        def send_all() -> None:
            view = memoryview(payload)
            while sent[0] < len(payload):
                sent[0] += client.send(view[sent[0] : sent[0] + 65536])
            client.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()

        def sender_blocked() -> bool:
            before = sent[0]
            time.sleep(0.2)
            return before > 0 and sent[0] == before

        wait_for(sender_blocked, 10, "the client to be blocked by back-pressure")
        status = engine.status()
        assert status["active"] == 1
        assert sent[0] < len(payload)
        # Held by the engine while connecting: up to high water plus one read.
        assert status["buffered_bytes"] <= HIGH_WATER + 256 * 1024, status["buffered_bytes"]

        slow.release()
        sender.join(20)
        assert not sender.is_alive()
        slow.thread.join(20)
        assert slow.received == len(payload)
        assert slow.digest == hashlib.sha256(payload).hexdigest()
        client.close()
    finally:
        slow.close()
