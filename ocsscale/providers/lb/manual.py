"""Any appliance the tool cannot drive (WebMux, F5, Kemp, NetScaler...): the
operator enters the settings, the tool proves them from outside.

`vendor` (webmux, f5, kemp, netscaler, generic) picks whose words the
checklists speak (vendors.py, templates/lb-vendors/); each checklist is shown
as lines and carries the same settings as `data` for a machine.
apply: prints the exact settings (farm IP, every port, health checks on the
check ports with every other port following, idle timeout, SNAT on, weighted
least connections, the servers and their weights), waits for the operator's
"done", and returns; the actions then
verify from outside (the VIP answers every port from every test client,
distribution and SNAT proven in validate-lb). A "done" is never proof.
Undo: the revert checklist, the operator's "done", then the VIP must no
longer answer on any of the pool's ports.
Members: the operator sets admin states at the appliance when asked; the
appliance's own view is not readable, so `stats` reports it as unknown.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from ...config.lb_settings import ManualSettings, vendor_choice
from ...errors import Declined, StepFailed, UndoRecordError
from .. import undo_shape as shape
from ..plugin import Capabilities, Ports, fixed
from .base import DRIVERS, AdminState, FarmSpec, LbSite, MemberStats, check_driver
from .vendors import (
    Checklist,
    farm_checklist,
    member_checklist,
    plan_words,
    product,
    revert_checklist,
    routing_checklist,
)

#: routing.enable at a two-armed routed appliance asks for this checklist
__all__ = ["ManualDriver", "ManualSettings", "routing_checklist"]


def _answers(address: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


class ManualDriver:
    kind: ClassVar[str] = "manual"
    #: a person enters every change; the appliance's own view is not readable
    capabilities: ClassVar[Capabilities] = Capabilities(drives_itself=False)

    def __init__(self, settings: ManualSettings, site: LbSite, ports: Ports) -> None:
        self.settings = settings
        self.site = site
        self.ports = ports
        self.farm = site.farm

    def target(self) -> str:
        return f"lb ({product(self.settings.vendor)}, by hand)"

    def targets(self) -> list[str]:
        return []

    def plan_note(self, farm: FarmSpec) -> str:
        # the appliance, in its own words (the checklist the operator gets)
        return plan_words(self.settings.vendor, farm)

    def console(self) -> str:
        return f"the {product(self.settings.vendor)}'s farm screen"

    def _done(self, question: str) -> None:
        answer = self.ports.operator.ask(question, ["done", "abort"])
        if answer != "done":
            raise Declined("the operator aborted at the load balancer: nothing more was changed")

    def read_farm(self) -> dict[str, Any]:
        return {"view": None, "manual": True}

    def undo_for(self, current: dict[str, Any]) -> dict[str, Any]:
        return {"driver": self.kind, "vendor": self.settings.vendor, "farm": self.farm.to_json()}

    def check_undo(self, undo: Mapping[str, Any]) -> None:
        """The shape of `undo_for`'s record: the farm its check reaches."""
        check_driver(undo, self.kind)
        shape.text(undo, "vendor", optional=True)
        farm = shape.obj(undo, "farm")
        shape.within("farm", lambda f: shape.address(f, "vip"), farm)
        ports = farm.get("ports")
        if not isinstance(ports, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports
        ):
            raise UndoRecordError("in 'farm': 'ports' is not a list of port numbers")

    def _tell(self, checklist: Checklist) -> None:
        self.ports.emit(
            "checklist",
            {"title": checklist.title, "steps": checklist.lines, "data": checklist.data},
        )
        self.ports.operator.tell(checklist.title, checklist.lines, data=checklist.data)

    def _required_ports(self, farm: FarmSpec) -> list[int]:
        return [p for p in farm.ports if p in self.site.required_ports]

    def apply_farm(self, desired: FarmSpec, current: dict[str, Any]) -> dict[str, Any]:
        checklist = farm_checklist(
            self.settings.vendor, desired, self._required_ports(desired), self.site.pair
        )
        self._tell(checklist)
        self._done("Are all of these settings entered and applied?")
        return {"entered_by": "operator", "checklist": checklist.lines}

    def revert(self, undo: dict[str, Any]) -> dict[str, Any]:
        # the vendor the farm was entered on (a journal from before the choice was
        # strict may hold any text: then this pool file's vendor)
        vendor = vendor_choice(undo.get("vendor")) or self.settings.vendor
        checklist = revert_checklist(vendor, self.farm)
        self._tell(checklist)
        self._done("Is the farm removed from the load balancer?")
        return {"reverted_by": "operator", "checklist": checklist.lines}

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
        self._tell(member_checklist(self.settings.vendor, self.farm, name, state))
        self._done(f"Is {name} set to {state}?")

    def stats(self) -> dict[str, MemberStats]:
        # The appliance's own view cannot be read: the actions prove from outside.
        return {
            m.name: MemberStats(name=m.name, health="unknown", admin="ready")
            for m in self.farm.members
        }

    def events(self, since: float) -> list[dict[str, Any]]:
        return []


DRIVERS.add("manual", ManualSettings, ManualDriver, capabilities=fixed(ManualDriver.capabilities))
