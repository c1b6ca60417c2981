"""The server-side connect (snat.connect_socket) on both event loops, and the SNAT
pool's per-family candidates, which are computed when addresses are set."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from ocsscale.engine.snat import SnatPool, connect_socket, make_upstream_socket

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
