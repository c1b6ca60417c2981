"""configure-lb: the farm on the load balancer, read back, and reached from every side.

lb.apply_farm (target: the LB host, or the operator for the manual driver)
  Reads: the LB's farm as the LB reports it (driver.read_farm).
  Changes: installs the farm the pool file and profile describe (every profile
  port on the VIP, checks on the check ports that every other port follows,
  the idle timeout, weighted least connections, the members and weights,
  SNAT), through the pool file's driver. A farm on the LB that ocsscale did
  not write and that differs from the plan is shown as a diff and refused,
  never overwritten silently.
  Undo: journaled before the change: the previous config byte-identical, the
  service state, the VIP as it was (driver.undo_for); revert puts it back and
  verify_reverted reads it back (the VIP silent if it was).
  Proof: verify reads the farm back from the LB: it must equal the plan.

lb.readback (check): the LB's view equals the plan, and every member is up in
  the LB's own view (a bounded wait for the first health checks).

lb.reach (check): from one host, a TCP connection to the VIP on each port
  (default every profile port; the FEs' hairpin step names 5061, 444, 443).
  Each port is required or optional as the pool file (else the profile) says
  (config.profiles.port_requirement): a required port must answer; an optional
  one that answers is shown, one refused is information, never a failure (a
  packet-forwarding appliance passes the FE's refusal through as a reset); a
  port the pool file calls absent is not probed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from ipaddress import ip_interface
from typing import Any

from ..config.profiles import port_requirement
from ..errors import CheckFailed, StepFailed, UndoRecordError, UsageError
from ..providers.lb import driver_for
from ..providers.lb.base import DriverContext, FarmSpec, LbDriver, view_diff
from ..providers.lb.vendors import plan_words
from . import undo_shape as shape
from .base import Action, Change, Context, Json, register
from .probing import known_host, required_text, vantage

UP_WAIT = 20.0  # seconds for every member's first good check rounds


def lb_driver(ctx: Context) -> LbDriver:
    return driver_for(
        DriverContext(
            pool=ctx.pool,
            profile=ctx.profile,
            host=ctx.host,
            operator=ctx.operator,
            emit=lambda kind, data: ctx.emit(kind, data),
        )
    )


def planned_farm(ctx: Context) -> FarmSpec:
    return FarmSpec.from_pool(ctx.pool, ctx.profile)


def lb_targets(ctx: Context) -> list[str]:
    lb = ctx.pool.load_balancer
    if lb.driver.kind == "manual":
        return []
    if lb.host is None:
        raise UsageError(
            f"the {lb.driver.kind} driver needs load_balancer.host: the Linux host the "
            "load balancer runs on"
        )
    return [lb.host.name]


def lb_target_label(ctx: Context) -> str:
    names = lb_targets(ctx)
    return names[0] if names else f"lb ({ctx.pool.load_balancer.driver.kind})"


def front_end_arg(ctx: Context, args: Mapping[str, Any], action: str) -> Any:
    """The pool file's front end that the step's `fe` argument names."""
    found = {fe.name: fe for fe in ctx.pool.front_ends}
    fe = found.get(str(args.get("fe") or ""))
    if fe is None:
        raise UsageError(f"{action}: 'fe' must name a front end ({', '.join(found)})")
    return fe


def wait_members_up(driver: LbDriver, names: list[str], timeout: float = UP_WAIT) -> dict[str, Any]:
    """Every named member up on every port in the LB's view, or CheckFailed naming who is not."""
    deadline = time.monotonic() + timeout
    while True:
        stats = driver.stats()
        down = [n for n in names if n not in stats or not stats[n].up_everywhere()]
        unknown = all(s.health == "unknown" for s in stats.values()) if stats else True
        if not down or unknown:
            return {n: s.to_json() for n, s in stats.items()}
        if time.monotonic() > deadline:
            shown = ", ".join(
                f"{n} ({stats[n].health}, {stats[n].admin})" if n in stats else f"{n} (absent)"
                for n in down
            )
            raise CheckFailed(
                f"the load balancer reports member(s) not up after {timeout:.0f} s: {shown}; "
                "check that every front end answers on the check ports from the LB"
            )
        time.sleep(0.3)


def _linux_farm_undo(rec: Mapping[str, Any]) -> None:
    """The record of providers/lb/linuxhost.py `undo_for` (engine, haproxy)."""
    shape.text(rec, "host")
    vip = shape.text(rec, "vip")
    try:
        ip_interface(vip or "")
    except ValueError:
        raise UndoRecordError("'vip' is not an address with its prefix") from None
    shape.text(rec, "vip_interface", optional=True)
    for path, data in shape.obj(rec, "files").items():
        if not path.startswith("/") or len(path) > shape.MAX_TEXT or not path.isprintable():
            raise UndoRecordError("'files' names a file that is not an absolute path")
        shape.within("files", lambda d: shape.b64({"content": d}, "content", optional=True), data)
    shape.flag(rec, "active")
    shape.flag(rec, "vip_present")


def _manual_farm_undo(rec: Mapping[str, Any]) -> None:
    """The record of providers/lb/manual.py `undo_for`: the farm its check reaches."""
    shape.text(rec, "vendor", optional=True)
    farm = shape.obj(rec, "farm")
    shape.within("farm", lambda f: shape.address(f, "vip"), farm)
    ports = farm.get("ports")
    if not isinstance(ports, list) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports
    ):
        raise UndoRecordError("in 'farm': 'ports' is not a list of port numbers")


#: driver kind -> the shape of its undo record (another driver's: an object)
_FARM_UNDO = {"engine": _linux_farm_undo, "haproxy": _linux_farm_undo, "manual": _manual_farm_undo}


@register
class LbApplyFarm(Action):
    """Install the planned farm through the pool file's driver (module docstring)."""

    name = "lb.apply_farm"

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.farm = planned_farm(ctx)
        self.label = lb_target_label(ctx)

    def targets(self) -> list[str]:
        return lb_targets(self.ctx)

    def _summary(self, extra: str = "") -> str:
        f = self.farm
        driver = self.ctx.pool.load_balancer.driver
        members = ", ".join(f"{m.name} ({m.address}, weight {m.weight})" for m in f.members)
        # the manual driver's appliance, in its own words (the checklist the operator gets)
        by_hand = f"; {plan_words(driver.vendor, f)}" if driver.kind == "manual" else ""
        return (
            f"{driver.kind} farm {f.name} on {f.vip}: ports "
            f"{', '.join(map(str, f.ports))}; checks on {', '.join(map(str, f.check_ports))}; "
            f"idle {f.idle_timeout} s; wlc; SNAT {', '.join(f.snat_addresses)}; {members}"
            f"{by_hand}{extra}"
        )

    def describe(self) -> list[Change]:
        return [Change("change", self.label, self._summary())]

    def read(self) -> Json:
        return lb_driver(self.ctx).read_farm()

    def diff(self, current: Json) -> list[Change]:
        if current.get("manual"):
            return self.describe()
        view = current.get("view")
        lines = view_diff(self.farm.view(), view)
        if not lines:
            return []
        if view is not None and not current.get("ours", False):
            raise CheckFailed(
                f"{self.label}: the load balancer already serves a farm that ocsscale did not "
                "write and that differs from the plan: " + "; ".join(lines[:8]),
                hint="remove that farm by hand (or make it match), then run configure-lb again",
            )
        extra = "" if view is None else " (changes: " + "; ".join(lines[:6]) + ")"
        return [Change("add" if view is None else "change", self.label, self._summary(extra))]

    def undo_record(self, current: Json) -> Json:
        return lb_driver(self.ctx).undo_for(current)

    def apply(self, current: Json) -> Json:
        return lb_driver(self.ctx).apply_farm(self.farm, current)

    def verify(self, evidence: Json) -> Json:
        driver = lb_driver(self.ctx)
        current = driver.read_farm()
        if current.get("manual"):
            return {**evidence, "readback": "by probes (manual driver)"}
        lines = view_diff(self.farm.view(), current.get("view"))
        if lines:
            raise StepFailed(
                f"{self.label}: the farm read back from the load balancer differs from the "
                "plan: " + "; ".join(lines)
            )
        return {**evidence, "readback": current.get("view")}

    def check_undo(self, undo: Json) -> None:
        rec = shape.record(undo)
        kind = self.ctx.pool.load_balancer.driver.kind
        # the revert is the pool file's driver's: a record another driver made
        # would be put back by the wrong one
        if shape.text(rec, "driver") != kind:
            raise UndoRecordError(f"'driver' is not {kind}, the pool file's load-balancer driver")
        check = _FARM_UNDO.get(kind)
        if check is not None:
            check(rec)

    def revert(self, undo: Json) -> Json:
        return lb_driver(self.ctx).revert(undo)

    def verify_reverted(self, undo: Json) -> Json:
        return lb_driver(self.ctx).verify_reverted(undo)


@register
class LbReadback(Action):
    """The LB's own view equals the plan and every member is up (module docstring)."""

    name = "lb.readback"
    read_only = True

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.farm = planned_farm(ctx)
        self.label = lb_target_label(ctx)

    def targets(self) -> list[str]:
        return lb_targets(self.ctx)

    def describe(self) -> list[Change]:
        return [
            Change(
                "check",
                self.label,
                "the load balancer's own view of the farm equals the plan; every member up",
            )
        ]

    def apply(self, current: Json) -> Json:
        driver = lb_driver(self.ctx)
        farm = driver.read_farm()
        lines = [] if farm.get("manual") else view_diff(self.farm.view(), farm.get("view"))
        if lines:
            raise CheckFailed(f"{self.label}: drift from the plan: " + "; ".join(lines))
        members = wait_members_up(driver, [m.name for m in self.farm.members])
        self.ctx.emit(
            "findings",
            {
                "title": f"{self.label}: members in the load balancer's view",
                "findings": [
                    {
                        "check": name,
                        "ok": m["health"] != "down",
                        "proven": m["health"] == "up",
                        "message": f"{m['health']}, {m['admin']}",
                    }
                    for name, m in members.items()
                ],
            },
        )
        return {"view": farm.get("view"), "members": members}


@register
class LbReach(Action):
    """From `from`, a TCP connection to the VIP on each port (module docstring)."""

    name = "lb.reach"
    parallel = True
    read_only = True

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.source = required_text(args, "from", self.name)
        known_host(ctx.pool, self.source, self.name)
        ports = args.get("ports") or ctx.profile.ports
        if not isinstance(ports, list):
            raise UsageError(f"{self.name}: 'ports' must be a list of TCP ports")
        try:
            wanted = [int(p) for p in ports]
        except (TypeError, ValueError):
            raise UsageError(f"{self.name}: 'ports' must be a list of TCP ports") from None
        # what the pool file (else the profile) says of each port: a port the pool
        # calls absent is not probed, an optional one may be refused
        requirement = {p: port_requirement(ctx.pool, ctx.profile, p) for p in wanted}
        self.ports = [p for p in wanted if requirement[p] != "absent"]
        self.required = [p for p in self.ports if requirement[p] == "required"]
        self.optional = [p for p in self.ports if requirement[p] == "optional"]
        self.vip = str(ctx.pool.load_balancer.vip.ip)

    def targets(self) -> list[str]:
        return [self.source]

    def describe(self) -> list[Change]:
        summary = f"TCP to the VIP {self.vip} on {', '.join(map(str, self.required)) or 'no port'}"
        if self.optional:
            summary += (
                f"; optional {', '.join(map(str, self.optional))} "
                "(shown when they answer, a refusal is information)"
            )
        return [Change("check", self.source, summary)]

    def _finding(self, r: dict[str, Any]) -> dict[str, Any]:
        check = f"port {r['port']}" + (" (optional)" if r["requirement"] == "optional" else "")
        if r["ok"]:
            return {"check": check, "ok": True, "message": "accepted"}
        if r["requirement"] == "required":
            return {"check": check, "ok": False, "message": r["detail"]}
        note = self.ctx.profile.port_note(r["port"])
        message = f"optional port, not answering: {r['detail']}" + (f" ({note})" if note else "")
        return {"check": check, "ok": True, "proven": False, "info": True, "message": message}

    def apply(self, current: Json) -> Json:
        where = vantage(self.ctx, self.source)
        results = []
        for port in self.ports:
            ok, why = where.tcp_check(self.vip, port, 5.0)
            requirement = "required" if port in self.required else "optional"
            results.append({"port": port, "requirement": requirement, "ok": ok, "detail": why})
        self.ctx.emit(
            "findings",
            {
                "title": f"{self.source} -> VIP {self.vip}",
                "findings": [self._finding(r) for r in results],
            },
        )
        failed = [r for r in results if not r["ok"] and r["requirement"] == "required"]
        if failed:
            raise CheckFailed(
                f"{self.source}: the VIP {self.vip} refused or dropped "
                f"{len(failed)} of {len(self.required)} required port(s): "
                + "; ".join(f"{r['port']}: {r['detail']}" for r in failed[:5])
            )
        return {
            "from": self.source,
            "vip": self.vip,
            "required": self.required,
            "optional": self.optional,
            "optional_answering": [
                r["port"] for r in results if r["ok"] and r["port"] in self.optional
            ],
            "optional_not_answering": [
                r["port"] for r in results if not r["ok"] and r["port"] in self.optional
            ],
            "ports": results,
        }
