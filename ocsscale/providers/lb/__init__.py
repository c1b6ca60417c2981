"""Load-balancer drivers: the bundled engine, HAProxy, and manual (any appliance).

`driver_for(ctx)` picks the pool file's driver; every driver implements
`base.LbDriver` and passes the one contract suite (tests/contract).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import DriverContext, LbDriver

_DRIVERS: dict[str, Callable[[Any, DriverContext], LbDriver]] = {}


def register(kind: str, factory: Callable[[Any, DriverContext], LbDriver]) -> None:
    _DRIVERS[kind] = factory


def kinds() -> list[str]:
    _load()
    return sorted(_DRIVERS)


def _load() -> None:
    if _DRIVERS:
        return
    from .engine import EngineDriver
    from .haproxy import HaproxyDriver
    from .manual import ManualDriver

    register("engine", EngineDriver)
    register("haproxy", HaproxyDriver)
    register("manual", ManualDriver)


def driver_for(ctx: DriverContext) -> LbDriver:
    """The driver the pool file's `load_balancer.driver` names, with its settings."""
    from ...errors import UsageError

    _load()
    settings = ctx.pool.load_balancer.driver
    factory = _DRIVERS.get(settings.kind)
    if factory is None:
        raise UsageError(f"load-balancer driver {settings.kind} is not available")
    return factory(settings, ctx)
