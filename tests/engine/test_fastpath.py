"""The per-connection helpers, on both event loops: Deadlines (the half-close
timeout of every session on one loop timer), drive (a coroutine run without a
Task) and the socket classes that answer family/type without an enum."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from ocsscale.engine.deadlines import CLOCK_SLACK, Deadlines
from ocsscale.engine.fastpath import drive, tcp_socket, wrap_accepted

LOOPS: dict[str, Callable[[Coroutine[Any, Any, Any]], Any]] = {
    "asyncio": asyncio.run,
    "uvloop": uvloop.run,
}


async def _deadlines_in_order() -> tuple[list[str], list[tuple[str, float, float]]]:
    loop = asyncio.get_running_loop()
    fired: list[str] = []
    late: list[tuple[str, float, float]] = []  # (key, due, loop time when it fired)
    due: dict[str, float] = {}

    def expire(key: Any) -> None:
        fired.append(key)
        late.append((key, due[key], loop.time()))

    d = Deadlines(loop, expire)
    for key, delay in (("a", 0.2), ("b", 0.2), ("cancelled", 0.2), ("short", 0.05)):
        due[key] = loop.time() + delay
        d.add(key, delay)
    d.add("a", 5.0)  # already waiting: a second add changes nothing
    d.cancel("cancelled")
    d.cancel("never added")
    assert len(d) == 3
    while len(d):
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # nothing more fires afterwards
    d.close()
    return fired, late


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_deadlines_fire_once_in_deadline_order_and_not_when_cancelled(loop_name: str) -> None:
    fired, late = LOOPS[loop_name](_deadlines_in_order())
    # "short" was added last but is due first (its own queue); a cancelled key never fires.
    assert fired == ["short", "a", "b"]
    for key, due, at in late:
        assert at >= due - CLOCK_SLACK, (key, due, at)  # never before its deadline


async def _expire_ends_a_key_added_again() -> list[str]:
    loop = asyncio.get_running_loop()
    fired: list[str] = []
    d = Deadlines(loop, fired.append)
    d.add("k", 0.05)
    while not fired:
        await asyncio.sleep(0.01)
    d.add("k", 0.05)  # a key that fired may wait again
    while len(fired) < 2:
        await asyncio.sleep(0.01)
    d.close()
    return fired


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_deadlines_take_a_fired_key_again(loop_name: str) -> None:
    assert LOOPS[loop_name](_expire_ends_a_key_added_again()) == ["k", "k"]


async def _drive_cases() -> tuple[list[str], list[BaseException]]:
    loop = asyncio.get_running_loop()
    steps: list[str] = []
    errors: list[BaseException] = []

    async def waits(fut: asyncio.Future[int]) -> None:
        steps.append("before")
        await asyncio.sleep(0)  # a bare yield
        value = await fut
        steps.append(f"got {value}")

    async def fails() -> None:
        await asyncio.sleep(0)
        raise OSError("gone")

    fut: asyncio.Future[int] = loop.create_future()
    drive(loop, waits(fut), errors.append)
    drive(loop, fails(), errors.append)
    assert steps == ["before"]  # it ran up to its first wait at once
    loop.call_later(0.01, fut.set_result, 7)
    for _ in range(100):
        if len(steps) == 2 and errors:
            break
        await asyncio.sleep(0.01)
    return steps, errors


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_drive_runs_a_coroutine_to_its_end_and_hands_over_its_error(loop_name: str) -> None:
    steps, errors = LOOPS[loop_name](_drive_cases())
    assert steps == ["before", "got 7"]
    assert len(errors) == 1 and isinstance(errors[0], OSError) and str(errors[0]) == "gone"


def test_socket_classes_answer_family_and_type_as_the_kernel_has_them() -> None:
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            listener = socket.create_server((host, 0), family=family)
        except OSError:
            continue  # no IPv6 here
        with listener:
            sock = tcp_socket(family)
            assert isinstance(sock, socket.socket)
            assert sock.gettimeout() == 0.0  # non-blocking from the start
            assert sock.connect_ex(listener.getsockname()[:2]) in (0, errno.EINPROGRESS)
            fd, _ = listener._accept()  # type: ignore[attr-defined]
            accepted = wrap_accepted(family, fd)
            for s in (sock, accepted):
                assert s.family == family == s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
                assert s.type == socket.SOCK_STREAM
                assert s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
                s.close()
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        unix = wrap_accepted(socket.AF_UNIX, a.detach())
        assert unix.family == socket.AF_UNIX
        unix.close()
