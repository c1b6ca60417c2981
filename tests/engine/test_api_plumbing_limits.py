"""`ocsscale lb api` (the real entry point, in a child process) against admin sockets
that misbehave: an endless answer is cut at MAX_ANSWER, an error body that is not a
JSON object is an error line, and a busy socket (a full accept queue, or one that
nothing listens on yet) is waited for, within BUSY_WAIT, then refused clearly.

The hostile sockets are real listening Unix sockets speaking HTTP, standing for
something that is not the engine; the busy engine is the real one."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsscale.engine.client import BUSY_WAIT, MAX_ANSWER, AdminClientError, call

from .conftest import Backends, EngineProc, Net, basic_farm

HANG_GUARD = 60  # a hang guard only: every case ends within a few seconds


def _api(sock: str | Path, target: str = "/status") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocsscale", "lb", "api", "GET", target, "--socket", str(sock)],
        capture_output=True, text=True, timeout=HANG_GUARD, check=False,
    )  # fmt: skip


class _Hostile:
    """A Unix socket that reads one request head and answers `answer`, then (with
    `endless`) writes without end until the client goes; counts what it sent."""

    def __init__(self, path: Path, answer: bytes, endless: bool = False) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(8)
        self.answer = answer
        self.endless = endless
        self.sent = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(HANG_GUARD)
            head = b""
            while b"\r\n\r\n" not in head and (data := conn.recv(4096)):
                head += data
            try:
                conn.sendall(self.answer)
                self.sent += len(self.answer)
                chunk = b"[" * 65536
                while self.endless:
                    self.sent += conn.send(chunk)
            except OSError:  # the client closed: it read no more
                return

    def close(self) -> None:
        self.listener.close()
        self.thread.join(HANG_GUARD)


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "admin.sock"


def test_an_endless_answer_is_cut_and_not_read_further(sock_path: Path) -> None:
    hostile = _Hostile(sock_path, b"HTTP/1.1 200 OK\r\n\r\n", endless=True)
    try:
        done = _api(sock_path)
    finally:
        hostile.close()
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "gave an answer larger than 8 MiB: not the engine's" in done.stderr
    assert done.stdout == ""
    # It stopped reading at the limit: what was sent beyond it is what the kernel's
    # socket buffers took before the client closed.
    assert MAX_ANSWER < hostile.sent < MAX_ANSWER + 4 * 1024 * 1024, hostile.sent


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"HTTP/1.1 500 Oops\r\n\r\n[1, 2]", "answered HTTP 500"),
        (b'HTTP/1.1 404 Not Found\r\n\r\n"no"', "answered HTTP 404"),
        (b'HTTP/1.1 409 Conflict\r\n\r\n{"error": 7}', "answered HTTP 409"),
        (b"HTTP/1.1 200 OK\r\n\r\n[1, 2]", "answered JSON that is not an object"),
        (b"HTTP/1.1 200 OK\r\n\r\nnull", "answered JSON that is not an object"),
        (b"HTTP/1.1 200 OK\r\n\r\n" + b"[" * 200_000 + b"]" * 200_000, "answered non-JSON"),
        (b'HTTP/1.1 400 Bad\r\n\r\n{"error": "bad \\u001b[2J thing"}', "error: bad  [2J thing"),
        (b"garbage", "gave a malformed answer"),
    ],
    ids=["list-500", "string-404", "number-409", "list-200", "null-200", "deep", "escape", "junk"],
)
def test_answers_that_are_not_the_engines_are_one_error_line(
    sock_path: Path, answer: bytes, expected: str
) -> None:
    hostile = _Hostile(sock_path, answer)
    try:
        done = _api(sock_path)
    finally:
        hostile.close()
    assert done.returncode == 1, done.stderr
    assert expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "\x1b" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stdout == ""


def _fill_backlog(path: str) -> list[socket.socket]:
    """Connections that are never sent a request, until the socket's accept queue
    is full (a connect gets EAGAIN). Bounded: an engine never needs more than 200."""
    held: list[socket.socket] = []
    for _ in range(200):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
        except BlockingIOError:
            s.close()
            return held
        held.append(s)
    raise AssertionError("the accept queue never filled")


def _assert_busy(path: str) -> None:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    with probe, pytest.raises(BlockingIOError):
        probe.connect(path)


def test_lb_api_waits_while_the_engines_admin_queue_is_full(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    backends.open(net.servers[0], 16871, "fe1")
    engine = engine_factory(basic_farm(net, [16871], [1]))
    hold = 1.5
    held = _fill_backlog(engine.socket)
    try:
        _assert_busy(engine.socket)
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-m", "ocsscale", "lb", "api", "GET", "/status", "-s", engine.socket],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(hold)
    finally:
        for s in held:  # the engine reads their EOF, answers 400, takes the next
            s.close()
    out, err = child.communicate(timeout=HANG_GUARD)
    waited = time.monotonic() - started
    assert child.returncode == 0, err
    assert json.loads(out)["servers"][0]["name"] == "fe1"
    assert hold <= waited < hold + BUSY_WAIT, waited
    assert "Traceback" not in engine.log


@pytest.fixture
def busy_socket(sock_path: Path) -> Iterator[tuple[socket.socket, list[socket.socket]]]:
    """A listening socket that never accepts, its queue full."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_path))
    listener.listen(0)
    held = _fill_backlog(str(sock_path))
    _assert_busy(str(sock_path))
    yield listener, held
    for s in held:
        s.close()
    listener.close()


def test_a_socket_that_stays_busy_is_refused_after_the_wait(
    sock_path: Path, busy_socket: object
) -> None:
    started = time.monotonic()
    done = _api(sock_path)
    waited = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert f"admin socket {sock_path} is busy: the engine did not take the connection" in (
        done.stderr
    )
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert BUSY_WAIT - 1 < waited < BUSY_WAIT + 5, waited  # bounded: no hang


def test_a_socket_nothing_listens_on_yet_is_waited_for(sock_path: Path) -> None:
    """An engine between bind and listen refuses connections: the client tries
    again, and gets its answer once the socket listens."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_path))  # bound, not listening: connect() is refused
    try:
        with pytest.raises(AdminClientError, match="nothing accepts connections"):
            call(str(sock_path), "GET", "/status", timeout=0.5)  # the wait is bounded too

        def serve_later() -> None:
            time.sleep(0.8)
            listener.listen(1)
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b'HTTP/1.1 200 OK\r\n\r\n{"farm": "late"}')

        server = threading.Thread(target=serve_later, daemon=True)
        server.start()
        started = time.monotonic()
        done = _api(sock_path)
        server.join(HANG_GUARD)
    finally:
        listener.close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"farm": "late"}
    assert time.monotonic() - started >= 0.8
