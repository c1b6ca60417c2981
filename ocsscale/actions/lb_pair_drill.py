"""failover-test, with a load-balancer pair: the active LB fails, measured from outside.

lb.pair_drill (args: mode = `service` | `link`)
  Refused unless exactly one host of the pair holds the VIP and the LB process runs
  on both. A continuous client load runs through the VIP from the admin machine
  (the FE drill's load, lb_drill.py), and a few connections are held open to the
  VIP through the active host. Then the fault, on the active host:
    service  its LB process (HAProxy, the engine) is stopped through the driver's
             service control: keepalived's track script sees nothing listening on
             the VIP and gives the VIP up;
    link     its link is cut by load_balancer.pair.link_down_command, run on the
             admin machine, or by the operator when no command is given.
  Measured from outside, on the load: the takeover (from the start of the first
  request that failed after the fault was asked for, when the VIP stopped
  answering, to the start of the first one answered again after it: detection and
  takeover together; a stop that takes seconds does not count in it, and is
  recorded as `fault_took_s`), the failed requests before it and of those started
  after it (none may fail; a window is a count of requests, not a time), and the
  held connections: through a full proxy their state was on the failed host, so
  they are lost (said in the evidence; it is what a client sees, and it reconnects)
  while new ones succeed. Which host holds the VIP is read from both hosts before
  the fault and after the failback; while the link is cut, from the standby alone
  (the cut host cannot be reached, and is not tried).
  Then the fault is undone and the failback measured: with `pair.preempt` the
  preferred host takes the VIP back (time from the restore until it alone holds
  it, `failback_moved_s`, and until the VIP answers from it, `failback_s`: the
  returning host's checks leave from the SNAT address, so its members were down
  in its own view until it holds the VIP again); without it the VIP stays where
  it is, which is recorded as such.
  Undo (journaled first, as the FE drill's fault): start the LB process / bring the
  link up and wait for one holder (the preferred one with preempt), so a run cut
  short mid-drill is put right by the next run or by rollback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import CheckFailed, Refused, StepFailed, UndoRecordError, UsageError
from ..evidence import LbDrillResult
from ..probes.load import targets_for
from ..probes.load_report import Outcome
from ..probes.stream import close_quietly
from . import undo_shape as shape
from .args import ActionArgs, Text
from .base import Action, Change, Context, Json, register
from .lb_drill import (
    AFTER_REQUESTS,
    BACK_REQUESTS,
    BEFORE_REQUESTS,
    POLL,
    _Stages,
    _window,
    cable_by_hand,
    hold_vip,
    run_link_command,
    vip_load,
)
from .plugin_ports import lb_driver

MODES = ("service", "link")
HELD = 4  # connections held through the active LB
#: the lab's target: the VIP answers again at most this long after the process stops
TAKEOVER_TARGET_S = 3.0
POKE_WAIT = 0.5  # seconds a held connection has to answer (or be reset) after a poke
#: seconds after the fault is in place with no failed request: the VIP never stopped
NO_GAP_WAIT = 5.0
POKE_READS = 16  # reads of what a held connection sends back, at most
#: how long a failback may take (or, without preempt, how long the VIP is watched
#: staying put): VRRP's master-down time is about 3 adverts, the track script's rise 2 s
FAILBACK_EXTRA = 10.0


def takeover_start(outcomes: list[tuple[float, bool]], fault_at: float) -> float | None:
    """When the VIP answered again: the start (epoch seconds) of the first request
    started at or after `fault_at` that was answered; None while none was."""
    answered = [start for start, ok in outcomes if ok and start >= fault_at]
    return min(answered) if answered else None


def failback_expected(preempt: bool, preferred: str) -> str | None:
    """The host that must hold the VIP once the failed one is back, or None when
    either may (without preempt the VIP stays where it is, unless keepalived's two
    masters, after a cut link, settle on the higher priority)."""
    return preferred if preempt else None


def poke_alive(stream: Any) -> bool:
    """A held connection is alive if it takes a keep-alive (CRLFCRLF, which SIP and
    HTTP both ignore) and is not closed or reset within POKE_WAIT: a host that has
    the VIP but not the connection's state answers it with a reset. What arrives
    before is read past (data buffered before a close comes first, then the close)."""
    renew = getattr(stream, "renew", None)
    if renew is not None:
        renew(POKE_WAIT * (POKE_READS + 2))  # a TLS stream's budget ran out long ago
    try:
        stream.sendall(b"\r\n\r\n")
        stream.settimeout(POKE_WAIT)
        # still sending after POKE_READS reads: someone holds its state
        return all(stream.recv(4096) for _ in range(POKE_READS))
    except TimeoutError:
        return True
    except Exception:  # noqa: BLE001 - closed, reset: all mean "lost"
        return False


def outage(outcomes: list[tuple[float, bool]], asked: float) -> tuple[float | None, float | None]:
    """Seen from outside, the VIP's outage after the fault was asked for: the start of
    the first request that failed, and of the first answered one started after it
    (None, None: nothing failed yet; (t, None): not answering again yet)."""
    failed = [start for start, ok in outcomes if not ok and start >= asked]
    if not failed:
        return None, None
    first = min(failed)
    return first, takeover_start(outcomes, first)


def judge(row: Json, preempt: bool, preferred: str) -> list[str]:
    """What a drill's row says went wrong (empty: the drill passed)."""
    problems = []
    if row["failed_before_fault"]:
        problems.append(f"{row['failed_before_fault']} request(s) failed before the fault")
    if row["takeover_s"] is None:
        problems.append("the VIP did not answer again")
    if row["failed_after_takeover"]:
        problems.append(
            f"{row['failed_after_takeover']} request(s) started after the takeover failed"
        )
    if row["after_takeover_requests"] < AFTER_REQUESTS:
        problems.append(
            f"only {row['after_takeover_requests']} of the {AFTER_REQUESTS} requests "
            "started after the takeover ended in time: too few to prove new ones succeed"
        )
    during = row["holders_during"]
    if during.get(row["standby"]) is not True:
        problems.append(f"{row['standby']} did not hold the VIP while {row['host']} was down")
    after = [n for n, held in row["holders_after"].items() if held]
    if len(after) != 1:
        problems.append(f"{' and '.join(after) or 'neither host'} held the VIP afterwards")
    elif preempt and after != [preferred]:
        problems.append(f"{after[0]} held the VIP afterwards, not the preferred {preferred}")
    if row["failed_after_failback"]:
        problems.append(
            f"{row['failed_after_failback']} request(s) failed after the failback settled"
        )
    return problems


def _copy(outcomes: list[tuple[float, bool]], lock: threading.Lock) -> list[tuple[float, bool]]:
    with lock:
        return list(outcomes)


class PairDrillArgs(ActionArgs):
    #: service (stop the active LB's process) or link (cut the active LB's link)
    mode: Text


@register
class LbPairDrill(Action):
    """The active LB of a pair failed on purpose while clients keep working (docstring)."""

    name = "lb.pair_drill"
    phases = ("failover-test",)
    Args = PairDrillArgs
    params: PairDrillArgs

    # the fault's record is the undo record: once put right, nothing is left to revert
    fault_restore_reverts = True

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        if self.params.mode not in MODES:
            raise UsageError(f"{self.name}: mode must be one of {', '.join(MODES)}")
        pair = ctx.pool.load_balancer.pair
        if pair is None:
            raise UsageError(f"{self.name}: the pool file's load balancer is not a pair")
        self.mode = self.params.mode
        self.pair = pair
        self.vip = str(ctx.pool.load_balancer.vip.ip)
        self.timeout = ctx.pool.load_balancer.failover.detect_timeout

    # -- what it touches --------------------------------------------------------------
    def targets(self) -> list[str]:
        return [h.name for h in self.pair.hosts]

    def _what(self, host: str = "the active LB host") -> str:
        if self.mode == "link":
            by = "" if self.pair.link_down_command else " (by the operator)"
            return f"cut the link of {host}{by}"
        return f"stop the load balancer's process on {host}"

    def describe(self) -> list[Change]:
        back = (
            f"the failback to {self.pair.preferred}"
            if self.pair.preempt
            else "that the VIP stays put (preempt off)"
        )
        return [
            Change(
                "change",
                " and ".join(self.targets()),
                f"{self._what()} under a client load through {self.vip}; time until the VIP "
                f"answers again from the standby, failed requests, held connections; then "
                f"restore it and measure {back}",
            )
        ]

    def _driver(self) -> Any:
        driver = lb_driver(self.ctx)
        if not driver.capabilities.pair:
            raise StepFailed(f"{self.name}: the pool file's load balancer is not a pair")
        return driver

    def read(self) -> Json:
        driver = self._driver()
        return {
            "holders": driver.holders(),
            "running": {n: driver.lb_running(n) for n in driver.targets()},
        }

    def diff(self, current: Json) -> list[Change]:
        return self.describe()

    def undo_record(self, current: Json) -> Json:
        holders = list(current.get("holders") or [])
        # the host the drill fails: the one holding the VIP (apply refuses any other case)
        host = holders[0] if len(holders) == 1 else self.pair.preferred
        return {"host": host, "mode": self.mode}

    # -- the fault --------------------------------------------------------------------
    def _fault(self, host: str, *, restore: bool) -> None:
        if self.mode == "service":
            driver = self._driver()
            if restore and driver.lb_running(host):
                return  # a repair after a restore that had already been done
            driver.lb_service(host, "start" if restore else "stop")
            return
        template = self.pair.link_up_command if restore else self.pair.link_down_command
        spec = self.pair.host(host)
        if spec is None:
            raise StepFailed(f"{self.name}: {host} is not a host of the pair")
        if template:
            run_link_command(template, host, str(spec.address))
            return
        cable_by_hand(self.ctx, "load-balancer drill", host, str(spec.address), restore)

    def _holders(self, driver: Any, skip: str | None = None) -> dict[str, bool | None]:
        """Which host holds the VIP, read from each (None: `skip`, whose link is cut)."""
        return {n: None if n == skip else bool(driver.holds_vip(n)) for n in driver.targets()}

    def _settle(self, driver: Any, began: float) -> tuple[float | None, dict[str, bool | None]]:
        """After the restore: seconds until the VIP is where it belongs (the preferred
        host alone with preempt, any one host without), and the holders then."""
        want = failback_expected(self.pair.preempt, self.pair.preferred)
        deadline = began + self.timeout + FAILBACK_EXTRA
        while True:
            found = self._holders(driver)
            holding = [n for n, held in found.items() if held]
            if len(holding) == 1 and (want is None or holding == [want]):
                return time.monotonic() - began, found
            if time.monotonic() >= deadline:
                return None, found
            time.sleep(POLL * 4)

    def _wait_takeover(
        self, outcomes: Callable[[], list[tuple[float, bool]]], fault_at: float
    ) -> float | None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            start = takeover_start(outcomes(), fault_at)
            if start is not None:
                return start
            time.sleep(POLL)
        return None

    def _wait_outage(
        self, outcomes: Callable[[], list[tuple[float, bool]]], asked: float
    ) -> tuple[float | None, float | None]:
        """The outage seen from outside (`outage`), once the VIP answers again; with
        no request failed at all, (None, the first answer after the fault)."""
        deadline = time.monotonic() + self.timeout
        quiet = time.monotonic() + NO_GAP_WAIT
        while time.monotonic() < deadline:
            first, back = outage(outcomes(), asked)
            if back is not None:
                return first, back
            if first is None and time.monotonic() >= quiet:
                return None, takeover_start(outcomes(), asked)  # never stopped answering
            time.sleep(POLL)
        return outage(outcomes(), asked)

    # -- the drill ----------------------------------------------------------------------
    def apply(self, current: Json) -> Json:
        driver = self._driver()
        holders = list(current["holders"])
        if len(holders) != 1:
            raise Refused(
                f"the LB drill is refused: {' and '.join(holders) or 'neither host'} holds the "
                f"VIP {self.vip} (exactly one must)"
            )
        stopped = sorted(n for n, up in current["running"].items() if not up)
        if stopped:
            raise Refused(f"the LB drill is refused: the LB process is stopped on {stopped}")
        host = holders[0]
        standby = next(n for n in driver.targets() if n != host)
        record = self.undo_record(current)
        outcomes: list[tuple[float, bool]] = []
        lock = threading.Lock()

        def observe(_seq: int, outcome: Outcome) -> None:
            with lock:
                outcomes.append((outcome.finished - outcome.latency_ms / 1000.0, outcome.ok))

        targets = targets_for(self.ctx.pool.pool.fqdn, self.ctx.profile, address=self.vip)
        load = vip_load(self.ctx, targets, observe=observe)
        stages = _Stages()
        held = [s for streams in hold_vip(self.ctx, HELD).values() for s in streams]
        stages.lap("hold")
        times: dict[str, float | None] = {}
        load.start()
        try:
            load.mark("before")
            _window(load, "before", BEFORE_REQUESTS)
            before = self._holders(driver)
            stages.lap("before")
            load.mark("lb-fault")
            times["asked_at"] = asked = time.time()
            restored = 0.0

            def take_away() -> None:
                nonlocal restored
                load.mark("lb-restore")
                times["restored_at"] = time.time()
                restored = time.monotonic()
                self._fault(host, restore=True)

            with self.ctx.faults.held(
                "lb-link-down" if self.mode == "link" else "lb-stopped",
                host,
                f"{self._what(host)} (LB drill)",
                record,
                put=lambda: self._fault(host, restore=False),
                take_away=take_away,
            ):
                times["fault_at"] = time.time()
                stages.lap("fault")
                first, back = self._wait_outage(lambda: _copy(outcomes, lock), asked)
                times["outage_at"], times["takeover_at"] = first, back
                stages.lap("takeover")
                load.mark("after-takeover")
                after = _window(load, "after-takeover", AFTER_REQUESTS)
                stages.lap("after-takeover")
                during = self._holders(driver, skip=host if self.mode == "link" else None)
                lost = sum(1 for s in held if not poke_alive(s))
                stages.lap("held-check")
            stages.lap("restore")
            load.mark("failback")
            moved, after_holders = self._settle(driver, restored)
            # back when the VIP answers again from where it settled: a host that did
            # not hold the VIP saw its members down (its checks leave from the SNAT
            # address, which answers only on the holder) until its checks rise again
            answered = (
                None
                if moved is None
                else self._wait_takeover(lambda: _copy(outcomes, lock), time.time())
            )
            times["failback_at"] = answered
            failback = None if answered is None else answered - (times["restored_at"] or 0.0)
            stages.lap("failback")
            load.mark("after-failback")
            _window(load, "after-failback", BACK_REQUESTS)
            stages.lap("after-failback")
        finally:
            report = load.stop()
            for stream in held:
                close_quietly(stream)
        return self._report(
            report,
            host,
            standby,
            (before, during, after_holders),
            times,
            (moved, failback),
            after,
            held,
            lost,
        ) | {"stages_s": stages.laps}

    def _report(
        self,
        report: Any,
        host: str,
        standby: str,
        holders: tuple[dict[str, bool | None], ...],
        times: dict[str, float | None],
        failbacks: tuple[float | None, float | None],
        after: int,
        held: list[Any],
        lost: int,
    ) -> Json:
        labels = report.labels
        before, during, after_holders = holders
        moved, failback = failbacks

        def failed(label: str) -> int:
            return int(labels.get(label, {}).get("failed", 0))

        first, back = times.get("outage_at"), times.get("takeover_at")
        # from the first request that failed to the first one answered after it
        takeover = None if back is None else round(back - first, 3) if first else 0.0
        asked, placed = times.get("asked_at"), times.get("fault_at")
        row: Json = {
            "mode": self.mode,
            "host": host,
            "standby": standby,
            "what": self._what(host),
            "holders_before": before,
            # while the link is cut, the cut host is not read (null)
            "holders_during": during,
            "holders_after": after_holders,
            "takeover_s": takeover,
            "takeover_target_s": TAKEOVER_TARGET_S if self.mode == "service" else None,
            "takeover_target_met": (
                None
                if self.mode != "service" or takeover is None
                else takeover <= TAKEOVER_TARGET_S
            ),
            # how long the stop (or the link command) itself took
            "fault_took_s": None if asked is None or placed is None else round(placed - asked, 3),
            "preempt": self.pair.preempt,
            "preferred": self.pair.preferred,
            "failback_s": None if failback is None else round(failback, 3),
            # when both hosts' addresses showed the VIP where it belongs, after the restore
            "failback_moved_s": None if moved is None else round(moved, 3),
            "failback": (
                ("measured" if failback is not None else "not seen")
                if self.pair.preempt
                else "none: preempt is off, the VIP stays where it is"
            ),
            "requests": report.requests,
            "failed_before_fault": failed("before"),
            "failed_until_takeover": failed("lb-fault"),
            "failed_after_takeover": failed("after-takeover"),
            "after_takeover_requests": after,
            "failed_around_failback": failed("lb-restore") + failed("failback"),
            "failed_after_failback": failed("after-failback"),
            "held": len(held),
            "held_lost": lost,
            "held_note": (
                f"{lost} of {len(held)} connections held through {host} were lost: a full "
                "proxy keeps their state on the failed host; clients reconnect, and new "
                "connections succeed"
            ),
            **{k: v for k, v in times.items()},
        }
        LbDrillResult.from_json(row)  # the report reads it through this record
        self.ctx.emit("lb_drill", row)
        problems = judge(row, self.pair.preempt, self.pair.preferred)
        if problems:
            # what the failed requests met, by window (error classes only: no hostile text)
            seen = {
                label: tally.get("errors")
                for label, tally in labels.items()
                if isinstance(tally, dict) and tally.get("failed")
            }
            raise CheckFailed(
                f"LB drill on {host} ({self.mode}): " + "; ".join(problems) + f" (errors: {seen}; "
                f"holders after: {after_holders}, failback {row['failback_s']} s)"
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

    # -- repair and undo ------------------------------------------------------------
    def restore_fault(self, kind: str, restore: Json) -> Json:
        """A drill cut short: its fault undone, and the VIP where it belongs."""
        self._fault(str(restore["host"]), restore=True)
        settled, found = self._settle(self._driver(), time.monotonic())
        if settled is None:
            raise StepFailed(f"after the LB drill's repair the VIP is held by: {found}")
        return {"host": restore["host"], "restored": kind, "settled_after_s": settled}

    def check_undo(self, undo: Json) -> None:
        rec = shape.record(undo)
        shape.same(rec, "mode", self.mode, "the step's mode")
        if shape.text(rec, "host") not in self.targets():
            raise UndoRecordError("'host' names no host of the pair")

    def revert(self, undo: Json) -> Json:
        self._fault(str(undo["host"]), restore=True)
        return {"host": undo["host"], "restored": undo["mode"]}

    def verify_reverted(self, undo: Json) -> Json:
        driver = self._driver()
        settled, found = self._settle(driver, time.monotonic())
        if settled is None:
            raise StepFailed(f"after the LB drill's undo the VIP is held by: {found}")
        if not driver.lb_running(str(undo["host"])):
            raise StepFailed(f"after the LB drill's undo the LB process on {undo['host']} is down")
        return {"host": undo["host"], "holders": found}
