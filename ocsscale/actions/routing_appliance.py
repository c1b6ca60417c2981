"""routing.enable behind an appliance (load_balancer.driver: manual): the operator's steps.

The tool cannot drive the appliance (WebMux, F5, ...), so the walkthrough's
"enable routing between these two networks, but do not configure any VIPs"
becomes a checklist: routing on between the client network and the front ends'
network, each front end's default gateway the appliance's back-end address, no
VIP yet. Told with the same content as data (`{"kind": "routing", "enable":
true, ...}`, ISSUE18 spec), then the tool waits for the operator's "done".

Reads: from every front end, a TCP connect to the directory server (through the
appliance: the front ends are on the back-end network) and its IPv4 default
gateways (gateways.py). When every front end already reaches the directory
with the back-end address as its only gateway, there is nothing to do.
Changes: nothing by itself; the operator changes the appliance.
Undo: the revert checklist (`enable: false`, and each front end's gateway as it
was read before), and "done".
Proof: a "done" is never proof. verify connects from every front end to the
directory server on its port and reads each default gateway back: the
back-end address, and only it. verify_reverted: a front end that did not reach
the directory before the run does not reach it any more (a front end the admin
host cannot read at all is shown as not proven: it may reach it only through
the appliance).
"""

from __future__ import annotations

from typing import Any

from ..config.lb_settings import ManualSettings
from ..errors import CheckFailed, Declined, OcsscaleError, UndoRecordError, UsageError
from ..providers.lb.vendors import product, routing_checklist
from ..transports.gateways import default_gateways
from . import undo_shape as shape
from .base import Change, Context, Json
from .probing import vantage

CONNECT_TIMEOUT = 5.0  # seconds per front end's connect to the directory server


class ApplianceRouting:
    """The appliance half of routing.enable (see the module docstring)."""

    def __init__(self, ctx: Context, vip: str, backend: str) -> None:
        self.ctx = ctx
        lb = ctx.pool.load_balancer
        if not isinstance(lb.driver, ManualSettings):  # routing.enable asks for manual only
            raise UsageError(
                f"routing at an appliance needs the manual driver, not {lb.driver.kind}"
            )
        self.vendor_key = str(lb.driver.vendor)
        #: the product's name, for what a person reads ("WebMux", "F5 BIG-IP LTM")
        self.vendor = product(self.vendor_key)
        self.vip, self.backend = vip, backend
        self.vip_prefix = lb.vip.network.prefixlen
        self.backend_prefix = (
            lb.backend_address.network.prefixlen if lb.backend_address is not None else None
        )
        self.front_ends = [(fe.name, str(fe.address)) for fe in ctx.pool.front_ends]
        self.directory = ctx.pool.directory
        self.label = f"lb ({self.vendor}, by hand)"

    # -- what it says ------------------------------------------------------------
    def _fe_list(self) -> str:
        return ", ".join(f"{name} ({address})" for name, address in self.front_ends)

    def _checklist(self, enable: bool) -> tuple[list[str], dict[str, Any]]:
        """The vendor's own words (templates/lb-vendors/), with this pool's values."""
        lb = self.ctx.pool.load_balancer
        return routing_checklist(
            self.vendor_key,
            enable=enable,
            backend_address=(
                f"{self.backend}/{self.backend_prefix}" if self.backend_prefix else self.backend
            ),
            vip=lb.vip,
            front_ends=[{"name": n, "address": a} for n, a in self.front_ends],
        )

    def lines(self) -> list[str]:
        return self._checklist(True)[0]

    def data(self, enable: bool, before: dict[str, list[str]] | None = None) -> dict[str, Any]:
        return {
            **self._checklist(enable)[1],
            "kind": "routing",
            "vendor": self.vendor_key,
            "enable": enable,
            "backend_address": self.backend,
            "backend_prefix": self.backend_prefix,
            "vip": self.vip,
            "vip_prefix": self.vip_prefix,
            "front_ends": [
                {"name": name, "address": address}
                | ({"gateway_before": before.get(name)} if before is not None else {})
                for name, address in self.front_ends
            ],
            "directory": {
                "name": self.directory.name,
                "address": str(self.directory.address),
                "port": self.directory.port,
            },
        }

    def revert_lines(self, before: dict[str, list[str]]) -> list[str]:
        lines = self._checklist(False)[0]
        for name, address in self.front_ends:
            was = before.get(name)
            if was is not None and was != [self.backend]:
                shown = ", ".join(was) or "none"
                lines.append(
                    f"On {name} ({address}), set the default gateway back to {shown}, "
                    "as it was before this run."
                )
        return lines

    # -- the Action's half -------------------------------------------------------
    def targets(self) -> list[str]:
        return [name for name, _ in self.front_ends]

    def describe(self) -> list[Change]:
        told = [
            Change("change", self.label, f"operator: {line.rstrip('.')}") for line in self.lines()
        ]
        where = f"{self.directory.name} {self.directory.address}:{self.directory.port}"
        proofs = [
            Change(
                "check",
                name,
                f"TCP connect to {where} through the {self.vendor}; default gateway reads "
                f"{self.backend}",
            )
            for name, _ in self.front_ends
        ]
        return told + proofs

    def _look(self, name: str) -> dict[str, Any]:
        """One front end: does it reach the directory, and its default gateways
        (None with the reason when they cannot be read)."""
        where = vantage(self.ctx, name)
        address, port = str(self.directory.address), self.directory.port
        reaches, why = where.tcp_check(address, port, CONNECT_TIMEOUT)
        try:
            gateways: list[str] | None = default_gateways(where.host)
            unreadable = ""
        except OcsscaleError as exc:
            gateways, unreadable = None, exc.message
        return {
            "reaches_directory": reaches,
            "detail": why,
            "gateways": gateways,
            "gateway_error": unreadable,
        }

    def read(self) -> Json:
        return {"front_ends": {name: self._look(name) for name, _ in self.front_ends}}

    def _problems(self, seen: dict[str, Any]) -> list[str]:
        problems = []
        where = f"{self.directory.name} {self.directory.address}:{self.directory.port}"
        for name, look in seen.items():
            if not look["reaches_directory"]:
                problems.append(f"{name} does not reach {where}: {look['detail'] or 'no reason'}")
            if look["gateways"] is None:
                problems.append(f"{name}: {look['gateway_error']}")
            elif look["gateways"] != [self.backend]:
                shown = ", ".join(look["gateways"]) or "none"
                problems.append(f"{name}'s default gateway is {shown}, expected {self.backend}")
        return problems

    def diff(self, current: Json) -> list[Change]:
        return self.describe() if self._problems(current["front_ends"]) else []

    def undo_record(self, current: Json) -> Json:
        seen = current["front_ends"]
        return {
            "appliance": True,
            "vendor": self.vendor,
            "backend_address": self.backend,
            "reached_before": [n for n, look in seen.items() if look["reaches_directory"]],
            # None: unreadable before the change, so the revert names no gateway to restore
            "gateways_before": {n: look["gateways"] for n, look in seen.items()},
        }

    def apply(self, current: Json) -> Json:
        lines = self.lines()
        data = self.data(True)
        title = f"Enable routing on the {self.vendor}"
        self.ctx.emit("checklist", {"title": title, "steps": lines, "data": data})
        self.ctx.operator.tell(title, lines, data=data)
        answer = self.ctx.operator.ask(
            f"Is routing enabled on the {self.vendor}, with every front end's default "
            f"gateway {self.backend}?",
            ["done", "abort"],
        )
        if answer != "done":
            raise Declined("the operator aborted at the load balancer: nothing more was changed")
        return {"entered_by": "operator", "checklist": lines}

    def verify(self, evidence: Json) -> Json:
        seen = {name: self._look(name) for name, _ in self.front_ends}
        where = f"{self.directory.name} {self.directory.address}:{self.directory.port}"
        findings = []
        for name, look in seen.items():
            findings.append(
                {
                    "check": f"{name} -> {where}",
                    "ok": look["reaches_directory"],
                    "message": "connected through the load balancer"
                    if look["reaches_directory"]
                    else look["detail"] or "no connection",
                }
            )
            gateways = look["gateways"]
            findings.append(
                {
                    "check": f"{name} default gateway",
                    "ok": gateways == [self.backend],
                    "message": look["gateway_error"]
                    if gateways is None
                    else ", ".join(gateways) or "no default route",
                }
            )
        self.ctx.emit(
            "findings", {"title": f"routing through the {self.vendor}", "findings": findings}
        )
        problems = self._problems(seen)
        if problems:
            raise CheckFailed(
                f"after the operator's done, routing through the {self.vendor} does not hold: "
                + "; ".join(problems[:6])
            )
        return {**evidence, "front_ends": seen, "proven_by": "probes from every front end"}

    def check_undo(self, undo: Json) -> None:
        rec = shape.record(undo)
        shape.flag(rec, "appliance")
        shape.text(rec, "vendor")
        shape.same(rec, "backend_address", self.backend, "the pool file's backend_address")
        names = {name for name, _ in self.front_ends}
        if not set(shape.texts(rec, "reached_before")) <= names:
            raise UndoRecordError("'reached_before' names a host that is not a front end")
        before = shape.obj(rec, "gateways_before")
        for name, gateways in before.items():
            if name not in names:
                raise UndoRecordError("'gateways_before' names a host that is not a front end")
            if gateways is not None and not (
                isinstance(gateways, list) and all(isinstance(g, str) for g in gateways)
            ):
                raise UndoRecordError("'gateways_before' holds a value that is not a list")

    def revert(self, undo: Json) -> Json:
        before = {n: g for n, g in undo["gateways_before"].items() if g is not None}
        lines = self.revert_lines(before)
        data = self.data(False, before)
        title = f"Revert routing on the {undo.get('vendor') or self.vendor}"
        self.ctx.emit("checklist", {"title": title, "steps": lines, "data": data})
        self.ctx.operator.tell(title, lines, data=data)
        if self.ctx.operator.ask("Is routing back as it was?", ["done", "abort"]) != "done":
            raise Declined("the operator aborted the revert at the load balancer")
        return {"reverted_by": "operator", "checklist": lines}

    def verify_reverted(self, undo: Json) -> Json:
        reached = set(undo["reached_before"])
        address, port = str(self.directory.address), self.directory.port
        still: list[str] = []
        off: list[str] = []
        unreachable: dict[str, str] = {}
        for name, _ in self.front_ends:
            if name in reached:
                continue  # it reached the directory before the run: nothing to prove off
            try:
                where = vantage(self.ctx, name)
                default_gateways(where.host)  # the FE itself answers, readably
            except OcsscaleError as exc:
                # an admin host that reaches the FEs only through the appliance cannot
                # read them once routing is off: that proves nothing either way
                unreachable[name] = exc.message
                continue
            ok, _why = where.tcp_check(address, port, CONNECT_TIMEOUT)
            (still if ok else off).append(name)
        if still:
            raise CheckFailed(
                f"after the revert checklist, {', '.join(still)} still reach "
                f"{self.directory.name} {address}:{port}, which they did not before the run"
            )
        if unreachable:
            self.ctx.emit(
                "findings",
                {
                    "title": f"routing through the {self.vendor}, reverted",
                    "findings": [
                        {
                            "check": f"{name} -> {self.directory.name}",
                            "ok": True,
                            "proven": False,
                            "message": f"not proven: the front end cannot be read ({why})",
                        }
                        for name, why in unreachable.items()
                    ],
                },
            )
        return {"not_reaching": off, "unreadable": unreachable, "proven": not unreachable}
