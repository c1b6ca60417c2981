"""Reload (SIGHUP and admin API): ports and servers change, nothing is refused or dropped."""

from __future__ import annotations

import signal
import threading

import pytest

from ocsscale.engine.client import AdminClientError

from .conftest import Backends, EngineProc, Net, basic_farm, connect, wait_for


@pytest.mark.parametrize("workers", [1, 2])
def test_reload_changes_ports_and_servers_without_refusals(
    net: Net, backends: Backends, engine_factory: type[EngineProc], workers: int
) -> None:
    for i in range(3):
        for port in (16401, 16402, 16403):
            backends.open(net.servers[i], port, f"fe{i + 1}")
    farm = basic_farm(net, [16401, 16402], [1, 1], workers=workers)
    engine = engine_factory(farm)
    established, first = connect(net.vip, 16402)
    engine.api("POST", "/servers/fe2/drain")  # a runtime state that must survive

    failures: list[str] = []
    successes = [0]
    stop = threading.Event()

    def hammer() -> None:  # new connections on a port every reload keeps
        while not stop.is_set():
            try:
                sock, _ = connect(net.vip, 16401)
                sock.close()
                successes[0] += 1
            except OSError as err:
                failures.append(repr(err))

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        for n in range(6):
            farm = dict(farm)
            if n % 2 == 0:  # add 16403 and fe3, drop 16402, change fe1's weight
                farm["ports"] = [16401, 16403]
                farm["servers"] = [
                    *farm["servers"][:2],
                    {"name": "fe3", "address": net.servers[2], "weight": 2},
                ]
            else:
                farm["ports"] = [16401, 16402]
                farm["servers"] = farm["servers"][:2]
            engine.write(farm)
            before = engine.status()["reloads"]
            if n % 3 == 0:
                engine.proc.send_signal(signal.SIGHUP)
                wait_for(lambda b=before: engine.status()["reloads"] > b, 10, "SIGHUP reload")
            else:
                engine.api("POST", "/reload")
    finally:
        stop.set()
        worker.join(10)
    assert failures == [] and successes[0] > 0

    # Last write (n=5) has ports 16401/16402 and servers fe1/fe2.
    ports = {x["port"] for x in engine.status()["listeners"]}
    assert ports == {16401, 16402}
    assert engine.server("fe2")["admin"] == "drain"  # survived six reloads
    established.sendall(b"still up")
    assert established.recv(8) == b"still up"

    farm["ports"] = [16401, 16403]
    engine.write(farm)
    engine.api("POST", "/reload")
    with pytest.raises(ConnectionRefusedError):
        connect(net.vip, 16402)
    sock, _ = connect(net.vip, 16403)
    sock.close()
    established.sendall(b"and now")  # its listener is gone, the session is not
    assert established.recv(7) == b"and now"
    assert first in ("fe1", "fe2")
    established.close()


def test_bad_reload_changes_nothing(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    backends.open(net.servers[0], 16410, "fe1")
    engine = engine_factory(basic_farm(net, [16410], [1]))
    engine.farm_path.write_text(engine.farm_path.read_text() + "bogus: 1\n")
    with pytest.raises(AdminClientError, match=r"farm.yaml:\d+:\d+: bogus: unknown key"):
        engine.api("POST", "/reload")
    assert engine.events("reload-failed")
    sock, name = connect(net.vip, 16410)
    assert name == "fe1"
    sock.close()
