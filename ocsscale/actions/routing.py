"""routing.enable: turn on IP routing at a two-armed load balancer, with no VIP yet.

The walkthrough ("Enabling Load Balancer Routing"): connect the load balancer
to both networks, "enable routing between these two networks, but do not
configure any virtual IP addresses (VIPs) at this stage". Args: `address`
(the VIP, written with its prefix) and `backend_address` (the LB's arm on the
front-end network); the target is the pool file's `load_balancer.host`, a
Linux host driven over its transport (SSH, or local on the admin machine).

Reads: `net.ipv4.ip_forward` (sysctl) and the host's IPv4 addresses
(`ip -4 -o addr show`).
Changes: `sysctl -w net.ipv4.ip_forward=1`, nothing else (not persisted in
/etc/sysctl.d: a rollback or a reboot leaves the host as it was).
Undo: the value read before the change; revert writes it back with sysctl.
Proof: verify reads the value back (1), and checks that the back-end arm holds
`backend_address` and that no interface holds the VIP; verify_reverted reads
the old value back. The playbook's next step, a TCP connect from every front
end to the directory server on 135, proves the routing itself.

With a pair (`load_balancer.pair`, engine or haproxy) the FEs' gateway floats:
forwarding goes on at both hosts and keepalived on both floats `backend_address`,
still no VIP (routing_pair.py, providers/lb/pair_routing.py).

With the manual driver the load balancer is an appliance the tool cannot drive
(its `host`, if any, is not used, as for the farm): the step is the operator's
checklist, proven from every front end (routing_appliance.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import CheckFailed, StepFailed, UndoRecordError, UsageError
from ..transports.commands import ShCommand
from . import undo_shape as shape
from .args import ActionArgs, Address
from .base import Action, Change, Context, Json, register
from .plugin_ports import lb_driver
from .routing_appliance import ApplianceRouting
from .routing_pair import PairRoutingStep

FORWARDING_KEY = "net.ipv4.ip_forward"


def _addresses(output: str) -> list[str]:
    """IPv4 addresses from `ip -4 -o addr show` (`2: eth0    inet 10.0.0.39/24 ...`)."""
    found = []
    for line in output.splitlines():
        fields = line.split()
        if "inet" in fields:
            index = fields.index("inet")
            if index + 1 < len(fields):
                found.append(fields[index + 1].split("/", 1)[0])
    return found


class RoutingArgs(ActionArgs):
    #: the VIP, whose network the FEs' default route goes to
    address: Address
    #: the LB's address on the FEs' network (two-armed)
    backend_address: Address


@register
class RoutingEnable(Action):
    """Routing on at the LB host, no VIP (see the module docstring)."""

    name = "routing.enable"
    Args = RoutingArgs
    params: RoutingArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.vip = self.params.address
        self.backend = self.params.backend_address
        self.delegate: ApplianceRouting | PairRoutingStep | None = None
        if not lb_driver(ctx).capabilities.drives_itself:
            # an appliance a person sets up: routing is a checklist too
            self.delegate = ApplianceRouting(ctx, self.vip, self.backend)
            self.lb_name: str = self.delegate.label
            return
        if ctx.pool.load_balancer.pair is not None:
            # both hosts forward, and keepalived floats the FEs' gateway (routing_pair.py)
            self.delegate = PairRoutingStep(ctx, self.vip, self.backend)
            self.lb_name = self.delegate.label
            return
        lb = ctx.pool.load_balancer.host
        if lb is None:
            raise UsageError(
                f"{self.name}: the pool file has no load_balancer.host to turn routing on at",
                hint="add the LB host (with its transport), or enable routing by hand and "
                "run the following phases",
            )
        if lb.os != "linux":
            raise UsageError(
                f"{self.name}: {lb.name} is a {lb.os} host; routing is turned on over a Linux "
                "host's transport only (enable it in the appliance's setup screen by hand)"
            )
        self.lb_name = lb.name

    def targets(self) -> list[str]:
        if self.delegate is not None:
            return self.delegate.targets()
        return [self.lb_name]

    def _summary(self, old: str) -> str:
        return (
            f"{FORWARDING_KEY} {old} -> 1: route between the client network and "
            f"{self.backend}'s network, no VIP ({self.vip} stays unconfigured)"
        )

    def describe(self) -> list[Change]:
        if self.delegate is not None:
            return self.delegate.describe()
        return [Change("change", self.lb_name, self._summary("?"))]

    def _forwarding(self) -> str:
        host = self.ctx.host(self.lb_name)
        value = host.run(ShCommand.of("sysctl", "-n", FORWARDING_KEY), timeout=30.0).stdout.strip()
        if value not in ("0", "1"):
            raise StepFailed(f"{self.lb_name}: unexpected {FORWARDING_KEY} value {value!r}")
        return value

    def _host_addresses(self) -> list[str]:
        host = self.ctx.host(self.lb_name)
        out = host.run(ShCommand.of("ip", "-4", "-o", "addr", "show"), timeout=30.0).stdout
        return _addresses(out)

    def read(self) -> Json:
        if self.delegate is not None:
            return self.delegate.read()
        return {"forwarding": self._forwarding(), "addresses": self._host_addresses()}

    def diff(self, current: Json) -> list[Change]:
        if self.delegate is not None:
            return self.delegate.diff(current)
        if current["forwarding"] == "1":
            return []
        return [Change("change", self.lb_name, self._summary(current["forwarding"]))]

    def undo_record(self, current: Json) -> Json:
        if self.delegate is not None:
            return self.delegate.undo_record(current)
        return {"host": self.lb_name, "key": FORWARDING_KEY, "value": current["forwarding"]}

    def apply(self, current: Json) -> Json:
        if self.delegate is not None:
            return self.delegate.apply(current)
        host = self.ctx.host(self.lb_name)
        host.run(ShCommand.of("sysctl", "-w", f"{FORWARDING_KEY}=1"), timeout=30.0)
        return {"host": self.lb_name, "key": FORWARDING_KEY, "before": current["forwarding"]}

    def verify(self, evidence: Json) -> Json:
        if self.delegate is not None:
            return self.delegate.verify(evidence)
        value = self._forwarding()
        if value != "1":
            raise StepFailed(
                f"{self.lb_name}: {FORWARDING_KEY} reads {value} after setting it to 1"
            )
        addresses = self._host_addresses()
        if self.backend not in addresses:
            raise CheckFailed(
                f"{self.lb_name}: the back-end arm {self.backend} is not configured "
                f"(addresses: {', '.join(addresses) or 'none'}); connect the LB to the "
                "front-end network first"
            )
        if self.vip in addresses:
            raise CheckFailed(
                f"{self.lb_name}: the VIP {self.vip} is already configured; the walkthrough "
                "enables routing with no VIP at this stage"
            )
        return {**evidence, "after": value, "addresses": addresses, "vip_configured": False}

    def check_undo(self, undo: Json) -> None:
        if self.delegate is not None:
            self.delegate.check_undo(undo)
            return
        # the revert runs `sysctl -w KEY=VALUE` as root: only this key, only a number
        rec = shape.record(undo)
        shape.same(rec, "host", self.lb_name, "the step's load balancer")
        shape.one_of(rec, "key", (FORWARDING_KEY,))
        value = shape.text(rec, "value")
        if not (value or "").isdigit() or len(value or "") > 3:
            raise UndoRecordError("'value' is not a number of at most 3 digits")

    def revert(self, undo: Json) -> Json:
        if self.delegate is not None:
            return self.delegate.revert(undo)
        host = self.ctx.host(undo["host"])
        host.run(ShCommand.of("sysctl", "-w", f"{undo['key']}={undo['value']}"), timeout=30.0)
        return {"host": undo["host"], "key": undo["key"], "restored": undo["value"]}

    def verify_reverted(self, undo: Json) -> Json:
        if self.delegate is not None:
            return self.delegate.verify_reverted(undo)
        host = self.ctx.host(undo["host"])
        value = host.run(ShCommand.of("sysctl", "-n", undo["key"]), timeout=30.0).stdout.strip()
        if value != undo["value"]:
            raise StepFailed(
                f"{undo['host']}: {undo['key']} reads {value} after the rollback, "
                f"expected {undo['value']}"
            )
        return {"host": undo["host"], "key": undo["key"], "value": value}
