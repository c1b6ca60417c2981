"""lb.pair_holder (check): a load-balancer pair has exactly one active host.

For a pool file with `load_balancer.pair` (a driver whose capabilities say `pair`):
  Reads: both hosts' farms and addresses (driver.read_farm), the MAC address of
  the interface that holds the VIP on the host holding it, and the neighbours'
  view of the VIP from a Linux test client (`ip neigh show to VIP` after a TCP
  connection to it).
  Proof: exactly one host holds the VIP; the other has the same farm (read back
  from both: any drift is named per host); the client's neighbour entry for the
  VIP is the active host's MAC address, so traffic to the VIP goes to it (the
  distribution test that follows runs through it). A neighbour entry that cannot
  be read or parsed is a failure, never a pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from ..errors import CheckFailed, StepFailed, TransportError
from ..providers.lb.base import farm_drift
from ..transports.commands import ShCommand
from .args import ActionArgs, HostName, Port
from .base import Action, Change, Context, Json, register
from .lb import planned_farm
from .plugin_ports import lb_driver
from .probing import known_host

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")


def _mac_in(text: str) -> str | None:
    """The `lladdr` of an `ip neigh` line (None: no usable entry)."""
    for line in text.splitlines():
        fields = line.split()
        if "lladdr" in fields and fields.index("lladdr") + 1 < len(fields):
            mac = fields[fields.index("lladdr") + 1].lower()
            if _MAC.match(mac) and "FAILED" not in fields and "INCOMPLETE" not in fields:
                return mac
    return None


def vip_mac(host: Any, vip: str) -> str:
    """The MAC address of the interface holding `vip` on `host` (StepFailed if none)."""
    out = host.run(ShCommand.of("ip", "-4", "-o", "addr", "show", "to", f"{vip}/32")).stdout
    names = [line.split()[1] for line in out.splitlines() if len(line.split()) > 1]
    if len(names) != 1 or not re.match(r"^[A-Za-z0-9._@-]{1,15}\Z", names[0].split("@")[0]):
        raise StepFailed(f"{host.name}: cannot tell which interface holds the VIP {vip}")
    ifname = names[0].split("@")[0]
    raw: bytes = host.read_file(f"/sys/class/net/{ifname}/address")
    mac = raw.decode("ascii", "replace").strip()
    if not _MAC.match(mac.lower()):
        raise StepFailed(f"{host.name}: unreadable MAC address of {ifname}")
    return mac.lower()


class PairHolderArgs(ActionArgs):
    #: the test client whose neighbour table is read (a Linux host)
    source: HostName = Field(alias="from")
    #: the VIP port connected to first, so the client resolves the VIP afresh
    port: Port


@register
class LbPairHolder(Action):
    """Exactly one host of the pair holds the VIP (module docstring)."""

    name = "lb.pair_holder"
    read_only = True

    Args = PairHolderArgs
    params: PairHolderArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.source = self.params.source
        known_host(ctx.pool, self.source, self.name)
        self.vip = str(ctx.pool.load_balancer.vip.ip)
        self.farm = planned_farm(ctx)

    def targets(self) -> list[str]:
        return [*lb_driver(self.ctx).targets(), self.source]

    def describe(self) -> list[Change]:
        names = " and ".join(lb_driver(self.ctx).targets())
        return [
            Change(
                "check",
                names or "lb",
                f"exactly one of {names} holds the VIP {self.vip}, the other has the same "
                f"farm; {self.source} reaches the VIP at the active host's MAC address",
            )
        ]

    def apply(self, current: Json) -> Json:
        driver = lb_driver(self.ctx)
        if not driver.capabilities.pair:
            raise StepFailed(f"{self.name}: the pool file's load balancer is not a pair")
        farm = driver.read_farm()
        holders = list(farm.get("vip_holders", []))
        if len(holders) != 1:
            said = " and ".join(holders) or "neither host"
            raise CheckFailed(f"the pair: {said} holds the VIP {self.vip} (exactly one must)")
        drift = farm_drift(self.farm.view(), farm)
        if drift:
            raise CheckFailed("the pair's farms differ from the plan: " + "; ".join(drift[:8]))
        active = holders[0]
        mac = vip_mac(self.ctx.host(active), self.vip)
        seen = self._neighbour(self.ctx.host(self.source))
        if seen != mac:
            raise CheckFailed(
                f"{self.source} reaches the VIP {self.vip} at {seen}, not at {active}'s {mac}: "
                "the neighbours have not followed the active host (gratuitous ARP)"
            )
        standby = [n for n in driver.targets() if n != active]
        self.ctx.emit(
            "findings",
            {
                "title": f"the pair: {active} holds the VIP {self.vip}",
                "findings": [
                    {"check": "VIP holder", "ok": True, "proven": True, "message": active},
                    {
                        "check": "standby's farm",
                        "ok": True,
                        "proven": True,
                        "message": f"{', '.join(standby)}: the same farm, read back",
                    },
                    {
                        "check": f"{self.source}'s neighbour entry",
                        "ok": True,
                        "proven": True,
                        "message": f"{self.vip} at {mac} ({active})",
                    },
                ],
            },
        )
        return {"active": active, "standby": standby, "mac": mac, "neighbour": seen}

    def _neighbour(self, host: Any) -> str:
        if host.os != "linux":
            raise StepFailed(f"{self.source}: the neighbours' view is read on a Linux test client")
        try:
            host.connect_tcp(self.vip, self.params.port, 5.0).close()
        except (TransportError, OSError) as exc:
            raise CheckFailed(
                f"{self.source}: no TCP connection to the VIP {self.vip}:{self.params.port}: {exc}"
            ) from None
        out = host.run(ShCommand.of("ip", "neigh", "show", "to", self.vip)).stdout
        mac = _mac_in(out)
        if mac is None:
            raise CheckFailed(f"{self.source}: no usable neighbour entry for the VIP {self.vip}")
        return mac
