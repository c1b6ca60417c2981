"""Multi-process mode (`workers: N`, N > 1).

Each worker process binds every listener itself with SO_REUSEPORT, so the kernel
spreads new connections over the workers, and runs its own data path and WLC
over its own connections. The master process owns the shared truth: it runs the
health checks, holds admin states, serves the admin API, and pushes every server
state change to the workers over a channel (channel.py: nothing on that path
blocks either event loop). Workers forward their events (SNAT
exhaustion, failed connects) and answer the master's requests (stats, reload,
session shutdown). If a worker dies the master stops with an error, so that a
supervisor (systemd) restarts the whole engine in a known state.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import signal
import socket
import time
from typing import Any

from .admin import AdminServer, ApiError
from .channel import Channel
from .events import log, setup_logging
from .farm import Farm
from .loader import FarmFileError, load_farm
from .loop import check_reloadable, install_signals, loop_factory, loop_name
from .metrics import render_metrics
from .server import Engine, EngineError

REQUEST_TIMEOUT = 30.0
# How long `status` and `/metrics` wait for the workers' figures. A worker that
# does not answer in time (busy with a burst of connections) is shown with its
# last figures and listed in `stale_workers`, so the admin API stays responsive.
STATS_WAIT = 1.0


# -- worker side -------------------------------------------------------------------
def worker_main(farm_data: dict[str, Any], sock: socket.socket, index: int) -> None:
    # The master handles signals for the whole engine; workers stop when told.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    setup_logging()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(_worker(Farm.model_validate(farm_data), sock, index))


async def _worker(farm: Farm, sock: socket.socket, index: int) -> None:
    channel = await Channel.open(sock)
    engine = Engine(farm, role="worker")
    engine.events.quiet = True
    # Events are coalesced at the source (at most one per key per second), and
    # dropped rather than queued without bound if the master stops reading.
    engine.events.forward = lambda e: channel.send({"op": "event", "event": e}, droppable=True)
    try:
        await engine.start()
    except EngineError as err:
        channel.send({"op": "error", "error": str(err)})
        await channel.writer.drain()
        return

    async def handle(msg: dict[str, Any]) -> None:
        op = msg["op"]
        reply: Any = None
        if op == "servers":
            for st in msg["servers"]:
                s = engine.balancer.servers.get(st["name"])
                if s is not None:
                    s.admin, s.healthy, s.check_reason = st["admin"], st["healthy"], st["check"]
            return
        if op == "stats":
            reply = engine.status()
        elif op == "shutdown":
            reply = engine.shutdown_sessions(msg["server"])
        elif op == "reload":
            try:
                reply = await engine.reload(Farm.model_validate(msg["farm"]))
            except EngineError as err:
                reply = {"error": str(err)}
        channel.send({"op": "reply", "id": msg["id"], "worker": index, "kind": op, "data": reply})

    # The master sends SIGTERM only to cut a soft stop short (a second signal).
    engine.loop.add_signal_handler(signal.SIGTERM, engine.hard_stop.set)
    channel.send({"op": "ready", "pid": os.getpid(), "loop": loop_name()})
    tasks: set[asyncio.Task[None]] = set()
    while (msg := await channel.recv()) is not None and msg["op"] != "stop":
        task = engine.loop.create_task(handle(msg))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    # Told to stop: a soft stop with the master's grace; the master gone: at once.
    await engine.stop(msg.get("grace", 0.0) if msg is not None else 0.0)
    channel.close()


# -- master side -------------------------------------------------------------------
class Master:
    """Admin API backend and supervisor for worker processes."""

    def __init__(self, farm: Farm, farm_path: str) -> None:
        self.engine = Engine(farm, role="master")
        self.farm_path = farm_path
        self.channels: list[Channel] = []
        self.procs: list[multiprocessing.process.BaseProcess] = []
        self.readers: list[asyncio.Task[None]] = []
        self.pending: dict[int, tuple[asyncio.Future[None], dict[int, Any], int]] = {}
        # The latest figures each worker sent (monotonic time, status), for `status`.
        self.last_stats: dict[int, tuple[float, dict[str, Any]]] = {}
        self.ids = itertools.count(1)
        self.ready: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.failed = asyncio.Event()
        self.stopping = False
        self._reload_lock = asyncio.Lock()
        self.engine.on_servers_changed.append(self.push_servers)

    async def start(self) -> None:
        farm = self.engine.farm
        ctx = multiprocessing.get_context("spawn")  # no fork from inside a running loop
        loop = self.engine.loop
        for i in range(farm.workers):
            parent, child = socket.socketpair()
            proc = ctx.Process(
                target=worker_main, args=(farm.model_dump(mode="json"), child, i), daemon=True
            )
            proc.start()
            child.close()
            channel = await Channel.open(parent)
            self.channels.append(channel)
            self.procs.append(proc)
            self.readers.append(loop.create_task(self._read(i, channel)))
            loop.add_reader(proc.sentinel, self._worker_exited, i)
        for _ in range(farm.workers):
            msg = await asyncio.wait_for(self.ready.get(), REQUEST_TIMEOUT)
            if msg["op"] == "error":
                raise EngineError(msg["error"])
        await self.engine.start()
        self.push_servers()

    async def _read(self, index: int, channel: Channel) -> None:
        # A worker that goes away ends this loop; its sentinel reports the exit.
        while (msg := await channel.recv()) is not None:
            op = msg["op"]
            if op in ("ready", "error"):
                self.ready.put_nowait(msg)
            elif op == "event":
                self.engine.events.add(msg["event"])
            elif op == "reply":
                if msg.get("kind") == "stats":
                    self.last_stats[index] = (time.monotonic(), msg["data"])
                waiting = self.pending.get(msg["id"])
                if waiting is not None:
                    fut, results, expected = waiting
                    results[index] = msg["data"]
                    if len(results) == expected and not fut.done():
                        fut.set_result(None)

    def _worker_exited(self, index: int) -> None:
        self.engine.loop.remove_reader(self.procs[index].sentinel)
        if not self.failed.is_set() and not self.stopping:
            self.procs[index].join(1)
            code = self.procs[index].exitcode
            self.engine.events.emit("worker-exited", f"worker {index} exited (code {code})")
            self.failed.set()

    def broadcast(self, msg: dict[str, Any]) -> None:
        for channel in self.channels:
            channel.send(msg)  # a dead worker's exit is reported through its sentinel

    async def ask(
        self, msg: dict[str, Any], timeout: float = REQUEST_TIMEOUT, partial: bool = False
    ) -> dict[int, Any]:
        """Every worker's answer by index; with `partial`, those that came in `timeout`."""
        rid = next(self.ids)
        fut: asyncio.Future[None] = self.engine.loop.create_future()
        results: dict[int, Any] = {}
        self.pending[rid] = (fut, results, len(self.channels))
        self.broadcast({**msg, "id": rid})
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            if not partial:
                missing = sorted(set(range(len(self.channels))) - set(results))
                raise EngineError(
                    f"worker(s) {missing} did not answer {msg['op']!r} within {timeout:g}s"
                ) from None
        finally:
            self.pending.pop(rid, None)
        return dict(results)

    def push_servers(self) -> None:
        states = [
            {"name": s.name, "admin": s.admin, "healthy": s.healthy, "check": s.check_reason}
            for s in self.engine.balancer.servers.values()
        ]
        self.broadcast({"op": "servers", "servers": states})

    async def stop(self, grace: float = 0.0) -> None:
        """Each worker soft-stops (Engine.stop) with `grace`; `hard_stop` cuts it short."""
        self.stopping = True
        self.broadcast({"op": "stop", "grace": grace})
        deadline = time.monotonic() + grace + 5
        for proc in self.procs:
            wait = max(0.1, deadline - time.monotonic())
            await asyncio.get_running_loop().run_in_executor(None, proc.join, wait)
            if proc.is_alive():
                proc.terminate()
        for task in self.readers:
            task.cancel()
        for channel in self.channels:
            channel.close()
        await self.engine.stop()

    def hard_stop(self) -> None:
        """A second stop signal: every worker resets its remaining sessions now."""
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: the worker's hard stop

    async def worker_stats(self) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
        """Each worker's figures, fresh when it answers within STATS_WAIT, else its
        last ones; the second value maps stale workers to the age of their figures."""
        fresh = await self.ask({"op": "stats"}, STATS_WAIT, partial=True)
        stats: list[dict[str, Any]] = []
        stale: dict[str, float | None] = {}
        now = time.monotonic()
        for i in range(len(self.channels)):
            if i in fresh:
                stats.append(fresh[i])
            elif i in self.last_stats:
                at, data = self.last_stats[i]
                stats.append(data)
                stale[str(i)] = round(now - at, 1)
            else:
                stale[str(i)] = None  # no figures from this worker yet
        return stats, stale

    # -- the admin API ---------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        out = self.engine.status()
        stats, stale = await self.worker_stats()
        by_name = {s["name"]: s for s in out["servers"]}
        for s in by_name.values():
            s["active"] = s["served"] = 0
            s["per_port"] = {}
        in_use: dict[str, int] = {}
        for w in stats:
            for ws in w["servers"]:
                s = by_name.get(ws["name"])
                if s is None:
                    continue
                s["active"] += ws["active"]
                s["served"] += ws["served"]
                for port, n in ws["per_port"].items():
                    s["per_port"][port] = s["per_port"].get(port, 0) + n
            for addr, n in w["snat"]["in_use"].items():
                in_use[addr] = in_use.get(addr, 0) + n
        out["active"] = sum(s["active"] for s in by_name.values())
        out["snat"] = {
            **out["snat"],
            "in_use": in_use,
            "exhausted": sum(w["snat"]["exhausted"] for w in stats),
        }
        for key in ("buffered_bytes", "idle_closed"):
            out[key] = sum(w[key] for w in stats)
        out["maxconn"] = _sum_maxconn(stats) or out["maxconn"]
        out["loop"] = loop_name()
        out["pid"] = os.getpid()
        out["worker_pids"] = [p.pid for p in self.procs]
        out["stale_workers"] = stale
        return out

    def events_since(self, seq: int) -> list[dict[str, Any]]:
        return self.engine.events.since(seq)

    async def metrics(self) -> str:
        return render_metrics(await self.status())

    async def set_admin(self, name: str, state: str, shutdown: bool) -> dict[str, Any]:
        try:
            result = self.engine.set_admin(name, state, False)  # type: ignore[arg-type]
        except EngineError as err:
            raise ApiError(404, str(err)) from None
        if shutdown:
            result["sessions_closed"] = (await self.shutdown_sessions(name))["sessions_closed"]
        return result

    async def shutdown_sessions(self, name: str) -> dict[str, Any]:
        try:
            self.engine.server(name)
        except EngineError as err:
            raise ApiError(404, str(err)) from None
        try:
            replies = await self.ask({"op": "shutdown", "server": name})
        except EngineError as err:
            raise ApiError(500, str(err)) from None
        closed = sum(replies.values())
        return {"server": name, "sessions_closed": closed}

    async def reload(self) -> dict[str, Any]:
        async with self._reload_lock:
            try:
                farm = load_farm(self.farm_path)
                check_reloadable(self.engine.farm, farm)
                answers = await self.ask({"op": "reload", "farm": farm.model_dump(mode="json")})
                replies = [answers[i] for i in sorted(answers)]
                errors = [r["error"] for r in replies if "error" in r]
                if errors:
                    raise EngineError(errors[0])
                summary = await self.engine.reload(farm)
                summary["listeners"] = replies[0]["listeners"]
                return summary
            except (FarmFileError, EngineError) as err:
                self.engine.events.emit("reload-failed", f"reload refused: {err}")
                raise ApiError(409, str(err)) from None


def _sum_maxconn(stats: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The workers' maxconn views as one: limits are per worker process (each
    has its own descriptors), sessions are summed over the workers."""
    if not stats:
        return None
    ports: dict[str, dict[str, Any]] = {}
    for w in stats:
        for port, view in w["maxconn"]["ports"].items():
            p = ports.setdefault(port, {"limit": view["limit"], "sessions": 0})
            p["sessions"] += view["sessions"]
    first = stats[0]["maxconn"]
    return {
        "limit": first["limit"],
        "source": f"per worker process: {first['source']}",
        "sessions": sum(w["maxconn"]["sessions"] for w in stats),
        "ports": ports,
    }


async def serve_master(farm: Farm, farm_path: str) -> None:
    master = Master(farm, farm_path)
    admin = AdminServer(farm.admin_socket, master)
    stop = asyncio.Event()
    try:
        await master.start()
        await admin.start()
        install_signals(stop, master.reload, master.engine.loop, master.hard_stop)
        log.info(
            "engine ready",
            extra={
                "fields": {"farm": farm.farm, "workers": farm.workers, "admin": farm.admin_socket}
            },
        )
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(master.failed.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
        if master.failed.is_set():
            raise EngineError("a worker process exited; stopping the engine")
    finally:
        log.info("engine stopping", extra={"fields": {"farm": farm.farm}})
        await admin.stop()  # at once, as in serve_single
        await master.stop(master.engine.farm.timeouts.hard_stop_after)
        log.info("engine stopped", extra={"fields": {"farm": farm.farm}})
