"""routing.enable for a two-armed load-balancer pair (the work: providers/lb/pair_routing.py).

Forwarding on both LB hosts, and keepalived on both floating the FEs' gateway
(`backend_address`), still with no VIP; the undo leaves both hosts as they were
before the phase (sysctl, keepalived's configuration and service state).
"""

from __future__ import annotations

from ..errors import UsageError
from ..providers.lb.pair import PairDriver
from ..providers.lb.pair_routing import PairRouting
from .base import Change, Context, Json
from .plugin_ports import lb_driver


class PairRoutingStep:
    """The RoutingEnable step's body for a pair (same methods as ApplianceRouting)."""

    def __init__(self, ctx: Context, vip: str, backend: str) -> None:
        driver = lb_driver(ctx)
        if not isinstance(driver, PairDriver):
            raise UsageError(
                "routing.enable: the pair's driver cannot float the FEs' gateway "
                "(engine or haproxy pairs only)"
            )
        self.work = PairRouting(driver, vip, backend)
        self.vip, self.backend = vip, backend
        self.label = driver.target()

    def targets(self) -> list[str]:
        return self.work.hosts()

    def _summary(self) -> str:
        return (
            "net.ipv4.ip_forward -> 1 and keepalived floating the FEs' gateway "
            f"{self.backend}, no VIP ({self.vip} stays unconfigured)"
        )

    def describe(self) -> list[Change]:
        return [Change("change", name, self._summary()) for name in self.work.hosts()]

    def read(self) -> Json:
        return self.work.read()

    def diff(self, current: Json) -> list[Change]:
        return [] if self.work.done(current) else self.describe()

    def undo_record(self, current: Json) -> Json:
        return self.work.undo_for(current)

    def apply(self, current: Json) -> Json:
        return self.work.apply(current)

    def verify(self, evidence: Json) -> Json:
        return {**evidence, **self.work.verify()}

    def check_undo(self, undo: Json) -> None:
        self.work.check_undo(undo)

    def revert(self, undo: Json) -> Json:
        return self.work.revert(undo)

    def verify_reverted(self, undo: Json) -> Json:
        return self.work.verify_reverted(undo)
