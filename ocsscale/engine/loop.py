"""What both ways of running an engine share: one process (runtime.py) and a
master with its workers (workers.py). Its own module so that neither of the two
imports the other's helpers: runtime.py starts workers.py's master, and
workers.py needs only these."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from typing import Any

from .admin import ApiError
from .events import log
from .farm import Farm
from .server import EngineError


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when importable, unless OCSSCALE_ENGINE_LOOP=asyncio asks for plain asyncio."""
    if os.environ.get("OCSSCALE_ENGINE_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def check_reloadable(old: Farm, new: Farm) -> None:
    if new.admin_socket != old.admin_socket or new.workers != old.workers:
        raise EngineError("admin.socket and workers only change with a restart")


def install_signals(
    stop: asyncio.Event,
    reload: Callable[[], Any],
    loop: asyncio.AbstractEventLoop,
    hard_stop: Callable[[], None],
) -> None:
    """SIGTERM or SIGINT: soft stop (see Engine.stop); a second one: stop now."""

    def on_stop() -> None:
        if stop.is_set():
            log.warning("second stop signal: closing the remaining sessions now")
            hard_stop()
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, on_stop)
    loop.add_signal_handler(signal.SIGINT, on_stop)

    def on_hup() -> None:
        async def run() -> None:
            try:
                await reload()
            except ApiError as err:
                log.warning("SIGHUP reload refused: %s", err)

        loop.create_task(run())

    loop.add_signal_handler(signal.SIGHUP, on_hup)
