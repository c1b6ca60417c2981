"""Out of file descriptors (RLIMIT_NOFILE reached): no spinning, no crash, one event,
and clients are served again as soon as descriptors are free.

The default maxconn keeps sessions from ever getting there (test_maxconn.py); a
maxconn set above what the descriptors allow is the operator's choice, and then
the engine must still cope."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
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
    backends.open(net.servers[0], 16982, "fe1")
    farm = basic_farm(net, [16981], [1], maxconn=1000, health={"ports": [16982]})
    engine = engine_factory(farm, env={"OCSSCALE_ENGINE_LOOP": loop}, preexec=_low_fd_limit)
    assert "may run out of descriptors" in engine.status()["maxconn"]["source"]
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
    # One per episode (both loops accept through the engine's own acceptor); a
    # session closing for want of descriptors ends one, so a few may come, each
    # coalesced to at most one a second.
    paused = engine.events("accept-paused")
    assert 1 <= len(paused) <= 10
    assert all("Too many open files" in e["reason"] for e in paused)
    # The engine's own shortage is not the server's fault (see the test below).
    assert engine.events("server-down") == []
    for event in engine.events("connect-failed"):  # a session that found no descriptor
        assert "the engine's own shortage" in event["reason"], event
    assert "Traceback" not in engine.log
    # Served again. The kernel may still hold closed clients in the listen queue:
    # the engine accepts each, and a session that meets the shortage once more is
    # closed, so the proof is a greeting within the deadline, not the first try.
    greeted: list[str] = []

    def served() -> bool:
        try:
            sock, name = connect(net.vip, 16981, timeout=5)
        except OSError:
            return False
        sock.close()
        greeted.append(name)
        return True

    wait_for(served, 10, "a session served after the shortage")
    assert greeted == ["fe1"]


# Runs in its own process: it takes every descriptor the process may have.
_CHECKS_WITHOUT_DESCRIPTORS = """
import asyncio, json, os, resource, sys
from ocsscale.engine.balancer import ServerRuntime
from ocsscale.engine.farm import Health
from ocsscale.engine.health import HealthMonitor

async def main():
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fe = ServerRuntime("fe1", "127.0.0.1", 1, "ready")
    changes, skips = [], []
    monitor = HealthMonitor(
        Health(ports=[port], inter=0.05, fastinter=0.05, fall=1, timeout=5),
        lambda _a: None,
        lambda s, up, why: (changes.append((up, why)), setattr(s, "healthy", up)),
        lambda s, why: skips.append(why),
    )
    monitor.watch(fe)
    await asyncio.sleep(0.3)
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
    hog = []
    try:
        while True:
            hog.append(os.dup(0))
    except OSError:
        pass
    await asyncio.sleep(0.5)  # several rounds without a descriptor to check with
    for fd in hog:
        os.close(fd)
    ok_before = monitor.results.get(("fe1", "ok"), 0)
    for _ in range(100):  # up to 5 s for a good round with descriptors back
        await asyncio.sleep(0.05)
        if monitor.results.get(("fe1", "ok"), 0) > ok_before:
            break
    monitor.stop()
    print(json.dumps({"changes": changes, "skips": skips, "results": {
        f"{n}:{r}": c for (n, r), c in monitor.results.items()},
        "ok_after": monitor.results.get(("fe1", "ok"), 0) - ok_before}))

asyncio.run(main())
"""


def test_checks_without_descriptors_are_not_a_server_fault() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHECKS_WITHOUT_DESCRIPTORS],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["changes"] == [], result  # never down
    assert result["skips"] and all("Too many open files" in r for r in result["skips"])
    assert result["results"]["fe1:skipped"] == len(result["skips"])
    assert "fe1:fail" not in result["results"], result
    assert result["ok_after"] >= 1  # checks pass again once descriptors are back
