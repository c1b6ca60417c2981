"""The lab's operator: enters a checklist into the lab's appliance, then answers.

`act(appliance, question)` takes a question as the run writes it (waiting.json:
id, question, choices, checklist {title, lines, data}), carries out the
checklist at the appliance from `checklist["data"]` ONLY (never its lines, which
are for a person), waits until the appliance's firmware has applied the change,
and returns the answer to give ("done"). What it does by `data["kind"]`:

- farm: enters the farm (VIP, ports, check ports, idle timeout, SNAT, members
  and weights); every member's admin state starts ready;
- farm-revert: deletes the farm (the VIP goes from the front interface);
- member-state: sets a member's admin state (ready, drain, maint);
- routing: turns the appliance's routing of other traffic on or off; on, it
  also makes each listed FE's default gateway the back-end address.

A checklist of the appliance's kinds whose data lacks something the appliance
needs raises ApplianceDataError naming the field: the lab run fails, which
proves the checklist incomplete. A question without a checklist, a checklist
without data (a person's) or of another kind (the client tests, a manual DNS
change) is not this operator's: None, and the run waits for someone else.

`run_operator(channel, stop_event, by=..., appliance=...)` answers questions as
they come through a channel with two calls, `waiting() -> dict | None` (the
question the run waits on, waiting.json's content) and `answer(value, by)`.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import appliance as lab_appliance
from .state import LabState
from .system import LabError, ip
from .topology import Topology

APPLIANCE_KINDS = ("farm", "farm-revert", "member-state", "routing")
MAX_RUN_SECONDS = 4 * 3600.0


class ApplianceDataError(LabError):
    """The checklist's data lacks (or garbles) something the appliance needs."""


class Channel(Protocol):
    def waiting(self) -> dict[str, Any] | None: ...

    def answer(self, value: str, by: str) -> None: ...


@dataclass(frozen=True)
class LabAppliance:
    """Where the lab's appliance keeps its configuration and view."""

    config: Path
    view: Path
    lock: Path
    topo: Topology

    @classmethod
    def of(cls, state: LabState) -> LabAppliance:
        if state.lb != "appliance":
            raise LabError(f"lab {state.name} has no appliance (lab up --lb appliance)")
        topo = state.topo()
        p = lab_appliance.paths(state, topo)
        return cls(p["config"], p["view"], p["lock"], topo)

    def read_config(self) -> dict[str, Any]:
        return lab_appliance.read_json(self.config)

    def read_view(self) -> dict[str, Any]:
        return lab_appliance.read_json(self.view)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def change(self, edit: Any) -> dict[str, Any]:
        """Apply `edit(config)` as a new generation; the view once the firmware applied it."""
        with self._locked():
            config = self.read_config()
            edit(config)
            config["generation"] = int(config.get("generation", 0)) + 1
            lab_appliance.write_json(self.config, config)
            generation = config["generation"]
        return lab_appliance.wait_applied(self.view, generation)


# -- reading the data ----------------------------------------------------------------


def _field(data: dict[str, Any], key: str, kind: str) -> Any:
    if key not in data or data[key] is None:
        raise ApplianceDataError(
            f"the {kind} checklist's data lacks {key!r}, which the appliance needs"
        )
    return data[key]


def _address(value: Any, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        raise ApplianceDataError(f"{what} is not an IPv4 address") from None


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApplianceDataError(f"{what} must be a whole number from {low} to {high}")
    return value


def _ports(value: Any, what: str) -> list[int]:
    if not isinstance(value, list) or not 1 <= len(value) <= lab_appliance.MAX_PORTS:
        raise ApplianceDataError(f"{what} must be a list of 1 to {lab_appliance.MAX_PORTS} ports")
    return sorted({_int(p, what, 1, 65535) for p in value})


def _members(value: Any, kind: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not 1 <= len(value) <= lab_appliance.MAX_MEMBERS:
        raise ApplianceDataError(
            f"the {kind} checklist's 'members' must list 1 to {lab_appliance.MAX_MEMBERS} servers"
        )
    members = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ApplianceDataError(f"the {kind} checklist's members[{i}] is not an object")
        name = _field(item, "name", f"{kind} (members[{i}])")
        if not isinstance(name, str) or not 1 <= len(name) <= 64:
            raise ApplianceDataError(f"the {kind} checklist's members[{i}].name is not a name")
        members.append(
            {
                "name": name,
                "address": _address(_field(item, "address", kind), f"members[{i}].address"),
            }
        )
        if kind == "farm":
            weight = _field(item, "weight", f"farm (members[{i}])")
            members[-1]["weight"] = _int(
                weight, f"members[{i}].weight", 1, lab_appliance.MAX_WEIGHT
            )
    for key in ("name", "address"):
        if len({m[key] for m in members}) != len(members):
            raise ApplianceDataError(f"the {kind} checklist names a member's {key} twice")
    return members


def _appliance_addresses(config: dict[str, Any]) -> set[str]:
    return {i["address"] for i in config["hardware"]["interfaces"]}


def farm_from_data(data: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The farm as the appliance holds it, from the checklist's data (checked)."""
    vip = _address(_field(data, "vip", "farm"), "vip")
    prefix = _int(_field(data, "vip_prefix", "farm"), "vip_prefix", 1, 32)
    if lab_appliance.vip_interface(config["hardware"], vip) is None:
        raise ApplianceDataError(f"the VIP {vip} is on none of the appliance's networks")
    ports = _ports(_field(data, "ports", "farm"), "ports")
    check_ports = _ports(_field(data, "check_ports", "farm"), "check_ports")
    if not set(check_ports) <= set(ports):
        raise ApplianceDataError("check_ports must be ports of the farm")
    idle = _int(_field(data, "idle_timeout", "farm"), "idle_timeout", 1, 7 * 86400)
    scheduling = _field(data, "scheduling", "farm")
    if not isinstance(scheduling, str) or not any(
        w in scheduling.lower() for w in ("weight", "ratio")
    ):
        # the appliance splits new connections by weight; any other method is not modelled
        raise ApplianceDataError(
            "scheduling must be a weighted method (e.g. weighted-least-connections)"
        )
    snat = _field(data, "snat", "farm")
    if not isinstance(snat, bool):
        raise ApplianceDataError("snat must be true or false")
    snat_addresses: list[str] = []
    if snat:
        raw = _field(data, "snat_addresses", "farm")
        if not isinstance(raw, list) or not 1 <= len(raw) <= 16:
            raise ApplianceDataError("snat_addresses must list 1 to 16 addresses")
        snat_addresses = [_address(a, "snat_addresses") for a in raw]
        own = _appliance_addresses(config) | {vip}
        foreign = [a for a in snat_addresses if a not in own]
        if foreign:
            raise ApplianceDataError(
                f"SNAT address(es) {', '.join(foreign)} are not the appliance's "
                f"({', '.join(sorted(own))})"
            )
    if not isinstance(_field(data, "vendor", "farm"), str):
        raise ApplianceDataError("vendor must be a name")
    return {
        "vendor": data["vendor"],
        "vip": vip,
        "vip_prefix": prefix,
        "ports": ports,
        "check_ports": check_ports,
        "idle_timeout": idle,
        "scheduling": scheduling,
        "snat": snat,
        "snat_addresses": snat_addresses,
        "members": _members(_field(data, "members", "farm"), "farm"),
    }


# -- acting ----------------------------------------------------------------------------


def _enter_farm(box: LabAppliance, data: dict[str, Any]) -> None:
    farm = farm_from_data(data, box.read_config())

    def edit(config: dict[str, Any]) -> None:
        config["farm"] = farm
        config["admin"] = {m["name"]: "ready" for m in farm["members"]}

    box.change(edit)


def _revert_farm(box: LabAppliance, data: dict[str, Any]) -> None:
    vip = _address(_field(data, "vip", "farm-revert"), "vip")
    _ports(_field(data, "ports", "farm-revert"), "ports")
    _members(_field(data, "members", "farm-revert"), "farm-revert")
    _field(data, "vendor", "farm-revert")
    farm = box.read_config().get("farm")
    if farm and farm["vip"] != vip:
        raise ApplianceDataError(
            f"the farm to revert is on {vip}; the appliance's farm is on {farm['vip']}"
        )

    def edit(config: dict[str, Any]) -> None:
        config["farm"] = None
        config["admin"] = {}

    box.change(edit)


def _member_state(box: LabAppliance, data: dict[str, Any]) -> None:
    name = _field(data, "member", "member-state")
    address = _address(_field(data, "address", "member-state"), "address")
    state = _field(data, "state", "member-state")
    _field(data, "vendor", "member-state")
    if state not in lab_appliance.ADMIN_STATES:
        raise ApplianceDataError(f"state must be one of {', '.join(lab_appliance.ADMIN_STATES)}")
    farm = box.read_config().get("farm")
    if not farm:
        raise ApplianceDataError("a member's state is asked for, but no farm is entered")
    if not any(m["name"] == name and m["address"] == address for m in farm["members"]):
        raise ApplianceDataError(
            "the member named is not a real server of the farm (name and address)"
        )

    def edit(config: dict[str, Any]) -> None:
        config.setdefault("admin", {})[name] = state

    box.change(edit)


def _routing(box: LabAppliance, data: dict[str, Any]) -> None:
    enable = _field(data, "enable", "routing")
    if not isinstance(enable, bool):
        raise ApplianceDataError("enable must be true or false")
    _field(data, "vendor", "routing")
    if enable:
        backend = _address(_field(data, "backend_address", "routing"), "backend_address")
        if backend not in _appliance_addresses(box.read_config()):
            raise ApplianceDataError(f"the back-end address {backend} is not the appliance's")
        front_ends = _field(data, "front_ends", "routing")
        if not isinstance(front_ends, list) or not front_ends:
            raise ApplianceDataError(
                "front_ends must list the front ends whose gateway is the appliance"
            )
        for i, fe in enumerate(front_ends):
            if not isinstance(fe, dict):
                raise ApplianceDataError(f"front_ends[{i}] is not an object")
            _default_gateway(box.topo, fe, backend, i)
    box.change(lambda config: config.__setitem__("routing", enable))


def _default_gateway(topo: Topology, fe: dict[str, Any], gateway: str, i: int) -> None:
    """The FE's default gateway is the appliance's back-end address (as its admin sets it)."""
    name = _field(fe, "name", f"routing (front_ends[{i}])")
    address = _address(
        _field(fe, "address", f"routing (front_ends[{i}])"), f"front_ends[{i}].address"
    )
    host = next((h for h in topo.hosts if h.name == name and h.address == address), None)
    if host is None:
        raise ApplianceDataError(f"front_ends[{i}] is no host of the lab (name and address)")
    ip("route", "replace", "default", "via", gateway, ns=topo.ns(host.name))


ACTIONS = {
    "farm": _enter_farm,
    "farm-revert": _revert_farm,
    "member-state": _member_state,
    "routing": _routing,
}


def act(box: LabAppliance, question: dict[str, Any]) -> str | None:
    """Carry out the question's checklist at the appliance; the answer, or None when
    the question is not for the appliance's operator."""
    checklist = question.get("checklist")
    if checklist is None:
        return None
    if not isinstance(checklist, dict):
        raise ApplianceDataError("the question's checklist is not an object")
    data = checklist.get("data")
    if data is None:
        return None  # a person's checklist (no data): not the appliance's
    if not isinstance(data, dict):
        raise ApplianceDataError("the checklist's data is not an object")
    if data.get("kind") not in ACTIONS:
        return None  # someone else's work: the client tests, a DNS change
    choices = question.get("choices") or []
    if "done" not in choices:
        raise ApplianceDataError("the question does not offer 'done'")
    ACTIONS[data["kind"]](box, data)
    return "done"


def run_operator(
    channel: Channel,
    stop_event: threading.Event,
    by: str = "lab-operator",
    *,
    appliance: LabAppliance,
    interval: float = 0.2,
    max_seconds: float = MAX_RUN_SECONDS,
) -> list[dict[str, Any]]:
    """Answer the run's questions until `stop_event` is set (or `max_seconds`): each
    question (by id) is acted on once. A checklist the appliance cannot carry out is
    answered "abort" (when offered) and the ApplianceDataError raised. Returns what was
    answered: [{id, kind, answer}]."""
    handled: list[dict[str, Any]] = []
    seen: set[str] = set()
    deadline = time.monotonic() + min(max_seconds, MAX_RUN_SECONDS)
    while not stop_event.is_set() and time.monotonic() < deadline:
        question = channel.waiting()
        qid = str(question.get("id", "")) if isinstance(question, dict) else ""
        if question and qid and qid not in seen:
            seen.add(qid)
            try:
                answer = act(appliance, question)
            except LabError:
                if "abort" in (question.get("choices") or []):
                    channel.answer("abort", by)
                raise
            if answer is not None:
                channel.answer(answer, by)
                data = (question.get("checklist") or {}).get("data") or {}
                handled.append({"id": qid, "kind": data.get("kind"), "answer": answer})
        stop_event.wait(interval)
    return handled
