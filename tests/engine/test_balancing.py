"""Weighted least connections through a real engine, counted across ports."""

from __future__ import annotations

from collections import Counter

import pytest

from .conftest import Backends, EngineProc, Net, basic_farm, connect


def _ideal(total: int, weights: list[int]) -> list[float]:
    return [total * w / sum(weights) for w in weights]


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_held_connections_follow_weights(
    net: Net, backends: Backends, engine_factory: type[EngineProc], loop: str
) -> None:
    weights = [1, 2, 3]
    for i in range(3):
        backends.open(net.servers[i], 16001, f"fe{i + 1}")
    env = {"OCSSCALE_ENGINE_LOOP": "asyncio"} if loop == "asyncio" else {}
    engine = engine_factory(basic_farm(net, [16001], weights), env)
    assert engine.status()["loop"] == loop
    held = [connect(net.vip, 16001) for _ in range(24)]
    counts = Counter(name for _, name in held)
    for i, ideal in enumerate(_ideal(24, weights)):
        assert abs(counts[f"fe{i + 1}"] - ideal) <= 1, counts
    # The engine's own counters agree with what the clients saw.
    for s in engine.status()["servers"]:
        assert s["active"] == counts[s["name"]]
    # Data flows both ways through the full proxy.
    sock, _ = held[0]
    sock.sendall(b"ping")
    assert sock.recv(4) == b"ping"
    for sock, _ in held:
        sock.close()


def test_sequential_connections_rotate_by_weight(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    weights = [1, 3]
    for i in range(2):
        backends.open(net.servers[i], 16002, f"fe{i + 1}")
    engine = engine_factory(basic_farm(net, [16002], weights))
    seen = []
    for _ in range(20):
        sock, name = connect(net.vip, 16002)
        seen.append(name)
        sock.close()
        # Wait until the engine has counted the close, so every pick sees idle servers.
        from .conftest import wait_for

        wait_for(lambda: engine.status()["active"] == 0, 5, "close to be counted")
    counts = Counter(seen)
    assert abs(counts["fe1"] - 5) <= 1 and abs(counts["fe2"] - 15) <= 1, counts


def test_connections_counted_per_server_across_ports(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    for i in range(2):
        backends.open(net.servers[i], 16003, f"fe{i + 1}")
        backends.open(net.servers[i], 16004, f"fe{i + 1}")
    farm = basic_farm(net, [16003, {"port": 16005, "backend_port": 16004}], [1, 1])
    engine = engine_factory(farm)
    # Two connections on one port, then two on the other: least connections across
    # the farm means each server ends with two, one per port.
    held = [connect(net.vip, p) for p in (16003, 16003, 16005, 16005)]
    by_server = Counter(name for _, name in held)
    assert by_server == {"fe1": 2, "fe2": 2}
    for s in engine.status()["servers"]:
        assert s["active"] == 2
        assert s["per_port"] == {"16003": 1, "16005": 1}
    for sock, _ in held:
        sock.close()


def test_weight_zero_gets_no_new_connections(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    for i in range(2):
        backends.open(net.servers[i], 16006, f"fe{i + 1}")
    engine_factory(basic_farm(net, [16006], [0, 1]))
    held = [connect(net.vip, 16006) for _ in range(5)]
    assert {name for _, name in held} == {"fe2"}
    for sock, _ in held:
        sock.close()
