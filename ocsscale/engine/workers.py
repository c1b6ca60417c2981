"""Multi-process mode (`workers: N`, N > 1).

Each worker process binds every listener itself with SO_REUSEPORT, so the kernel
spreads new connections over the workers, and runs its own data path and WLC
over its own connections. The master process owns the shared truth: it runs the
health checks, holds admin states, serves the admin API, and pushes every server
state change to the workers over a pipe. Workers forward their events (SNAT
exhaustion, failed connects) and answer the master's requests (stats, reload,
session shutdown). If a worker dies the master stops with an error, so that a
supervisor (systemd) restarts the whole engine in a known state.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from typing import Any

from .admin import AdminServer, ApiError
from .events import log, setup_logging
from .farm import Farm
from .loader import FarmFileError, load_farm
from .metrics import render_metrics
from .runtime import check_reloadable, install_signals, loop_factory, loop_name
from .server import Engine, EngineError

REQUEST_TIMEOUT = 30.0


# -- worker side -------------------------------------------------------------------
def worker_main(farm_data: dict[str, Any], conn: Connection, index: int) -> None:
    # The master handles signals for the whole engine; workers stop when told.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    setup_logging()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(_worker(Farm.model_validate(farm_data), conn, index))


async def _worker(farm: Farm, conn: Connection, index: int) -> None:
    engine = Engine(farm, role="worker")
    engine.events.quiet = True
    engine.events.forward = lambda e: conn.send({"op": "event", "event": e})
    done = asyncio.Event()
    try:
        await engine.start()
    except EngineError as err:
        conn.send({"op": "error", "error": str(err)})
        return
    conn.send({"op": "ready", "pid": os.getpid(), "loop": loop_name()})

    async def handle(msg: dict[str, Any]) -> None:
        op = msg["op"]
        reply: Any = None
        if op == "servers":
            for st in msg["servers"]:
                s = engine.balancer.servers.get(st["name"])
                if s is not None:
                    s.admin, s.healthy, s.check_reason = st["admin"], st["healthy"], st["check"]
            return
        if op == "stop":
            done.set()
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
        conn.send({"op": "reply", "id": msg["id"], "data": reply})

    def readable() -> None:
        while conn.poll():
            try:
                msg = conn.recv()
            except EOFError:  # the master is gone
                done.set()
                return
            engine.loop.create_task(handle(msg))

    engine.loop.add_reader(conn.fileno(), readable)
    await done.wait()
    await engine.stop()


# -- master side -------------------------------------------------------------------
class Master:
    """Admin API backend and supervisor for worker processes."""

    def __init__(self, farm: Farm, farm_path: str) -> None:
        self.engine = Engine(farm, role="master")
        self.farm_path = farm_path
        self.conns: list[Connection] = []
        self.procs: list[multiprocessing.process.BaseProcess] = []
        self.pending: dict[int, tuple[asyncio.Future[list[Any]], list[Any]]] = {}
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
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=worker_main, args=(farm.model_dump(mode="json"), child, i), daemon=True
            )
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
            loop.add_reader(parent.fileno(), self._readable, parent)
            loop.add_reader(proc.sentinel, self._worker_exited, i)
        for _ in range(farm.workers):
            msg = await asyncio.wait_for(self.ready.get(), REQUEST_TIMEOUT)
            if msg["op"] == "error":
                raise EngineError(msg["error"])
        await self.engine.start()
        self.push_servers()

    def _readable(self, conn: Connection) -> None:
        while conn.poll():
            try:
                msg = conn.recv()
            except (EOFError, OSError):  # the worker is gone; its sentinel reports it
                self.engine.loop.remove_reader(conn.fileno())
                return
            op = msg["op"]
            if op in ("ready", "error"):
                self.ready.put_nowait(msg)
            elif op == "event":
                self.engine.events.add(msg["event"])
            elif op == "reply" and msg["id"] in self.pending:
                fut, results = self.pending[msg["id"]]
                results.append(msg["data"])
                if len(results) == len(self.conns) and not fut.done():
                    fut.set_result(results)

    def _worker_exited(self, index: int) -> None:
        self.engine.loop.remove_reader(self.procs[index].sentinel)
        if not self.failed.is_set() and not self.stopping:
            self.procs[index].join(1)
            code = self.procs[index].exitcode
            self.engine.events.emit("worker-exited", f"worker {index} exited (code {code})")
            self.failed.set()

    def broadcast(self, msg: dict[str, Any]) -> None:
        for conn in self.conns:
            # A dead worker's exit is reported through its sentinel, not here.
            with contextlib.suppress(OSError):
                conn.send(msg)

    async def ask(self, msg: dict[str, Any]) -> list[Any]:
        rid = next(self.ids)
        fut: asyncio.Future[list[Any]] = self.engine.loop.create_future()
        self.pending[rid] = (fut, [])
        self.broadcast({**msg, "id": rid})
        try:
            return await asyncio.wait_for(fut, REQUEST_TIMEOUT)
        finally:
            self.pending.pop(rid, None)

    def push_servers(self) -> None:
        states = [
            {"name": s.name, "admin": s.admin, "healthy": s.healthy, "check": s.check_reason}
            for s in self.engine.balancer.servers.values()
        ]
        self.broadcast({"op": "servers", "servers": states})

    async def stop(self) -> None:
        self.stopping = True
        self.broadcast({"op": "stop"})
        for proc in self.procs:
            await asyncio.get_running_loop().run_in_executor(None, proc.join, 5)
            if proc.is_alive():
                proc.terminate()
        await self.engine.stop()

    # -- the admin API ---------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        out = self.engine.status()
        stats = await self.ask({"op": "stats"})
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
        out["loop"] = loop_name()
        out["pid"] = os.getpid()
        out["worker_pids"] = [p.pid for p in self.procs]
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
        closed = sum(await self.ask({"op": "shutdown", "server": name}))
        return {"server": name, "sessions_closed": closed}

    async def reload(self) -> dict[str, Any]:
        async with self._reload_lock:
            try:
                farm = load_farm(self.farm_path)
                check_reloadable(self.engine.farm, farm)
                replies = await self.ask({"op": "reload", "farm": farm.model_dump(mode="json")})
                errors = [r["error"] for r in replies if "error" in r]
                if errors:
                    raise EngineError(errors[0])
                summary = await self.engine.reload(farm)
                summary["listeners"] = replies[0]["listeners"]
                return summary
            except (FarmFileError, EngineError) as err:
                self.engine.events.emit("reload-failed", f"reload refused: {err}")
                raise ApiError(409, str(err)) from None


async def serve_master(farm: Farm, farm_path: str) -> None:
    master = Master(farm, farm_path)
    admin = AdminServer(farm.admin_socket, master)
    stop = asyncio.Event()
    try:
        await master.start()
        await admin.start()
        install_signals(stop, master.reload, master.engine.loop)
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
        await admin.stop()
        await master.stop()
