"""Any appliance the tool cannot drive (WebMux, F5, Kemp...): the operator enters
the settings, the tool proves them from outside.

apply: prints the exact settings in the walkthrough's words (farm IP, every
port, generic TCP checks on the check ports with every other port following,
TCP idle timeout, SNAT on, weighted least connections, the servers and their
weights), waits for the operator's "done", and returns; the actions then
verify from outside (the VIP answers every port from every test client,
distribution and SNAT proven in validate-lb). A "done" is never proof.
Undo: the revert checklist, the operator's "done", then the VIP must no
longer answer on any of the pool's ports.
Members: the operator sets admin states at the appliance when asked; the
appliance's own view is not readable, so `stats` reports it as unknown.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Literal

from pydantic import Field

from ...config.strict import Strict
from ...errors import Declined, StepFailed
from .base import AdminState, DriverContext, FarmSpec, MemberStats

_STATE_WORDS = {
    "ready": "enable it (in service: new connections allowed)",
    "drain": "drain it (no new connections; established ones continue)",
    "maint": "disable it / take it out of service (no new connections, no health checks)",
}


class ManualSettings(Strict):
    kind: Literal["manual"]
    vendor: str = Field("WebMux", min_length=1, max_length=40)


def settings_checklist(farm: FarmSpec, vendor: str) -> list[str]:
    """The walkthrough's "Configure load balancer with Front End Pool Servers", filled in."""
    others = [p for p in farm.ports if p not in farm.check_ports]
    checks = " and ".join(str(p) for p in farm.check_ports)
    lines = [
        f"On the {vendor}, create the farm with Farm IP (VIP) {farm.vip} "
        f"(network /{farm.vip_prefix}).",
        "Add every TCP port to the farm (WebMux: “add-addr/port” in the farm screen): "
        + ", ".join(str(p) for p in farm.ports)
        + ".",
        f"Ports {checks}: service “generic TCP” (health-checked). Every other port "
        f"({', '.join(str(p) for p in others) or 'none'}): “generic no healthcheck TCP”, each "
        f"checking the front end on {checks}, so a server failing a check leaves every port.",
        f"TCP idle timeout: {farm.idle_timeout} s ({farm.idle_timeout // 60} minutes), "
        "in the “Setup” screen.",
        "Scheduling: weighted least connections.",
        "Enable SNAT (Source NAT) in the “Setup” screen, with DNAT (full proxy): both the "
        "source and the destination address are translated.",
        "SNAT address(es): " + ", ".join(farm.snat_addresses) + ".",
    ]
    for m in farm.members:
        lines.append(f"Real server {m.name}: {m.address}, weight {m.weight}, on every port.")
    lines.append("Save and apply the farm.")
    return lines


def revert_checklist(farm: FarmSpec, vendor: str) -> list[str]:
    return [
        f"On the {vendor}, delete the farm on {farm.vip} (or disable the Farm IP), "
        "as it was before this run.",
        "Remove the real servers "
        + ", ".join(f"{m.name} ({m.address})" for m in farm.members)
        + " from it.",
        f"Make sure nothing answers on {farm.vip} any more: ports "
        + ", ".join(str(p) for p in farm.ports)
        + ".",
    ]


def _answers(address: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


class ManualDriver:
    kind: ClassVar[str] = "manual"

    def __init__(self, settings: ManualSettings, ctx: DriverContext) -> None:
        self.settings = settings
        self.ctx = ctx
        self.farm = FarmSpec.from_pool(ctx.pool, ctx.profile)

    def target(self) -> str:
        return f"lb ({self.settings.vendor}, by hand)"

    def targets(self) -> list[str]:
        return []

    def _done(self, question: str) -> None:
        answer = self.ctx.operator.ask(question, ["done", "abort"])
        if answer != "done":
            raise Declined("the operator aborted at the load balancer: nothing more was changed")

    def read_farm(self) -> dict[str, Any]:
        return {"view": None, "manual": True}

    def undo_for(self, current: dict[str, Any]) -> dict[str, Any]:
        return {"driver": self.kind, "vendor": self.settings.vendor, "farm": self.farm.to_json()}

    def apply_farm(self, desired: FarmSpec, current: dict[str, Any]) -> dict[str, Any]:
        lines = settings_checklist(desired, self.settings.vendor)
        self.ctx.emit(
            "checklist", {"title": f"configure the {self.settings.vendor}", "steps": lines}
        )
        self.ctx.operator.tell(f"Enter these settings on the {self.settings.vendor}", lines)
        self._done("Are all of these settings entered and applied?")
        return {"entered_by": "operator", "checklist": lines}

    def revert(self, undo: dict[str, Any]) -> dict[str, Any]:
        lines = revert_checklist(self.farm, undo.get("vendor", self.settings.vendor))
        self.ctx.operator.tell(f"Revert the {undo.get('vendor')} farm", lines)
        self._done("Is the farm removed from the load balancer?")
        return {"reverted_by": "operator", "checklist": lines}

    def verify_reverted(self, undo: dict[str, Any]) -> dict[str, Any]:
        farm = undo["farm"]
        ports = [int(p) for p in farm["ports"]]
        # every port at once: a silent (filtered) port takes the whole timeout
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(ports)))) as pool:
            found = list(pool.map(lambda port: _answers(farm["vip"], port), ports))
        answering = [port for port, answers in zip(ports, found, strict=True) if answers]
        if answering:
            raise StepFailed(
                f"the VIP {farm['vip']} still answers on port(s) "
                f"{', '.join(map(str, answering))} after the revert checklist"
            )
        return {"vip": farm["vip"], "silent_ports": farm["ports"]}

    def set_member(self, name: str, state: AdminState) -> None:
        self.ctx.operator.tell(
            f"{self.settings.vendor}: real server {name}", [f"{name}: {_STATE_WORDS[state]}."]
        )
        self._done(f"Is {name} set to {state}?")

    def stats(self) -> dict[str, MemberStats]:
        # The appliance's own view cannot be read: the actions prove from outside.
        return {
            m.name: MemberStats(name=m.name, health="unknown", admin="ready")
            for m in self.farm.members
        }

    def events(self, since: float) -> list[dict[str, Any]]:
        return []
