"""`load_balancer.driver` in the pool file: one settings model per driver, by `kind`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from .engine import EngineSettings
from .haproxy import HaproxySettings
from .manual import ManualSettings

DriverSettings = Annotated[
    EngineSettings | HaproxySettings | ManualSettings, Field(discriminator="kind")
]
DRIVER_KINDS = ("engine", "haproxy", "manual")


def driver_from_name(value: Any) -> Any:
    """`driver: engine` is short for `driver: {kind: engine}` (every default)."""
    if isinstance(value, str) and value in DRIVER_KINDS:
        return {"kind": value}
    return value
