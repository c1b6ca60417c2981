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
from typing import Any

from pydantic import Field

from ..config.profiles import port_requirement
from ..errors import CheckFailed, StepFailed, UsageError
from ..providers.lb.base import FarmSpec, LbDriver, farm_drift
from . import undo_shape as shape
from .args import ActionArgs, HostName, Port
from .base import Action, Change, Context, Json, register
from .plugin_ports import lb_driver
from .probing import known_host, vantage

UP_WAIT = 20.0  # seconds for every member's first good check rounds


def planned_farm(ctx: Context) -> FarmSpec:
    return FarmSpec.from_pool(ctx.pool, ctx.profile)


def lb_targets(ctx: Context) -> list[str]:
    """The hosts the pool file's driver logs in to (none for one a person drives)."""
    return lb_driver(ctx).targets()


def lb_target_label(ctx: Context) -> str:
    names = lb_targets(ctx)
    return names[0] if names else f"lb ({ctx.pool.load_balancer.driver.kind})"


class FeStepArgs(ActionArgs):
    #: the front end of the pool file the step is for
    fe: HostName


def front_end_arg(ctx: Context, name: str, action: str) -> Any:
    """The pool file's front end that the step's `fe` argument names."""
    found = {fe.name: fe for fe in ctx.pool.front_ends}
    fe = found.get(name)
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
        driver = lb_driver(self.ctx)
        members = ", ".join(f"{m.name} ({m.address}, weight {m.weight})" for m in f.members)
        # a driver a person follows adds its checklist's gist, in the appliance's words
        note = driver.plan_note(f)
        by_hand = f"; {note}" if note else ""
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
        if not lb_driver(self.ctx).capabilities.read_back:
            return self.describe()
        view = current.get("view")
        lines = farm_drift(self.farm.view(), current)
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
        if not driver.capabilities.read_back:
            return {**evidence, "readback": f"by probes ({driver.kind} driver)"}
        lines = farm_drift(self.farm.view(), current)
        if lines:
            raise StepFailed(
                f"{self.label}: the farm read back from the load balancer differs from the "
                "plan: " + "; ".join(lines)
            )
        return {**evidence, "readback": current.get("view")}

    def check_undo(self, undo: Json) -> None:
        # the pool file's driver checks it is its own record, of its shape
        lb_driver(self.ctx).check_undo(shape.record(undo))

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
        readable = driver.capabilities.read_back
        lines = farm_drift(self.farm.view(), farm) if readable else []
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


class ReachArgs(ActionArgs):
    source: HostName = Field(alias="from")
    #: the VIP's ports to connect to (default: the profile's)
    ports: list[Port] | None = Field(default=None, max_length=64)


@register
class LbReach(Action):
    """From `from`, a TCP connection to the VIP on each port (module docstring)."""

    name = "lb.reach"
    parallel = True
    read_only = True

    Args = ReachArgs
    params: ReachArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.source = self.params.source
        known_host(ctx.pool, self.source, self.name)
        wanted = list(self.params.ports or ctx.profile.ports)
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
