"""Real engines (subprocesses) and real backends (asyncio in a thread) on 127.0.0.0/8."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from ocsscale.engine.client import AdminClientError, call

REPO = Path(__file__).resolve().parents[2]
_octets = itertools.count(random.randrange(1, 120))


class Net:
    """Loopback addresses for one test, distinct from other tests running at once."""

    def __init__(self) -> None:
        k = next(_octets) % 250 + 1
        self.vip = f"127.0.10.{k}"
        self.servers = [f"127.0.{21 + i}.{k}" for i in range(4)]
        self.snat = [f"127.0.{30 + i}.{k}" for i in range(2)]


class Backends:
    """Listeners that greet with their server name, then echo (or flood)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.listeners: dict[tuple[str, int], asyncio.Server] = {}
        self.flood_sent: dict[tuple[str, int], int] = {}

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def open(
        self, address: str, port: int, name: str, flood: bool = False, hold: bool = False
    ) -> None:
        """Listen as server `name`; `flood` writes without end, `hold` never closes."""

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                w.write(name.encode() + b"\n")
                if flood:
                    chunk = b"x" * 65536
                    key = (address, port)
                    while True:
                        w.write(chunk)
                        await w.drain()
                        self.flood_sent[key] = self.flood_sent.get(key, 0) + len(chunk)
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
                if hold:  # a server that ignores the client's FIN
                    await asyncio.sleep(3600)
                w.close()
            except (ConnectionError, OSError):
                w.close()

        async def start() -> asyncio.Server:
            return await asyncio.start_server(handle, address, port, reuse_address=True)

        self.listeners[(address, port)] = self._run(start())

    def close(self, address: str, port: int) -> None:
        srv = self.listeners.pop((address, port))
        self.loop.call_soon_threadsafe(srv.close)

    def stop(self) -> None:
        for key in list(self.listeners):
            self.close(*key)

        async def cancel_handlers() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self._run(cancel_handlers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class EngineProc:
    """`python -m ocsscale.engine serve` on a farm file written from a dict."""

    def __init__(
        self,
        tmp: Path,
        farm: dict[str, Any],
        env: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None,
    ):
        self.tmp = tmp
        self.farm_path = tmp / "farm.yaml"
        self.socket = str(tmp / "admin.sock")
        self.log_path = tmp / "engine.log"
        farm.setdefault("admin", {"socket": self.socket})
        self.write(farm)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ocsscale.engine", "serve", "--farm", str(self.farm_path)],
            cwd=REPO,
            stderr=self.log_path.open("wb"),
            env={**os.environ, **(env or {})},
            preexec_fn=preexec,
        )
        wait_for(self._answers, 20, f"engine did not start; log:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def write(self, farm: dict[str, Any]) -> None:
        self.farm = farm
        with self.farm_path.open("w") as f:
            YAML().dump(farm, f)

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"engine exited {self.proc.returncode}:\n{self.log}")
        try:
            self.status()
            return True
        except AdminClientError:
            return False

    def status(self) -> dict[str, Any]:
        return call(self.socket, "GET", "/status")

    def server(self, name: str) -> dict[str, Any]:
        return next(s for s in self.status()["servers"] if s["name"] == name)

    def api(self, method: str, target: str) -> Any:
        return call(self.socket, method, target)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        evs = self.api("GET", "/events")["events"]
        return [e for e in evs if kind is None or e["kind"] == kind]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # soft stop: sessions may finish
            try:
                self.proc.wait(0.3)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)  # the second: no more grace
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def connect(address: str, port: int, timeout: float = 5.0) -> tuple[socket.socket, str]:
    """Connect through the engine and return the socket and the greeting server name."""
    s = socket.create_connection((address, port), timeout=timeout)
    name = b""
    while not name.endswith(b"\n"):
        data = s.recv(1)
        if not data:
            s.close()
            raise ConnectionError("closed before greeting")
        name += data
    return s, name.decode().strip()


def basic_farm(net: Net, ports: list[Any], weights: list[int], **extra: Any) -> dict[str, Any]:
    farm: dict[str, Any] = {
        "farm": "test",
        "vip": [net.vip],
        "ports": ports,
        "servers": [
            {"name": f"fe{i + 1}", "address": net.servers[i], "weight": w}
            for i, w in enumerate(weights)
        ],
        "health": {"ports": []},
        "snat": {"addresses": [net.snat[0]]},
    }
    farm.update(extra)
    return farm


@pytest.fixture
def net() -> Net:
    return Net()


@pytest.fixture
def backends() -> Iterator[Backends]:
    b = Backends()
    yield b
    b.stop()


@pytest.fixture
def engine_factory(tmp_path: Path) -> Iterator[Callable[..., EngineProc]]:
    started: list[EngineProc] = []

    def make(
        farm: dict[str, Any],
        env: dict[str, str] | None = None,
        preexec: Callable[[], None] | None = None,
    ) -> EngineProc:
        sub = tmp_path / f"e{len(started)}"
        sub.mkdir()
        e = EngineProc(sub, farm, env, preexec)
        started.append(e)
        return e

    yield make
    for e in started:
        e.stop()
