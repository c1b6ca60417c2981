"""Running an engine in the foreground: one process (its admin API and reload), or
a master with workers (workers.py); what both share is in loop.py."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from .admin import AdminServer, ApiError
from .events import log
from .farm import Farm
from .loader import FarmFileError, load_farm
from .loop import check_reloadable, install_signals, loop_factory, loop_name
from .maxconn import raise_nofile_limit
from .metrics import render_metrics
from .server import Engine, EngineError


class SingleController:
    """Admin API backend for a one-process engine."""

    def __init__(self, engine: Engine, farm_path: str) -> None:
        self.engine = engine
        self.farm_path = farm_path
        self._reload_lock = asyncio.Lock()

    async def status(self) -> dict[str, Any]:
        return {**self.engine.status(), "loop": loop_name(), "pid": os.getpid()}

    def events_since(self, seq: int) -> list[dict[str, Any]]:
        return self.engine.events.since(seq)

    async def metrics(self) -> str:
        return render_metrics(self.engine.status())

    async def set_admin(self, name: str, state: str, shutdown: bool) -> dict[str, Any]:
        try:
            return self.engine.set_admin(name, state, shutdown)  # type: ignore[arg-type]
        except EngineError as err:
            raise ApiError(404, str(err)) from None

    async def shutdown_sessions(self, name: str) -> dict[str, Any]:
        try:
            self.engine.server(name)
        except EngineError as err:
            raise ApiError(404, str(err)) from None
        return {"server": name, "sessions_closed": self.engine.shutdown_sessions(name)}

    async def reload(self) -> dict[str, Any]:
        async with self._reload_lock:
            try:
                farm = load_farm(self.farm_path)
                check_reloadable(self.engine.farm, farm)
                return await self.engine.reload(farm)
            except (FarmFileError, EngineError) as err:
                self.engine.events.emit("reload-failed", f"reload refused: {err}")
                raise ApiError(409, str(err)) from None


async def serve_single(farm: Farm, farm_path: str) -> None:
    engine = Engine(farm, role="single")
    controller = SingleController(engine, farm_path)
    admin = AdminServer(farm.admin_socket, controller)
    stop = asyncio.Event()
    await engine.start()
    try:
        await admin.start()
        install_signals(stop, controller.reload, engine.loop, engine.hard_stop.set)
        log.info(
            "engine ready",
            extra={"fields": {"farm": farm.farm, "loop": loop_name(), "admin": farm.admin_socket}},
        )
        await stop.wait()
    finally:
        log.info("engine stopping", extra={"fields": {"farm": farm.farm}})
        # The admin socket goes at once, so that a new engine can start (and bind
        # the listeners this one has closed) while this one finishes its sessions.
        await admin.stop()
        await engine.stop(engine.farm.timeouts.hard_stop_after)
        log.info("engine stopped", extra={"fields": {"farm": farm.farm}})


def serve(farm_path: str) -> None:
    """Run the farm in the foreground until SIGTERM/SIGINT. Raises FarmFileError
    or EngineError for problems the operator must fix."""
    farm = load_farm(farm_path)
    try:
        raise_nofile_limit()  # workers inherit it
        if farm.workers > 1:
            from .workers import serve_master  # multiprocessing only when asked for

            main = serve_master(farm, farm_path)
        else:
            main = serve_single(farm, farm_path)
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(main)
    except OSError as err:  # this machine refused something (a socket, a limit)
        raise EngineError(str(err)) from None
