"""Load-balancer drivers: the bundled engine, HAProxy, and manual (any appliance).

`open_driver(settings, site, ports)` builds the pool file's driver from its
settings (config/lb_settings.py); each driver module registers itself in
`base.DRIVERS`; every driver implements `base.LbDriver` and passes the one
contract suite (tests/contract).
"""

from __future__ import annotations

from ...config.lb_settings import DriverSettings
from ..plugin import Ports
from .base import DRIVERS, LbDriver, LbSite


def kinds() -> list[str]:
    return DRIVERS.names()


def open_driver(settings: DriverSettings, site: LbSite, ports: Ports) -> LbDriver:
    """The driver `settings` (the pool file's `load_balancer.driver`) is for."""
    return DRIVERS.build(settings.kind, settings, site, ports)


__all__ = ["DRIVERS", "LbDriver", "LbSite", "kinds", "open_driver"]
