"""The admin API under bad requests: a body that never comes is cut after
REQUEST_TIMEOUT, malformed numbers answer 400, and nothing ends in a traceback."""

from __future__ import annotations

import socket

import pytest

from ocsscale.engine.admin import REQUEST_TIMEOUT

from .conftest import Backends, EngineProc, Net, basic_farm


def _raw(engine: EngineProc, request: bytes, timeout: float = 10.0) -> bytes:
    """Send `request` as is and read the answer until the engine closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(engine.socket)
        sock.sendall(request)
        answer = b""
        while data := sock.recv(65536):
            answer += data
    return answer


@pytest.fixture
def engine(net: Net, backends: Backends, engine_factory: type[EngineProc]) -> EngineProc:
    backends.open(net.servers[0], 16401, "fe1")
    return engine_factory(basic_farm(net, [16401], [1]))


@pytest.mark.parametrize(
    "request_head",
    [
        b"POST /reload HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST /reload HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /reload HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET /events?since=abc HTTP/1.1\r\n\r\n",
        b"GET /events?since=" + b"9" * 5000 + b" HTTP/1.1\r\n\r\n",
        b"GET http://[x/status HTTP/1.1\r\n\r\n",
        b"NONSENSE\r\n\r\n",
    ],
)
def test_bad_requests_answer_400(engine: EngineProc, request_head: bytes) -> None:
    answer = _raw(engine, request_head)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b'"error"' in answer
    assert "Traceback" not in engine.log and "admin request failed" not in engine.log


@pytest.mark.parametrize(
    "target",
    [
        b"//status//",
        b"/status/",
        b"//status",
        b"/./status",
        b"/events/../status",
        b"http://engine/status",
        b"/st%61tus",
        b"*",
    ],
)
def test_a_path_has_one_spelling(engine: EngineProc, target: bytes) -> None:
    """Non-canonical paths answer 400 at once: not read as the endpoint they might mean."""
    answer = _raw(engine, b"GET " + target + b" HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"malformed request target: an admin API path such as /status" in answer
    assert "Traceback" not in engine.log and "admin request failed" not in engine.log


def test_a_change_under_another_spelling_changes_nothing(engine: EngineProc) -> None:
    # urlsplit() read `//x/servers/fe1/drain` as host x, path /servers/fe1/drain
    for target in (b"//x/servers/fe1/drain", b"/servers/fe1/drain/", b"/servers//fe1/drain"):
        answer = _raw(engine, b"POST " + target + b" HTTP/1.1\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert engine.server("fe1")["admin"] == "ready"
    assert engine.events("admin-state") == []
    assert _raw(engine, b"GET /status HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200 ")


def test_a_body_that_never_comes_is_cut(engine: EngineProc) -> None:
    stalled = []
    for _ in range(3):  # declared bodies that never come
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(REQUEST_TIMEOUT * 4)
        sock.connect(engine.socket)
        sock.sendall(b"POST /reload HTTP/1.1\r\nContent-Length: 100\r\n\r\npart")
        stalled.append(sock)
    try:
        assert engine.status()["farm"] == "test"  # others are served meanwhile
        for sock in stalled:
            answer = b""
            while data := sock.recv(65536):  # the engine closes: recv ends
                answer += data
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    finally:
        for sock in stalled:
            sock.close()
    assert engine.events("reloaded") == []  # nothing acted on a request never complete
    assert "Traceback" not in engine.log
