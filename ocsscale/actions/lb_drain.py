"""cutover: restart a front end's services with the load balancer's traffic drained off it.

lb.drain_restart (targets: the FE and the LB host; steps of other hosts that
touch the same LB host therefore never run beside it, so the FEs restart one
at a time; args: fe, drain_timeout, up_timeout, services, fe_restart =
drained | flush-only, on_timeout = fail | restart)
  Reads: the member's admin state and sessions at the LB (driver.stats), and
  the services `host.restart_services` would restart on the FE.
  Changes: sets the member to drain at the LB (new connections go to the other
  members, the ones open finish); waits, at most `drain_timeout` seconds,
  until the LB reports no current session on it (at the timeout, `on_timeout:
  fail` fails the step with nothing restarted; `restart`, the cutover's, goes
  on and cuts the sessions still open: Communicator holds its TLS session for
  hours, and once the pool name has moved a wait must not fail the phase on
  its own; the sessions cut are counted per port, shown and journaled);
  restarts its services (as
  `host.restart_services`, the same services in the same order); waits, at
  most `up_timeout` seconds, until the LB's health check sees it up on every
  port; sets it ready again. Any failure or interrupt after the drain sets it
  ready before the error goes on: a drained member is never left behind (a
  restart that failed leaves it to the LB's health check, which keeps traffic
  off a member that does not answer).
  Undo: journaled before the drain: the member and its admin state then;
  revert sets it ready (a run killed mid-drain is undone by rollback, and a
  run resumed after it ends ready). The restart itself has nothing to put back.
  Proof: the LB reports the member up and ready again; every restarted service
  was read back running by the transport.
  A member in maint is refused (someone took it out on purpose: the cutover
  would put it back in service). The manual driver has no API to drain or to
  read sessions: a warning, then a plain restart. `fe_restart: flush-only`
  (the pool file's `cutover.fe_restart`) changes nothing: no drain, no restart,
  the FE's DNS cache was flushed by the step before.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from ..errors import CheckFailed, StepFailed
from . import undo_shape as shape
from .args import Text
from .base import Action, Change, Context, Json, register
from .host import RestartServices
from .lb import FeStepArgs, front_end_arg, lb_target_label, lb_targets, wait_members_up
from .plugin_ports import lb_driver

DRAIN_TIMEOUT = 120.0  # seconds: the requests in flight finish; held sessions may not
UP_TIMEOUT = 60.0  # seconds for the LB's health check to see the restarted FE up
POLL = 0.3
WAIT_LINE_EVERY = 2.0  # seconds between two live lines of a drain


_DrainSeconds = Annotated[float, Field(gt=0, le=3600, description="seconds in 1..3600")]


class DrainArgs(FeStepArgs):
    drain_timeout: _DrainSeconds = DRAIN_TIMEOUT
    up_timeout: _DrainSeconds = UP_TIMEOUT
    #: drained: restart the FE's services; flush-only: only flush its resolver
    fe_restart: Literal["drained", "flush-only"] = Field(
        "drained", description="one of drained, flush-only"
    )
    #: when held sessions outlast the drain: fail, or restart anyway (cutting them)
    on_timeout: Literal["fail", "restart"] = Field("fail", description="one of fail, restart")
    #: the services to restart instead of the profile's
    services: list[Text] | None = Field(default=None, max_length=64)


def _per_port(active: Mapping[Any, int]) -> str:
    return ", ".join(f"{p}: {n}" for p, n in sorted(active.items()) if n)


@register
class LbDrainRestart(Action):
    """Drain at the LB, restart the FE's services, back to ready (module docstring)."""

    name = "lb.drain_restart"
    phases = ("validate-lb", "cutover")
    Args = DrainArgs
    params: DrainArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.fe = front_end_arg(ctx, self.params.fe, self.name).name
        self.drain_timeout = self.params.drain_timeout
        self.up_timeout = self.params.up_timeout
        self.flush_only = self.params.fe_restart == "flush-only"
        self.cut_on_timeout = self.params.on_timeout == "restart"
        restart_args: dict[str, Any] = {"host": self.fe}
        if self.params.services is not None:
            restart_args["services"] = list(self.params.services)
        self.restart = RestartServices(ctx, restart_args)
        # no drain at an LB that cannot set a member's state itself: a plain restart
        self.manual = not lb_driver(ctx).capabilities.drain
        self.label = lb_target_label(ctx)

    def targets(self) -> list[str]:
        return [self.fe, *lb_targets(self.ctx)]

    def _how(self) -> str:
        if self.manual:
            return (
                "the manual driver cannot drain at the load balancer: a plain restart, "
                f"requests on {self.fe} may fail meanwhile"
            )
        then = "restarted anyway, the sessions left cut" if self.cut_on_timeout else "fails"
        return (
            f"drained at {self.label} first (until no session is left, at most "
            f"{self.drain_timeout:.0f} s, then {then}), ready again once {self.label} sees it up"
        )

    def _not_restarted(self) -> str:
        return (
            f"not restarted (fe_restart: flush-only): its DNS cache is flushed, its services "
            f"reach {self.ctx.pool.pool.fqdn} at the VIP when they next look it up"
        )

    def _with_drain(self, changes: list[Change]) -> list[Change]:
        return [
            c if c.kind == "none" else Change(c.kind, c.target, f"{c.summary}; {self._how()}")
            for c in changes
        ]

    def describe(self) -> list[Change]:
        if self.flush_only:
            return [Change("none", self.fe, self._not_restarted())]
        return self._with_drain(self.restart.describe())

    def read(self) -> Json:
        if self.flush_only:  # nothing to read: the step changes nothing
            self._findings([("restart", True, True, self._not_restarted())], info=True)
            return {"flush_only": True}
        services = self.restart.read()
        if self.manual or not self.restart.diff(services):
            # nothing to drain for: no API, or no service to restart (step unchanged)
            return {"admin": None, "services": services}
        member = lb_driver(self.ctx).stats().get(self.fe)
        if member is None:
            raise CheckFailed(f"{self.label}: the load balancer has no member {self.fe}")
        if member.admin == "maint":
            raise CheckFailed(
                f"{self.fe} is in maint at {self.label}: the cutover restarts it drained and "
                "puts it back ready, which would end a maintenance someone started",
                hint=f"finish that maintenance and set {self.fe} ready, then run again",
            )
        return {"admin": member.admin, "services": services}

    def diff(self, current: Json) -> list[Change]:
        if current.get("flush_only"):
            return []
        return self._with_drain(self.restart.diff(current["services"]))

    def undo_record(self, current: Json) -> Json:
        restart = self.restart.undo_record(current["services"])
        return {
            "member": self.fe,
            "lb": self.label,
            "drained": not self.manual,
            "admin_before": current["admin"],
            "restarted": restart["restarted"],
        }

    # -- apply ------------------------------------------------------------------------
    def apply(self, current: Json) -> Json:
        if self.manual:
            self._findings([("drain", True, False, self._how())])
            evidence = self.restart.apply(current["services"])
            return {"fe": self.fe, "drained": False, "restart": evidence}
        driver = lb_driver(self.ctx)
        # counted as the drain begins: read after it, a session that ends meanwhile is missed
        at_drain = self._sessions(driver)
        began = time.monotonic()
        # journaled before the drain, drain and ready under a signal shield: whatever
        # happens (Ctrl-C included) the member is not left drained, or, killed, the
        # record makes the next command set it ready first
        with self.ctx.faults.held(
            "member-drained",
            self.fe,
            f"{self.fe} is drained at {self.label} (drained restart)",
            {"member": self.fe, "drained": True},
            put=lambda: driver.set_member(self.fe, "drain"),
            take_away=lambda: driver.set_member(self.fe, "ready"),
        ):
            cut = self._wait_drained(driver, began)
            drained = time.monotonic()
            restart = self.restart.apply(current["services"])
            restarted = time.monotonic()
            members = wait_members_up(driver, [self.fe], timeout=self.up_timeout)
            up = time.monotonic()
        if cut:
            drain = (
                f"{at_drain} session(s) on it when drained; after {drained - began:.1f} s "
                f"{sum(cut.values())} still open, cut by the restart ({_per_port(cut)})"
            )
        else:
            drain = (
                f"{at_drain} session(s) on it when drained, none left "
                f"{drained - began:.1f} s after the drain began"
            )
        self._findings(
            [
                ("drain", True, True, drain, bool(cut)),
                ("restart", True, True, ", ".join(restart["restarted"]) or "nothing to restart"),
                ("up", True, True, f"{self.label} sees it up {up - restarted:.1f} s after"),
                ("ready", True, True, "back in the farm"),
            ]
        )  # fmt: skip
        return {
            "fe": self.fe,
            "drained": True,
            "sessions_at_drain": at_drain,
            "drain_s": round(drained - began, 3),
            # sessions still open at the drain's timeout, cut by the restart (per port)
            "sessions_cut": sum(cut.values()),
            "sessions_cut_by_port": {str(p): n for p, n in sorted(cut.items())},
            "up_after_restart_s": round(up - restarted, 3),
            "member_when_up": members.get(self.fe),
            "restart": restart,
        }

    def _sessions(self, driver: Any) -> int:
        member = driver.stats().get(self.fe)
        return 0 if member is None else member.total_active

    def _wait_drained(self, driver: Any, began: float) -> dict[int, int]:
        """Until no session is left: {} then; at the timeout, with on_timeout
        restart, the sessions still open per port (the restart cuts them)."""
        deadline = began + self.drain_timeout
        told = 0.0
        while True:
            member = driver.stats().get(self.fe)
            if member is None or member.total_active == 0:
                return {}
            now = time.monotonic()
            if now - told >= WAIT_LINE_EVERY:  # the live line: who it is waiting for
                told = now
                then = "then restarted anyway" if self.cut_on_timeout else "then it fails"
                self.ctx.emit(
                    "waiting",
                    {
                        "what": f"the sessions on {self.fe}",
                        "left": max(0.0, deadline - now),
                        "until": "",
                        "line": f"draining {self.fe} at {self.label}: {member.total_active} "
                        f"session(s) open ({_per_port(member.active)}); at most "
                        f"{max(0.0, deadline - now):.0f} s more, {then}",
                    },
                )
            if time.monotonic() > deadline:
                if self.cut_on_timeout:
                    return {int(p): int(n) for p, n in member.active.items() if n}
                ports = _per_port(member.active)
                raise StepFailed(
                    f"{self.fe} still has {member.total_active} session(s) at {self.label} "
                    f"({ports}) after {self.drain_timeout:.0f} s of drain: its services were not "
                    "restarted, and it is ready again",
                    hint="clients that hold their connection keep a session open: raise the "
                    "step's drain_timeout in the playbook, or wait for a quieter time, then run "
                    "again",
                )
            time.sleep(POLL)

    def _findings(self, rows: list[tuple[Any, ...]], info: bool = False) -> None:
        """Rows of (check, ok, proven, message[, info]): info marks what the
        operator should know without it being a failure (sessions cut)."""
        what = "not restarted" if self.flush_only else f"restart drained at {self.label}"
        self.ctx.emit(
            "findings",
            {
                "title": f"{self.fe}: {what}",
                "findings": [
                    {
                        "check": row[0],
                        "ok": row[1],
                        "proven": row[2],
                        "message": row[3],
                        "info": info or (len(row) > 4 and bool(row[4])),
                    }
                    for row in rows
                ],
            },
        )

    def verify(self, evidence: Json) -> Json:
        if self.manual:
            return evidence
        member = lb_driver(self.ctx).stats().get(self.fe)
        if member is None or member.admin != "ready":
            state = "absent" if member is None else member.admin
            raise StepFailed(f"{self.label}: {self.fe} is {state} after its restart, not ready")
        return {**evidence, "admin_after": member.admin}

    # -- undo -------------------------------------------------------------------------
    def restore_fault(self, kind: str, restore: Json) -> Json:
        """A drained restart cut short: the member ready again at the LB."""
        driver = lb_driver(self.ctx)
        member = driver.stats().get(restore["member"])
        if member is None:
            return {"member": restore["member"], "absent": True}  # the farm is gone
        if member.admin != "ready":
            driver.set_member(restore["member"], "ready")
        after = driver.stats().get(restore["member"])
        if after is not None and after.admin != "ready":
            raise StepFailed(f"{self.label}: {restore['member']} is still {after.admin}")
        return {"member": restore["member"], "was": member.admin, "admin": "ready"}

    def check_undo(self, undo: Json) -> None:
        rec = shape.record(undo)
        if shape.flag(rec, "drained"):
            shape.same(rec, "member", self.fe, "the step's front end")

    def revert(self, undo: Json) -> Json:
        if not undo.get("drained"):
            return {"nothing_to_put_back": True}
        driver = lb_driver(self.ctx)
        member = driver.stats().get(undo["member"])
        if member is None:
            return {"member": undo["member"], "absent": True}  # the farm is gone: nothing drained
        if member.admin != "ready":
            driver.set_member(undo["member"], "ready")
        return {"member": undo["member"], "was": member.admin, "admin": "ready"}

    def revert_targets(self, undo: Json) -> list[str]:
        return lb_targets(self.ctx) if undo.get("drained") else []

    def verify_reverted(self, undo: Json) -> Json:
        if not undo.get("drained"):
            return None
        member = lb_driver(self.ctx).stats().get(undo["member"])
        if member is not None and member.admin != "ready":
            raise StepFailed(f"{self.label}: {undo['member']} is still {member.admin}, not ready")
        return {"member": undo["member"], "admin": None if member is None else member.admin}
