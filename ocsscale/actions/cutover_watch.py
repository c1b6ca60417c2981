"""cutover.watch: the end of the cutover (dns.raise_ttl, which follows it, is in dns.py).

cutover.watch (args: `name` the pool FQDN, `address` the VIP, `window` and
`interval` seconds, `failures` the failure budget; dns.watch_* in the pool file).
  Reads: for `window` seconds, every `interval` seconds, probe.ports from every
  test client through its own resolution of `name`, expecting the VIP. A
  client that cannot be reached over its transport makes the round
  inconclusive: the operator is asked (continue watching, revert, stop); with
  nobody to ask the step stops WITHOUT reverting and says so. More failed
  probes than the budget: the watch reverts every name the cutover moved
  itself (the pool record, the names that moved with it, the SRV records
  retargeted), through the DNS provider, with each one's undo record in the
  journal (its old value and TTL), newest first, reports each one reverted to
  the runner, which marks it so in the journal with the reason, and fails
  (exit 1) saying the cutover was reverted and why (and which revert failed,
  if one did).
  Changes nothing otherwise: no undo record of its own.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from ..errors import (
    CheckFailed,
    Declined,
    OcsscaleError,
    StepFailed,
    TransportError,
)
from ..operator import OperatorUnavailable
from .args import ActionArgs, Address, DnsName, Seconds, WholeSeconds
from .base import Action, Change, Context, Json, register
from .dns import _same
from .history import Reverted
from .plugin_ports import open_provider
from .probe_ports import ProbePorts
from .probing import DEFAULT_TIMEOUT

#: failures and inconclusive rounds named in the evidence and messages
_SHOWN = 5

#: the failed probes the watch tolerates before it reverts (dns.watch_failures)
Failures = Annotated[int, Field(ge=0, le=100000, description="a number of failures (0-100000)")]


class CutoverWatchArgs(ActionArgs):
    name: DnsName
    address: Address
    window: WholeSeconds
    interval: WholeSeconds
    failures: Failures
    timeout: Seconds = DEFAULT_TIMEOUT


@register
class CutoverWatch(Action):
    """Probes through the pool name for a window; reverts over budget (module docstring)."""

    name = "cutover.watch"

    Args = CutoverWatchArgs
    params: CutoverWatchArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.pool_name = self.params.name.rstrip(".")
        self.address = self.params.address
        self.window = self.params.window
        self.interval = max(1, self.params.interval)
        self.budget = self.params.failures
        self.timeout = self.params.timeout
        override = ctx.options.watch  # `run --watch SECONDS` (1..86400, checked by the CLI)
        if override is not None:
            self.window = int(override)
        self.clients = [c.name for c in ctx.pool.test_clients]
        self.settings = ctx.pool.dns

    def targets(self) -> list[str]:
        host = getattr(self.settings, "host", None)  # the Windows DNS server reverts
        dns_host = [host.name] if host is not None else []
        return [*self.clients, f"dns:{self.settings.zone}", *dns_host]

    def describe(self) -> list[Change]:
        return [
            Change(
                "check",
                f"dns:{self.settings.zone}",
                f"for {self.window} s, every {self.interval} s: every port through "
                f"{self.pool_name} from {', '.join(self.clients)} answers via the VIP "
                f"{self.address}; more than {self.budget} failed probes revert "
                f"{self.pool_name} to its old value and TTL",
            )
        ]

    def undo_record(self, current: Json) -> Json:
        return None  # a revert it makes is journaled on the dns.replace it undoes

    # -- one probe --------------------------------------------------------------
    def _probe(self, quiet: Context, client: str) -> tuple[str, str]:
        """("ok" | "failed" | "unreachable", what was seen)."""
        args = {
            "from": client,
            "name": self.pool_name,
            "through": self.address,
            "timeout": self.timeout,
        }
        try:
            ProbePorts(quiet, args).apply(None)
        except CheckFailed as exc:
            return "failed", exc.message
        except TransportError as exc:
            return "unreachable", exc.message
        return "ok", ""

    def apply(self, current: Json) -> Json:
        quiet = dataclasses.replace(self.ctx, emit=lambda kind, data: None)
        started = time.monotonic()
        deadline = started + self.window
        rounds = probes = 0
        failed: list[dict[str, Json]] = []
        inconclusive: list[dict[str, Json]] = []
        # a round every `interval` seconds; the last one starts once the window is
        # over, so the window is watched to its end even when a round takes longer
        while True:
            rounds += 1
            round_start = time.monotonic()
            at = round(round_start - started, 1)
            for client in self.clients:
                outcome, seen = self._probe(quiet, client)
                probes += 1
                if outcome == "failed":
                    failed.append({"at_s": at, "client": client, "seen": seen})
                    if len(failed) > self.budget:
                        self._revert(
                            f"{len(failed)} failed probe{'s' if len(failed) > 1 else ''} through "
                            f"{self.pool_name} in the watch window (budget {self.budget}); "
                            f"the last: {client} at {at} s: {seen}"
                        )
                elif outcome == "unreachable":
                    inconclusive.append({"at_s": at, "client": client, "seen": seen})
                    self._undecided(client, seen)
            if round_start >= deadline:
                break
            time.sleep(max(0.0, min(round_start + self.interval, deadline) - time.monotonic()))
        evidence = {
            "name": self.pool_name,
            "address": self.address,
            "window_s": self.window,
            "interval_s": self.interval,
            "budget": self.budget,
            "clients": self.clients,
            "rounds": rounds,
            "probes": probes,
            "watched_s": round(time.monotonic() - started, 1),
            "failed": failed[:_SHOWN],
            "failed_count": len(failed),
            "inconclusive": inconclusive[:_SHOWN],
        }
        self.ctx.emit(
            "findings",
            {
                "title": f"watch window on {self.pool_name} -> {self.address}",
                "findings": [
                    {
                        "check": f"{self.window} s, {rounds} rounds, {probes} probes",
                        "ok": True,
                        "message": f"{len(failed)} failed (budget {self.budget}), "
                        f"{len(inconclusive)} inconclusive: the cutover holds",
                    }
                ],
            },
        )
        return evidence

    # -- when it does not hold ----------------------------------------------------
    def _undecided(self, client: str, seen: str) -> None:
        """A client cannot be reached: the operator decides; nobody: stop, no revert."""
        try:
            answer = self.ctx.operator.ask(
                f"{client} cannot be reached ({seen}): continue watching, revert the cutover, "
                f"or stop here ({self.pool_name} stays at the VIP)?",
                ["continue", "revert", "stop"],
            )
        except OperatorUnavailable:
            answer = None
        except Declined:
            answer = "stop"
        if answer == "continue":
            return
        if answer == "revert":
            self._revert(f"the operator chose to revert after {client} could not be reached")
        who = "nobody at a terminal could decide" if answer is None else "the operator stopped"
        raise StepFailed(
            f"the watch is inconclusive: {client} cannot be reached ({seen}) and {who}; the "
            f"cutover was NOT reverted: {self.pool_name} still points at the VIP {self.address}",
            hint="check the client, then `ocsscale run --phase cutover` to watch again, or "
            "`ocsscale rollback --to cutover` to revert",
        )

    def _revert(self, reason: str) -> None:
        """Put back every name the cutover moved (the pool name, the names that moved
        with it, the SRV records retargeted) with their undo records, newest first,
        each reported to the runner, which marks it reverted in the journal; then fail."""
        history, report = self.ctx.history, self.ctx.report_revert
        moves = history.moves_in_place() if history is not None else []
        if report is None or not any(_same(m.name, self.pool_name) for m in moves):
            raise StepFailed(
                f"{reason}; there is no finished dns.replace of {self.pool_name} in the journal "
                "to revert: it was NOT reverted",
                hint="revert the record by hand, or with `ocsscale rollback --to cutover`",
            )
        provider = open_provider(self.ctx)
        rid = "watch-" + time.strftime("%Y%m%dT%H%M%S")
        back: list[str] = []
        failed: list[str] = []
        for move in moves:
            try:
                restored = provider.revert(dict(move.undo))
            except OcsscaleError as exc:
                failed.append(f"{move.name}: {exc.message}")
                continue
            # the runner marks the move reverted in the journal, as a rollback would
            evidence = {"by": self.name, "reason": reason, "restored": restored.to_json()}
            report(Reverted(move.seq, rid, evidence))
            back.append(f"{move.name} {move.undo.get('type')} is back at {restored.show()}")
        if failed:
            raise StepFailed(
                f"{reason}; the automatic revert FAILED for {'; '.join(failed)}"
                + (f" (reverted: {'; '.join(back)})" if back else ""),
                hint="run `ocsscale rollback --to cutover` now",
            )
        raise StepFailed(
            f"the cutover was reverted: {reason}; {'; '.join(back)}",
            hint="find why the probes through the VIP failed, then run the cutover again",
        )
