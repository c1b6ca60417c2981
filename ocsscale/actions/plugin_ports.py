"""From an action's Context to the plug-ins: the ports they get, and the pool
file's LB driver and DNS provider built from their own settings.

The one place that knows both shapes (providers/plugin.py): a plug-in never
sees the Context, the pool or the journal; actions build it through here.
"""

from __future__ import annotations

from pathlib import Path

from ..config.loader import STATE_DIR_NAME
from ..providers.dns import DnsProvider
from ..providers.dns import open_provider as _open_dns
from ..providers.lb import LbDriver, LbSite, open_driver
from ..providers.plugin import Ports
from .base import Context


def ports_from(ctx: Context) -> Ports:
    """The ports a plug-in gets from this run: host access, the operator, the pool
    file's directory and state directory, the event sink."""
    base = (ctx.pool_path or Path(".")).resolve().parent
    return Ports(
        host=ctx.host,
        operator=ctx.operator,
        base_dir=base,
        state_dir=base / STATE_DIR_NAME if ctx.pool_path else None,
        emit=lambda kind, data: ctx.emit(kind, dict(data)),
    )


def lb_driver(ctx: Context) -> LbDriver:
    """The pool file's load-balancer driver (connects to nothing yet)."""
    return open_driver(
        ctx.pool.load_balancer.driver, LbSite.from_pool(ctx.pool, ctx.profile), ports_from(ctx)
    )


def open_provider(ctx: Context) -> DnsProvider:
    """The pool file's DNS provider, built from its settings (`dns`)."""
    return _open_dns(ctx.pool.dns, ports_from(ctx))
