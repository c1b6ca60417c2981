"""routing.enable behind an appliance with Windows front ends: each FE's default
gateway read over WinRM (WMI's DefaultIPGateway, the default_gateways script run by
the stand-in, which answers its namespace's real routing table) and its connection to
the directory server, before and after the operator's "done"."""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Iterator, Mapping, Sequence
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from machine_route import machine_gateway
from windows_pool import WindowsPool, windows_pool

from ocsscale.actions.base import registry
from ocsscale.errors import CheckFailed

pytestmark = pytest.mark.timeout(120)


@pytest.fixture()
def pool(tmp_path: Path) -> Iterator[WindowsPool]:
    with windows_pool(tmp_path) as made:
        yield made


class Operator:
    """Opens the directory's port ("routing on") when told the checklist's data."""

    def __init__(self, listener: socket.socket, port: int) -> None:
        self.listener, self.port = listener, port
        self.told: list[Mapping[str, Any] | None] = []

    def tell(self, title: str, lines: Sequence[str], data: Mapping[str, Any] | None = None) -> None:
        self.told.append(data)

    def ask(self, question: str, choices: Sequence[str], default: str | None = None) -> str:
        assert self.told[-1] is not None and self.told[-1]["kind"] == "routing"
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(8)
        return "done"


def test_windows_front_ends_prove_routing_through_the_appliance(pool: WindowsPool) -> None:
    gateway = machine_gateway()
    if gateway is None:
        pytest.skip("this machine has no IPv4 default gateway for the stand-ins to read")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    listener = socket.socket()
    ctx, hosts = pool.context()
    directory = ctx.pool.directory.model_copy(
        update={"address": IPv4Address("127.0.0.1"), "port": port}
    )
    ctx = dataclasses.replace(
        ctx,
        pool=ctx.pool.model_copy(update={"directory": directory}),
        operator=Operator(listener, port),
    )
    try:
        with hosts:
            action = registry()["routing.enable"](
                ctx, {"address": "127.0.0.40/24", "backend_address": f"{gateway}/24"}
            )
            assert action.targets() == ["fe01", "fe02"]
            current = action.read()
            for fe in ("fe01", "fe02"):
                seen = current["front_ends"][fe]
                assert seen["reaches_directory"] is False and seen["gateways"] == [gateway]
            assert action.diff(current)
            undo = json.loads(json.dumps(action.undo_record(current)))
            evidence = action.verify(action.apply(current))
            assert all(evidence["front_ends"][fe]["reaches_directory"] for fe in ("fe01", "fe02"))

            # a gateway other than the LB's back-end address fails, naming what was read
            wrong = registry()["routing.enable"](
                ctx, {"address": "127.0.0.40/24", "backend_address": "198.18.2.1/24"}
            )
            with pytest.raises(CheckFailed) as failed:
                wrong.verify({})
            assert f"fe01's default gateway is {gateway}, expected 198.18.2.1" in (
                failed.value.message
            )
            assert undo["reached_before"] == []
    finally:
        listener.close()
