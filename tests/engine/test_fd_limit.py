"""Out of file descriptors (RLIMIT_NOFILE reached): no spinning, no crash, one event,
and clients are served again as soon as descriptors are free."""

from __future__ import annotations

import os
import resource
import socket
import time
from pathlib import Path

import pytest

from .conftest import Backends, EngineProc, Net, basic_farm, connect, wait_for
from .test_client_speaks_first import LOOPS

FD_LIMIT = 40


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("loop", LOOPS)
def test_engine_out_of_descriptors_pauses_instead_of_spinning(
    loop: str, net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    backends.open(net.servers[0], 16981, "fe1")
    engine = engine_factory(
        basic_farm(net, [16981], [1]), env={"OCSSCALE_ENGINE_LOOP": loop}, preexec=_low_fd_limit
    )
    pid = engine.proc.pid
    clients = []
    for _ in range(FD_LIMIT):  # each session costs the engine two descriptors
        s = socket.socket()
        s.settimeout(5)
        s.connect((net.vip, 16981))  # the kernel queues what the engine cannot take
        clients.append(s)
    time.sleep(1.0)
    before = _cpu_seconds(pid)
    time.sleep(2.0)
    # A spinning accept loop burns the whole 2 s; a paused one next to nothing.
    assert _cpu_seconds(pid) - before < 1.0
    assert engine.proc.poll() is None
    for s in clients:
        s.close()
    # The admin socket needs a descriptor too: ask once some are free again.
    wait_for(lambda: engine.status()["active"] == 0, 10, "sessions to end")
    if loop == "asyncio":
        # One per episode; a session closing for want of descriptors ends one, so a
        # few may come, each coalesced to at most one a second.
        paused = engine.events("accept-paused")
        assert 1 <= len(paused) <= 10
        assert all("Too many open files" in e["reason"] for e in paused)
    assert "Traceback" not in engine.log
    sock, name = connect(net.vip, 16981, timeout=10)  # served again
    assert name == "fe1"
    sock.close()
