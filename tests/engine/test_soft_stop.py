"""SIGTERM is HAProxy's soft stop: new clients are refused at once, a transfer in
progress completes (every byte, then a clean FIN), and the engine exits when its
last session ends. What is still open after `timeouts.hard_stop_after` is reset,
so a cut transfer never looks complete to its client."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import struct
import threading
import time

import pytest

from .conftest import Backends, EngineProc, Net, basic_farm, wait_for
from .test_client_speaks_first import LOOPS

CHUNK = 32 * 1024
CHUNKS = 40  # 1.25 MiB, sent over about 2 s
PAUSE = 0.05


class SlowSender:
    """A server that sends CHUNKS pieces of random bytes PAUSE apart, then closes."""

    def __init__(self, address: str, port: int) -> None:
        self.payload = os.urandom(CHUNK * CHUNKS)
        self.listener = socket.create_server((address, port))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            for i in range(CHUNKS):
                conn.sendall(self.payload[i * CHUNK : (i + 1) * CHUNK])
                time.sleep(PAUSE)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


def _refused(address: str, port: int) -> bool:
    """True once nothing listens; a connect that still gets through is reset at once."""
    try:
        probe = socket.create_connection((address, port), timeout=2)
    except ConnectionRefusedError:
        return True
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    probe.close()
    return False


def _read_all(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("loop", LOOPS)
def test_sigterm_lets_a_transfer_finish(
    loop: str, workers: int, net: Net, engine_factory: type[EngineProc]
) -> None:
    sender = SlowSender(net.servers[0], 16501)
    try:
        farm = basic_farm(net, [16501], [1], workers=workers)
        engine = engine_factory(farm, env={"OCSSCALE_ENGINE_LOOP": loop})
        client = socket.create_connection((net.vip, 16501), timeout=20)
        received = client.recv(CHUNK)
        assert received  # the transfer is under way
        engine.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: _refused(net.vip, 16501), 10, "new connections to be refused")
        wait_for(lambda: not os.path.exists(engine.socket), 10, "the admin socket to go")
        received += _read_all(client)  # ends with the server's FIN, not a reset
        client.close()
        assert hashlib.sha256(received).digest() == hashlib.sha256(sender.payload).digest()
        assert engine.proc.wait(60) == 0  # gone once its last session ended
    finally:
        sender.close()
    log = engine.log
    assert re.search(r"stopped accepting; [12] sessions may finish", log)  # 2: a probe
    assert "hard-stop" not in log and "Traceback" not in log


def test_sessions_left_at_hard_stop_after_are_reset(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    backends.open(net.servers[0], 16511, "fe1", flood=True)  # never ends
    timeouts = {"idle": 60, "hard_stop_after": 0.5}
    engine = engine_factory(basic_farm(net, [16511], [1], timeouts=timeouts))
    client = socket.create_connection((net.vip, 16511), timeout=20)
    assert client.recv(65536)
    engine.proc.send_signal(signal.SIGTERM)
    with pytest.raises(ConnectionResetError):
        _read_all(client)  # a reset: the client knows the stream was cut
    client.close()
    assert engine.proc.wait(30) == 0
    assert "1 sessions still open at stop; reset" in engine.log
    assert "Traceback" not in engine.log
