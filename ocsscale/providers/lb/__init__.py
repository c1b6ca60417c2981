"""Load-balancer drivers: the bundled engine, HAProxy, and manual (any appliance).

`open_driver(settings, site, ports)` builds the pool file's driver from its
settings (config/lb_settings.py); each driver module registers itself in
`base.DRIVERS`; every driver implements `base.LbDriver` and passes the one
contract suite (tests/contract).
"""

from __future__ import annotations

from ...config.lb_settings import DriverSettings
from ..plugin import Capabilities, Ports
from .base import DRIVERS, LbDriver, LbSite


def kinds() -> list[str]:
    return DRIVERS.names()


def open_driver(settings: DriverSettings, site: LbSite, ports: Ports) -> LbDriver:
    """The driver `settings` (the pool file's `load_balancer.driver`) is for."""
    return DRIVERS.build(settings.kind, settings, site, ports)


def capabilities(settings: DriverSettings) -> Capabilities:
    """What the pool file's driver supports, known from its settings alone (the
    pool file's LB host or profile are not needed)."""
    return DRIVERS.capabilities(settings.kind, settings)


__all__ = ["DRIVERS", "LbDriver", "LbSite", "capabilities", "kinds", "open_driver"]
