"""`workers: 2`: SO_REUSEPORT workers fed with health and admin state by the master."""

from __future__ import annotations

from collections import Counter

from .conftest import Backends, EngineProc, Net, basic_farm, connect, wait_for


def test_workers_share_state_and_report_together(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    for i in range(2):
        backends.open(net.servers[i], 16701, f"fe{i + 1}")
        backends.open(net.servers[i], 16702, f"fe{i + 1}")
    farm = basic_farm(net, [16701], [1, 1], workers=2, health={"ports": [16702]})
    engine = engine_factory(farm)
    status = engine.status()
    assert len(status["worker_pids"]) == 2

    held = [connect(net.vip, 16701) for _ in range(20)]
    status = engine.status()  # counts summed over both workers
    assert status["active"] == 20
    counts = Counter(name for _, name in held)
    assert {s["name"]: s["active"] for s in status["servers"]} == dict(counts)
    for sock, _ in held:
        sock.close()
    wait_for(lambda: engine.status()["active"] == 0, 10, "sessions to close")

    # Admin state set on the master reaches every worker.
    engine.api("POST", "/servers/fe1/drain")
    assert {connect(net.vip, 16701)[1] for _ in range(10)} == {"fe2"}
    engine.api("POST", "/servers/fe1/ready")

    # Health state found by the master reaches every worker.
    backends.close(net.servers[1], 16702)
    wait_for(lambda: engine.server("fe2")["state"] == "down", 10, "fe2 down")
    assert {connect(net.vip, 16701)[1] for _ in range(10)} == {"fe1"}
    assert engine.events("server-down")[-1]["server"] == "fe2"
