"""failover-test: "stop the Front End service, or pull the network cable", measured.

lb.failover_drill (args: fe, mode = `service:PORT` | `link`)
  Refused while any other member is not up in the LB's view. A continuous
  client load runs through the VIP from the admin machine (SIP OPTIONS over
  TLS on the first check port, TLS handshakes on the others), and a few
  connections are held open to the VIP. Then the fault:
    service:PORT  the services behind that check port (profile check_services)
                  are stopped on the FE, over its transport;
    link          the FE's link is cut by the pool file's
                  load_balancer.failover.link_down_command, run on the admin
                  machine (never over the connection the tool uses to reach the
                  FE), or by the operator when no command is given.
  Measured: the time until the LB shows the member down on every port; the
  failed requests of the load sent before and after that moment (of those
  sent after it, none may fail; each window is a count of requests, not a
  time); whether the held connections to the other FEs survived. Then
  the fault is undone and the time until the member is back is measured.
  Behind an appliance whose own view cannot be read (the manual driver), both
  moments are measured from outside on the load itself (lb_drill_outside.py:
  `load_balancer.failover.detect_successes` requests in a row answered by the
  other FEs; the member answering again on every port), or end at the
  operator's answer that the appliance shows it, whichever comes first; the
  evidence says which (`detected_by`, `back_detected_by`).
  Undo (journaled first): start those services / bring the link up, so a run
  cut short mid-drill is put right by rollback. On Windows the stop is
  Stop-Service -Force, which stops the running services depending on it too:
  the record names them (`windows_running`) and the restore starts them again.

lb.failover_procedure (check): writes the walkthrough's "procedure for
  responding to a failed front end" for this pool, next to the journal
  (.ocsscale/failover-procedure.md), and shows it; with a pair of load
  balancers, the procedure for a failed load balancer follows it.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import CheckFailed, Declined, Refused, StepFailed, UndoRecordError, UsageError
from ..operator import OperatorUnavailable, Pending
from ..probes import socket_connector
from ..probes.basic import tls_hold
from ..probes.load import LoadRunner, LoadTarget, targets_for
from ..probes.stream import close_quietly
from ..secrets import child_environment
from ..transports.commands import sh_quote
from ..transports.windows_facts import service_reader, stop_order
from ..transports.winrm_windows import SERVICE_NAME
from . import undo_shape as shape
from .args import Text
from .base import Action, Change, Context, Json, register
from .lb import FeStepArgs, front_end_arg, lb_targets, wait_members_up
from .lb_drill_outside import OutsideView
from .lb_validate import identify
from .plugin_ports import lb_driver
from .probing import tls_options

LOAD_RATE = 80.0  # requests per second through the VIP during a drill
LOAD_LIMIT = 300.0  # seconds: the load stops by itself even if the drill hangs
REQUEST_TIMEOUT = 2.0  # each request of the drill's load
# Each window of the drill is a number of answered requests, not a time: the
# proof is the same whatever the rate or the machine's speed. A request belongs to
# the window in which it *started*: one sent to the member just before the LB took
# it out fails up to its own timeout later, and it was on the failed FE.
BEFORE_REQUESTS = 10  # the load works before the fault
AFTER_REQUESTS = 40  # started after the LB took the member out: none may fail
BACK_REQUESTS = 10  # started after the member was back on every port
WINDOW_LIMIT = 15.0  # seconds a window waits for its requests at most
HELD = 2  # connections held per front end, to prove established ones survive
POLL = 0.05


def _mode(value: Any, profile: Any) -> tuple[str, int | None]:
    text = str(value or "")
    if text == "link":
        return "link", None
    kind, _, port = text.partition(":")
    if kind == "service" and port.isdigit() and int(port) in profile.check_services:
        return "service", int(port)
    known = ", ".join(f"service:{p}" for p in profile.check_services)
    raise UsageError(f"lb.failover_drill: mode must be link or one of: {known or 'none'}")


class _Stages:
    """Seconds spent in each stage of a drill, for the evidence (where its time goes)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._at = time.monotonic()

    def lap(self, stage: str) -> None:
        now = time.monotonic()
        self.laps[stage] = round(now - self._at, 3)
        self._at = now


def _window(load: LoadRunner, label: str, requests: int) -> int:
    """Wait until `requests` requests started under `label` have ended (or
    WINDOW_LIMIT); how many have."""
    deadline = time.monotonic() + WINDOW_LIMIT
    while True:
        ended = int(load.snapshot().labels.get(label, {}).get("requests", 0))
        if ended >= requests or time.monotonic() >= deadline or load.done:
            return ended
        time.sleep(POLL)


def _alive(stream: Any) -> bool:
    """A held connection is alive while a read waits (EOF or an error: it was closed)."""
    renew = getattr(stream, "renew", None)
    if renew is not None:
        # a TLS stream's own budget ran out long ago: without a new one every read
        # times out before looking at the socket, and a closed connection reads as alive
        renew(1.0)
    try:
        stream.settimeout(0.05)  # a close by the LB has long arrived: no need to wait
        return bool(stream.recv(1)) or False
    except TimeoutError:
        return True
    except Exception:  # noqa: BLE001 - closed, reset: all mean "did not survive"
        return False


def cable_by_hand(ctx: Context, drill: str, name: str, address: str, restore: bool) -> None:
    """No link command in the pool file: the operator pulls (or plugs) the cable and
    says so; Declined when they stop the drill."""
    action = "plug the network cable of" if restore else "pull the network cable of"
    ctx.operator.tell(f"{drill}: {name}", [f"{action} {name} ({address}), or its switch port."])
    if ctx.operator.ask("Done?", ["done", "abort"]) != "done":
        raise Declined(f"the operator stopped the {drill}")


def run_link_command(template: str, name: str, address: str) -> None:
    """The pool file's link command for host `name`, run on the admin machine."""
    command = template.replace("{name}", sh_quote(name)).replace("{address}", sh_quote(address))
    # the pool file's command, with none of the credential variables it never needs,
    # in a session of its own: a Ctrl-C at the terminal reaches the whole foreground
    # process group, and must not kill a link-up half-way (the tool's own shield
    # lets the command finish, then takes the interrupt)
    done = subprocess.run(
        ["sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=child_environment(),
        start_new_session=True,
    )
    if done.returncode != 0:
        raise StepFailed(
            f"{name}: the link command exited {done.returncode}: "
            f"{done.stderr.strip()[:300] or 'no message'}"
        )


def vip_load(
    ctx: Context,
    targets: list[LoadTarget],
    identify_by: Callable[[Any], str | None] | None = None,
    observe: Any = None,
) -> LoadRunner:
    """A drill's client load through the VIP (the rate, bounds and labelling every
    drill uses: a request belongs to the window it started in)."""
    vip = str(ctx.pool.load_balancer.vip.ip)
    return LoadRunner(
        targets,
        rate=LOAD_RATE,
        duration=LOAD_LIMIT,
        tls=tls_options(ctx, vip),
        identify=identify_by or (lambda e: identify(e, ctx.pool)),
        timeout=REQUEST_TIMEOUT,
        label_at="start",
        observe=observe,
    )


def hold_vip(ctx: Context, count: int) -> dict[str, list[Any]]:
    """`count` connections held open to the VIP, by the FE that got each."""
    vip = str(ctx.pool.load_balancer.vip.ip)
    held: dict[str, list[Any]] = {}
    for _ in range(count):
        evidence, stream = tls_hold(
            vip,
            ctx.profile.check_ports[0],
            ctx.pool.pool.fqdn,
            tls=tls_options(ctx, vip),
            connect=socket_connector,
            source="admin",
        )
        if stream is not None:
            held.setdefault(identify(evidence, ctx.pool) or "?", []).append(stream)
    return held


class DrillArgs(FeStepArgs):
    #: link, or service:PORT of the profile's check_services (checked against it)
    mode: Text | None = None


@register
class LbFailoverDrill(Action):
    """One FE failed on purpose while clients keep working (module docstring)."""

    name = "lb.failover_drill"
    phases = ("failover-test",)
    Args = DrillArgs
    params: DrillArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.fe = front_end_arg(ctx, self.params.fe, self.name)
        self.mode, self.port = _mode(self.params.mode, ctx.profile)
        self.vip = str(ctx.pool.load_balancer.vip.ip)
        self.drill = ctx.pool.load_balancer.failover
        #: the load seen from outside, when the LB's own view cannot be read
        self._outside: OutsideView | None = None
        self._load_targets: list[str] = []
        #: how each moment was measured ("down", "up"), for the evidence
        self.detection: dict[str, dict[str, Any]] = {}

    # -- what it touches --------------------------------------------------------------
    def _services(self) -> list[str]:
        return self.ctx.profile.check_services[self.port].for_os(self.fe.os) if self.port else []

    def _what(self) -> str:
        if self.mode == "link":
            how = "its link down"
            if not self.drill.link_down_command:
                how += " (by the operator)"
            return how
        return f"stop {', '.join(self._services())} (behind check port {self.port})"

    def targets(self) -> list[str]:
        return lb_targets(self.ctx) + ([self.fe.name] if self.mode == "service" else [])

    def describe(self) -> list[Change]:
        return [
            Change(
                "change",
                self.fe.name,
                f"{self._what()} under a client load through {self.vip}; time until the LB "
                "takes it out of every port, failed requests, established connections to the "
                "other FEs; then restore it and time its return",
            )
        ]

    def read(self) -> Json:
        stats = lb_driver(self.ctx).stats()
        return {name: s.to_json() for name, s in stats.items()}

    def diff(self, current: Json) -> list[Change]:
        return self.describe()

    def undo_record(self, current: Json) -> Json:
        record: Json = {"fe": self.fe.name, "mode": self.mode, "services": self._services()}
        if self.mode == "service" and self.fe.os == "windows":
            # Stop-Service -Force stops the running services that depend on it too, and
            # Start-Service starts none of them: the restore starts each one again
            host = service_reader(self.ctx.host(self.fe.name), self.fe.name)
            found = [s for s in host.services(self._services()) if s.status == "Running"]
            record["windows_running"] = stop_order(found)
        return record

    # -- the fault --------------------------------------------------------------------
    def _local(self, template: str) -> None:
        run_link_command(template, self.fe.name, str(self.fe.address))

    def _windows_services(self, host: Any, restore: bool, record: Json | None) -> None:
        """Stop-Service -Force (its running dependants with it), or start the services
        and then the dependants that ran before (the record's `windows_running`), each
        with the start mode it has: the drill changes no start mode."""
        names = self._services()
        if restore:
            names = [*names, *reversed((record or {}).get("windows_running") or [])]
        for name in dict.fromkeys(names):
            mode = host.services([name])[0].start_mode
            host.set_service(name, mode, running=restore)

    def _fault(self, *, restore: bool, record: Json | None = None) -> None:
        if self.mode == "link":
            template = self.drill.link_up_command if restore else self.drill.link_down_command
            if template:
                self._local(template)
                return
            cable_by_hand(self.ctx, "failover drill", self.fe.name, str(self.fe.address), restore)
            return
        host = self.ctx.host(self.fe.name)
        verb = "start" if restore else "stop"
        if host.os == "windows":
            self._windows_services(host, restore, record)
            return
        control = getattr(host, "control_services", None)
        if control is None:
            raise StepFailed(f"{self.fe.name}: this transport cannot {verb} services")
        control(verb, self._services())

    def _wait(self, driver: Any, want: str, began: float) -> float | None:
        """Seconds from `began` until the member is `want` ("down"/"up") on every port."""
        deadline = began + self.drill.detect_timeout
        while time.monotonic() < deadline:
            stats = driver.stats().get(self.fe.name)
            if stats is None or not driver.capabilities.detects or stats.health == "unknown":
                # an appliance whose own view is not readable: measured from outside
                if self._outside is None:
                    return None  # no load to measure it with (a rollback's restore)
                return self._wait_outside(self._outside, want, began, deadline)
            if stats.down_everywhere() if want == "down" else stats.up_everywhere():
                self.detection[want] = {"by": "lb-view"}
                return time.monotonic() - began
            time.sleep(POLL)
        after = "the restore" if want == "up" else "the fault"
        raise CheckFailed(
            f"the load balancer did not show {self.fe.name} {want} on every port within "
            f"{self.drill.detect_timeout:.0f} s after {after}"
        )

    def _ask(self, want: str) -> Pending | None:
        """The operator asked, without waiting, whether the appliance shows it."""
        ask = getattr(self.ctx.operator, "ask_nowait", None)
        if ask is None:
            return None
        # the appliance's own screen in the vendor's words ("the F5 BIG-IP LTM's farm screen")
        screen = lb_driver(self.ctx).console()
        state = "down (out of every port)" if want == "down" else "back up on every port"
        try:
            pending: Pending = ask(
                f"Does {screen} show {self.fe.name} {state}? Answer {want} when it does; "
                "the drill also measures it from outside and goes on at whichever comes first.",
                [want, "abort"],
            )
        except OperatorUnavailable:
            return None
        return pending

    def _wait_outside(
        self, outside: OutsideView, want: str, began: float, deadline: float
    ) -> float:
        """Behind an appliance: the load through the VIP, or the operator, shows it."""
        watch = (
            outside.down(self.drill.detect_successes)
            if want == "down"
            else outside.up(self._load_targets)
        )
        pending = self._ask(want)
        try:
            while True:
                if watch.poll():
                    self.detection[want] = {"by": "outside", **watch.evidence()}
                    return time.monotonic() - began
                answer = pending.poll() if pending is not None else None
                if answer == want:
                    self.detection[want] = {"by": "operator", **watch.evidence()}
                    return time.monotonic() - began
                if answer is not None:
                    raise Declined("the operator stopped the failover drill")
                if time.monotonic() >= deadline:
                    break
                time.sleep(POLL)
        finally:
            if pending is not None:
                pending.cancel()
        seen = watch.evidence()
        if want == "down":
            how = (
                f"no {seen['run']} requests in a row through {self.vip} were answered by the "
                f"other front ends (the count started again {seen['restarts']} time(s)"
                + (
                    f", {seen['unidentified']} answer(s) named no server"
                    if seen["unidentified"]
                    else ""
                )
                + ")"
            )
        else:
            how = f"{self.fe.name} did not answer again on {', '.join(seen['not_yet'])}"
        raise CheckFailed(
            f"the appliance did not show {self.fe.name} {want} within "
            f"{self.drill.detect_timeout:.0f} s after the "
            f"{'restore' if want == 'up' else 'fault'}, seen from outside: {how}, and the "
            "operator did not answer"
        )

    # -- the drill ----------------------------------------------------------------------
    def apply(self, current: Json) -> Json:
        driver = lb_driver(self.ctx)
        not_up = sorted(n for n, s in current.items() if s["health"] == "down")
        if not_up:
            # just restarted (the phase before ends by restarting the front ends): give
            # the LB's checks the drill's own detection time to see them back
            try:
                wait_members_up(driver, sorted(current), timeout=self.drill.detect_timeout)
            except CheckFailed:
                raise Refused(
                    f"the drill on {self.fe.name} is refused while member(s) are not up: "
                    f"{', '.join(not_up)}; bring them back first"
                ) from None
        pool_name = self.ctx.pool.pool.fqdn
        # what a user's client does, as the client load does it (no SIP on generic-tls)
        targets = targets_for(pool_name, self.ctx.profile, address=self.vip)
        load = self._load(targets, current)
        stages = _Stages()
        record = self.undo_record(current)
        held = self._hold()
        stages.lap("hold")
        load.start()
        try:
            load.mark("before")
            _window(load, "before", BEFORE_REQUESTS)
            stages.lap("before")
            load.mark("fault")
            asked = time.monotonic()
            restored = 0.0

            def take_away() -> None:
                nonlocal restored
                load.mark("restore")
                restored = time.monotonic()
                self._fault(restore=True, record=record)

            # journaled before it is in place, both moves under a signal shield: a run
            # cut short leaves it undone, or a record the next command acts on first
            with self.ctx.faults.held(
                self._fault_kind(),
                self.fe.name,
                self._fault_summary(),
                record,
                put=lambda: self._fault(restore=False),
                take_away=take_away,
            ):
                # from the moment the fault is in place (a service stop may take seconds)
                began_wall, began = time.time(), time.monotonic()
                fault_s = began - asked
                stages.lap("fault")
                detect = self._wait(driver, "down", began)
                detected_wall = time.time()
                stages.lap("detection")
                load.mark("after-detection")
                after = _window(load, "after-detection", AFTER_REQUESTS)
                stages.lap("after-detection")
                survived = {
                    owner: sum(1 for s in streams if _alive(s))
                    for owner, streams in held.items()
                    if owner != self.fe.name
                }
                stages.lap("held-check")
            stages.lap("restore")
            back = self._wait(driver, "up", restored)
            stages.lap("return")
            load.mark("back")
            _window(load, "back", BACK_REQUESTS)
            stages.lap("back")
        finally:
            report = load.stop()
            for streams in held.values():
                for stream in streams:
                    close_quietly(stream)
            stages.lap("stop")
        if after < AFTER_REQUESTS:
            raise CheckFailed(
                f"failover drill on {self.fe.name}: only {after} of the {AFTER_REQUESTS} "
                f"requests sent after the LB took it out ended within {WINDOW_LIMIT:.0f} s; "
                "too few to prove that new connections go to the other front ends"
            )
        row = self._judge(report, detect, back, survived, held, began_wall, detected_wall)
        return {**row, "fault_took_s": round(fault_s, 3), "stages_s": stages.laps}

    def _load(
        self,
        targets: list[LoadTarget],
        current: Json,
        identify_by: Callable[[Any], str | None] | None = None,
    ) -> LoadRunner:
        """The drill's client load through the VIP; watched from outside when the
        LB's own view (`current`) cannot be read."""
        if current and all(s["health"] == "unknown" for s in current.values()):
            # the LB's view cannot be read: the load itself shows when it acted
            self._outside = OutsideView(self.fe.name, lambda: load.issued)
            self._load_targets = [t.key for t in targets]
        load = vip_load(
            self.ctx,
            targets,
            identify_by,
            observe=None if self._outside is None else self._outside.observe,
        )
        return load

    def _hold(self) -> dict[str, list[Any]]:
        """Connections held open to the VIP before the fault, by the FE that got each."""
        return hold_vip(self.ctx, HELD * len(self.ctx.pool.front_ends))

    def _checks(self) -> Json:
        """load_balancer.checks, and the longest this fault may take to show with them:
        refusing ports fail each check at once, a cut link lets each one time out."""
        c = self.ctx.pool.load_balancer.checks
        bound = c.out_within() if self.mode == "link" else round(c.fall * c.interval, 3)
        return {**c.model_dump(), "out_within_s": bound}

    def _judge(
        self,
        report: Any,
        detect: float | None,
        back: float | None,
        survived: dict[str, int],
        held: dict[str, list[Any]],
        began: float,
        detected: float,
    ) -> Json:
        labels = report.labels
        failed_fault = int(labels.get("fault", {}).get("failed", 0))
        failed_after = sum(
            int(labels.get(k, {}).get("failed", 0)) for k in ("after-detection", "back")
        )
        failed_before = int(labels.get("before", {}).get("failed", 0))
        lost = {o: len(held[o]) - n for o, n in survived.items() if n < len(held[o])}
        row = {
            "fe": self.fe.name,
            "mode": self.mode if self.mode == "link" else f"service:{self.port}",
            "what": self._what(),
            "detect_s": None if detect is None else round(detect, 3),
            "back_s": None if back is None else round(back, 3),
            "requests": report.requests,
            "failed_before_fault": failed_before,
            "failed_until_detection": failed_fault,
            "failed_after_detection": failed_after,
            "held_survived": survived,
            "held_lost": lost,
            "fault_at": began,
            "detected_at": detected,
            # lb-view: the LB's own view; outside: the load through the VIP; operator
            "detected_by": self.detection.get("down"),
            "back_detected_by": self.detection.get("up"),
            # what the LB was asked to do: the detection time is read against it
            "checks": self._checks(),
        }
        self.ctx.emit("drill", row)
        problems = []
        if failed_before:
            problems.append(f"{failed_before} request(s) failed before the fault")
        if failed_after:
            problems.append(f"{failed_after} request(s) failed after the LB took it out")
        if lost:
            problems.append(
                "established connections to other FEs were closed: "
                + ", ".join(f"{o} lost {n}" for o, n in lost.items())
            )
        if problems:
            raise CheckFailed(
                f"failover drill on {self.fe.name} ({row['mode']}): " + "; ".join(problems)
            )
        return {
            **row,
            "load": {
                "totals": report.totals,
                "labels": report.labels,
                "failed_seconds": report.failed_seconds(),
                "failures": report.failures[:20],
            },
        }

    def _fault_kind(self) -> str:
        return "link-down" if self.mode == "link" else "service-stopped"

    def _fault_summary(self) -> str:
        if self.mode == "link":
            return f"the link of {self.fe.name} ({self.fe.address}) is down (failover drill)"
        return (
            f"{', '.join(self._services())} stopped on {self.fe.name} (failover drill, "
            f"check port {self.port})"
        )

    # the fault's record is the undo record: once put right, nothing is left to revert
    fault_restore_reverts = True

    def restore_fault(self, kind: str, restore: Json) -> Json:
        """A drill cut short: its fault undone, and the LB sees the member back."""
        self._fault(restore=True, record=restore)
        back = self._wait(lb_driver(self.ctx), "up", time.monotonic())
        return {"fe": self.fe.name, "restored": kind, "up_after_s": back}

    def check_undo(self, undo: Json) -> None:
        # the fault is undone as the step's arguments say; the record names it
        rec = shape.record(undo)
        shape.same(rec, "fe", self.fe.name, "the step's front end")
        shape.same(rec, "mode", self.mode, "the step's mode")
        if "windows_running" in rec:
            for name in shape.texts(rec, "windows_running"):
                if not SERVICE_NAME.match(name):
                    raise UndoRecordError("'windows_running' holds a text that is no service name")

    def revert(self, undo: Json) -> Json:
        self._fault(restore=True, record=undo)
        return {"fe": undo["fe"], "restored": undo["mode"]}

    def verify_reverted(self, undo: Json) -> Json:
        back = self._wait(lb_driver(self.ctx), "up", time.monotonic())
        return {"fe": undo["fe"], "up_after_s": back}


@register
class LbFailoverProcedure(Action):
    """The procedure for responding to a failed front end, for this pool (docstring)."""

    name = "lb.failover_procedure"
    read_only = True

    def targets(self) -> list[str]:
        return []

    def describe(self) -> list[Change]:
        return [
            Change(
                "check",
                "admin",
                "write the procedure for responding to a failed front end "
                "(.ocsscale/failover-procedure.md) with this pool's names",
            )
        ]

    def _lines(self) -> list[str]:
        pool = self.ctx.pool
        vip = pool.load_balancer.vip.ip
        fes = ", ".join(f"{fe.name} ({fe.address})" for fe in pool.front_ends)
        ops = lb_driver(self.ctx).console()
        checks = " and ".join(map(str, self.ctx.profile.check_ports))
        return [
            f"Symptom: users of {pool.pool.fqdn} signed in on one front end are disconnected; "
            "clients reconnect through the VIP by themselves (keep-alive, retry, reconnection "
            "randomization) and land on a healthy front end.",
            f"Confirm at the load balancer ({ops}) that the member is down: it fails the "
            f"checks on {checks} and is out of every port of {vip}.",
            "Put the failed member in maintenance (maint) so it does not return before it "
            "is repaired, even if its checks pass intermittently.",
            "Check that the remaining members carry the load: their active connections grow, "
            f"and {pool.pool.fqdn} answers on every port from a test client.",
            "Repair the front end (restart the Front-End service RTCSRV and W3SVC; its "
            "network; its certificate).",
            "Set the member to ready; watch it come back up on every port, then confirm with "
            "a test sign-in pinned to it.",
            f"Front ends of this pool: {fes}.",
        ]

    def _lb_lines(self) -> list[str]:
        """With a pair of LBs: the procedure for a failed load balancer."""
        lb = self.ctx.pool.load_balancer
        pair = lb.pair
        if pair is None:
            return []
        hosts = " and ".join(f"{h.name} ({h.address})" for h in pair.hosts)
        back = (
            f"{pair.preferred} takes the VIP back by itself once it is healthy (preempt): "
            "the connections through the other host are lost once more, and clients "
            "reconnect"
            if pair.preempt
            else "the VIP stays on the host holding it (preempt is off): move it back in a "
            f"quiet hour if {pair.preferred} must hold it"
        )
        return [
            f"Symptom: every client connected through the VIP {lb.vip.ip} is disconnected "
            "at once (a full proxy keeps their connections on the failed host) and "
            "reconnects within seconds; new connections succeed.",
            f"Find which host holds the VIP: `ip -4 addr show to {lb.vip.ip}/32` on {hosts}; "
            "exactly one must. keepalived's log on each host says when and why it moved.",
            "On the failed host: is the load balancer's process running, and does its link "
            "have carrier? Repair it (restart the process, the cable, the switch port).",
            "Until it is repaired the pool has no standby: a second failure stops the "
            "service. Do not restart keepalived on the host that holds the VIP.",
            f"When it is repaired: {back}.",
            "Confirm: exactly one host holds the VIP, both have the same farm (`ocsscale run "
            "--phase validate-lb` proves it), and the pool name answers on every port.",
        ]

    def apply(self, current: Json) -> Json:
        lines = self._lines()
        lb_lines = self._lb_lines()
        self.ctx.emit(
            "checklist",
            {"title": "procedure for responding to a failed front end", "steps": lines},
        )
        if lb_lines:
            self.ctx.emit(
                "checklist",
                {"title": "procedure for responding to a failed load balancer", "steps": lb_lines},
            )
        pool_path = self.ctx.pool_path
        written = None
        if pool_path:
            from ..statefiles import write_private

            target = Path(pool_path).resolve().parent / ".ocsscale" / "failover-procedure.md"
            text = "# Responding to a failed front end\n\n" + "\n".join(
                f"{n}. {line}" for n, line in enumerate(lines, 1)
            )
            if lb_lines:
                text += "\n\n# Responding to a failed load balancer\n\n" + "\n".join(
                    f"{n}. {line}" for n, line in enumerate(lb_lines, 1)
                )
            write_private(target, text + "\n")  # 0600 in 0700, whole or not at all
            written = str(target)
        return {"procedure": lines, "lb_procedure": lb_lines, "written": written}
