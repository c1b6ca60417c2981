"""An engine busy or stalled by load: the admin API keeps answering, and a client is
only closed for a real cause that its event names (never because the engine itself
was late). SIGSTOP stands in for "too busy to run" without assuming any speed."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections import Counter

from ocsscale.engine.client import call, request

from .conftest import Backends, EngineProc, Net, basic_farm, connect, wait_for


def test_admin_api_answers_while_a_worker_is_stalled(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    for i in range(2):
        backends.open(net.servers[i], 16951, f"fe{i + 1}")
        backends.open(net.servers[i], 16952, f"fe{i + 1}")
    farm = basic_farm(net, [16951], [1, 1], workers=2, health={"ports": [16952]})
    engine = engine_factory(farm)
    stalled = engine.status()["worker_pids"][0]
    os.kill(stalled, signal.SIGSTOP)
    try:
        # Enough server-state pushes to fill a pipe to the stalled worker many times
        # over: the master must queue them, not block on them.
        for _ in range(400):
            call(engine.socket, "POST", "/servers/fe1/drain", timeout=10)
            call(engine.socket, "POST", "/servers/fe1/ready", timeout=10)
        status = call(engine.socket, "GET", "/status", timeout=10)
        # Worker 0 did not answer: its last figures are shown and flagged as stale.
        assert "0" in status["stale_workers"]
        code, metrics = request(engine.socket, "GET", "/metrics", timeout=10)
        assert code == 200 and b"ocsscale_lb_server_up" in metrics
        # The master's own loop runs: health checks go on.
        ok = status["check_results"]["fe1:ok"]
        wait_for(lambda: engine.status()["check_results"]["fe1:ok"] > ok, 10, "more check rounds")
    finally:
        os.kill(stalled, signal.SIGCONT)
    wait_for(lambda: engine.status()["stale_workers"] == {}, 10, "the worker to answer again")
    # It caught up with every queued change: both servers take connections again.
    names = Counter(connect(net.vip, 16951)[1] for _ in range(20))
    assert set(names) == {"fe1", "fe2"}
    assert engine.proc.poll() is None


class _StallingServer:
    """Accepts, then stalls the engine for longer than its connect timeout before
    greeting: by the kernel's clock the server answered at once."""

    def __init__(self, address: str, port: int, stall: float) -> None:
        self.listener = socket.create_server((address, port))
        self.listener.settimeout(0.1)
        self.stall = stall
        self.engine_pid = 0
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            os.kill(self.engine_pid, signal.SIGSTOP)  # before it sees its connect finish
            time.sleep(self.stall)
            os.kill(self.engine_pid, signal.SIGCONT)
            conn.sendall(b"fe1\n")
            conn.close()

    def close(self) -> None:
        self.stopped = True
        self.thread.join(10)
        self.listener.close()


def test_engine_late_to_notice_a_connect_does_not_close_the_client(
    net: Net, engine_factory: type[EngineProc]
) -> None:
    server = _StallingServer(net.servers[0], 16961, stall=1.0)
    try:
        farm = basic_farm(net, [16961], [1], timeouts={"idle": 60, "connect": 0.3})
        engine = engine_factory(farm)
        server.engine_pid = engine.proc.pid
        for _ in range(5):
            sock, name = connect(net.vip, 16961, timeout=10)
            assert name == "fe1"
            sock.close()
        assert engine.events("connect-failed") == []
    finally:
        server.close()


def test_connect_timeout_closes_the_client_and_says_so(
    net: Net, engine_factory: type[EngineProc]
) -> None:
    # A server whose listen queue is full drops SYNs: a real connect timeout.
    hole = socket.socket()
    hole.bind((net.servers[0], 16971))
    hole.listen(0)
    plug = socket.create_connection((net.servers[0], 16971), timeout=5)
    try:
        farm = basic_farm(net, [16971], [1], timeouts={"idle": 60, "connect": 0.3})
        engine = engine_factory(farm)
        clients = [socket.create_connection((net.vip, 16971), timeout=5) for _ in range(3)]
        for client in clients:
            assert client.recv(1) == b""  # closed by the engine
            client.close()

        def reported() -> int:  # a burst is one event, then one for the rest of it
            evs = engine.events("connect-failed")
            return sum(e["folded"] + (0 if "last second" in e["reason"] else 1) for e in evs)

        wait_for(lambda: reported() == 3, 5, "all three closures to be reported")
        event = engine.events("connect-failed")[0]
        assert "timed out after 0.3s" in event["reason"]
        assert event["reason"].endswith("client closed")
    finally:
        plug.close()
        hole.close()
