"""The DNS actions: the pool name moved to the VIP, and its long TTL back after.

All go through the pool file's DNS provider (providers/dns: rfc2136,
windows, manual); the target in the plan is `dns:<zone>` (and the Windows DNS
server's host name, so its credential is checked before the run).

dns.lower_ttl (phase lower-ttl, well ahead of the window). Args: `name`,
`ttl` (dns.cutover_ttl), `type` (A).
  Reads: the RRset on the authoritative server. Changes: its TTL only (same
  values; the replace is guarded by those values). Undo: the value and TTL
  before. Proof: every server of the zone's NS set answers the lowered TTL;
  the evidence journals `ready_at`, the moment the old TTL has run out in
  every cache (the last server's confirmation + the old TTL).

dns.replace (phase cutover). Args: `name`, `address` (the VIP), `expect`
(the legacy FE's address), `ttl` (the TTL the new record gets), `type` (A).
  Reads: the RRset, and from the journal when lower-ttl's wait is over: before
  then it refuses, saying when it may start. Changes: the RRset, only while it
  still holds `expect` (a record changed by someone else is refused, never
  overwritten). Undo: the old values and TTL. Proof: the provider reads the
  record back; dns.verify proves it on every name server.

The names that move with the pool name (sip.<domain>, dns.names: the
playbook's `cutover_names`) go through the same three steps with `optional:
true`: absent, nothing to do; holding anything but the legacy value (or the
VIP), refused. dns.retarget_srv (below) moves a SIP SRV record aimed at the
legacy FE. The moves still in place (the run's history, actions/history.py) are
what the watch reverts, raise-ttl and decommission look at.

dns.verify (phase cutover, read-only). Args: `name`, `address`, `type` (A;
SRV: `srv_to`, the values the journaled retarget gave it; not retargeted:
nothing to prove), `optional` (a name the cutover did not move: nothing to prove).
  Every server that must answer (the zone's NS set, found on the first of
  dns.servers or on the Windows DNS server; or dns.verify_servers; less
  dns.verify_exclude) answers exactly `address` with authority. With rfc2136
  all hold the same SOA serial too, lagging secondaries given 30 s; on an
  AD-integrated zone (windows; manual with dns.ad_integrated) no serials are
  compared and replication is given dns.propagation_timeout (300 s), with a
  live line naming the servers that still answer otherwise
  (dns_propagation.py). The `settle` argument overrides the deadline.

dns.raise_ttl (args: `name`, `address` the VIP, `ttl` dns.ttl; for an SRV
record `type: SRV` and `srv_to`; `optional`: only a record the cutover moved).
  After the watch, the new record gets its long TTL back (the cutover kept the
  short one so that a revert would spread as quickly). Reads the RRset, which
  must hold `address` only. Changes its TTL (guarded by its value). Undo: the
  value and TTL before (the cutover TTL). Proof: every server of the NS set
  answers `address` with the new TTL.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from ..errors import CheckFailed, StepFailed, UndoRecordError, UsageError
from ..providers.dns import DnsError, DnsProvider
from ..providers.dns import capabilities as dns_capabilities
from ..providers.dns.base import RecordSet, check_type, same_values
from ..providers.dns.query import lookup, soa_serial
from . import dns_propagation as propagation
from . import undo_shape as shape
from .args import ActionArgs, Address, DnsName, Text, Ttl, WholeSeconds
from .base import Action, Change, Context, Json, register
from .plugin_ports import open_provider

#: how long dns.verify and dns.lower_ttl wait for secondaries to catch up (s;
#: the `settle` argument, else dns.propagation_timeout, overrides it)
SETTLE = propagation.SERIAL_TIMEOUT
POLL = 1.0
#: the live line of a wait is sent again at least this often (s), and whenever
#: the servers still waited for change
SHOW_EVERY = 5.0


class DnsArgs(ActionArgs):
    """What every dns.* action takes: the record, and how long secondaries are given."""

    name: DnsName
    rdtype: Text = Field("A", alias="type")
    #: overrides the wait for lagging servers (else dns.propagation_timeout)
    settle: WholeSeconds | None = None
    # a name that moves with the pool name (sip.<domain>, dns.names, an SRV
    # record): absent, it points at nothing and there is nothing to do
    optional: bool = False


class DnsLowerTtlArgs(DnsArgs):
    ttl: Ttl
    #: SRV: lowered only when it targets this host (the legacy FE), i.e. moves
    srv_from: DnsName | None = None


class DnsReplaceArgs(DnsArgs):
    address: Address
    expect: Address
    ttl: Ttl


class DnsRetargetSrvArgs(DnsArgs):
    rdtype: Literal["SRV"] = Field("SRV", alias="type", description="SRV")
    old_target: DnsName = Field(alias="from")
    to: DnsName
    ttl: Ttl


class DnsVerifyArgs(DnsArgs):
    #: the value every server answers (not SRV)
    address: Address | None = None
    #: SRV: the target the journaled retarget gave it
    srv_to: DnsName | None = None


class DnsRaiseTtlArgs(DnsArgs):
    #: the VIP (not SRV)
    address: Address | None = None
    #: SRV: every value targets it once cut over (the pool FQDN)
    srv_to: DnsName | None = None
    ttl: Ttl


def utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def required(action: str, key: str, value: str | None) -> str:
    """An argument optional in the model that this use of the action needs."""
    if value is None:
        raise UsageError(f"{action}: argument '{key}' is required")
    return value


class _DnsAction(Action):
    params: DnsArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.settings = ctx.pool.dns
        self.record_name = self.params.name.rstrip(".")
        self.rdtype = check_type(self.params.rdtype)
        self.target = f"dns:{self.settings.zone}"
        settle = self.params.settle
        self.settle_for = (
            float(settle) if settle is not None else propagation.deadline_seconds(self.settings)
        )
        self.convergence = propagation.convergence(self.settings)
        self.required: propagation.Required | None = None
        self.waited = 0.0
        self.optional = self.params.optional

    def targets(self) -> list[str]:
        host = getattr(self.settings, "host", None)  # the Windows DNS server
        return [self.target] + ([host.name] if host is not None else [])

    def provider(self) -> DnsProvider:
        return open_provider(self.ctx)

    def changeable(self) -> None:
        """Refuse, before anything changes, a record type the provider cannot change."""
        types = dns_capabilities(self.settings).record_types
        if types is not None and self.rdtype not in types:
            raise CheckFailed(
                f"{self.record_name} {self.rdtype} must change with the pool name, but the "
                f"{self.settings.provider} DNS provider changes {', '.join(types)} records only; "
                "nothing was changed",
                hint=f"change it by hand and list {self.record_name} in dns.keep",
            )

    def lookup(self) -> RecordSet:
        # the provider's read (windows: on the DNS server it changes, SRV too)
        return self.provider().lookup(self.record_name, self.rdtype)

    def first_server(self) -> str:
        if self.settings.servers:
            return str(self.settings.servers[0])
        host = getattr(self.settings, "host", None)
        if host is None:
            raise UsageError("list the zone's servers in dns.servers")
        return str(host.address)

    def name_server_answers(self) -> list[dict[str, Json]]:
        """What each server that must answer holds for the record, now."""
        port, timeout = self.settings.port, self.settings.timeout
        zone = self.settings.zone
        if self.required is None:
            self.required = propagation.required_servers(self.settings, self.first_server())
        answers = []
        for ns, address in self.required.servers:
            entry: dict[str, Json] = {"ns": ns, "address": address}
            try:
                record = lookup(address, port, self.record_name, self.rdtype, timeout)
                entry.update(
                    record.to_json(), serial=soa_serial(address, port, zone, timeout), error=None
                )
            except DnsError as exc:
                entry.update(values=[], ttl=None, serial=None, error=exc.message)
            answers.append(entry)
        return answers

    def settle(self, holds: Any, what: str) -> list[dict[str, Json]]:
        """The answers once `holds(answers)` finds no problem, waiting at most
        `settle_for` seconds for servers that lag (a live `propagating` event
        names them); at the deadline CheckFailed names them, the change kept."""
        started = time.monotonic()
        deadline = started + self.settle_for
        shown: tuple[list[str], float] | None = None
        while True:
            answers = self.name_server_answers()
            problems = holds(answers)
            if not problems:
                self.waited = round(time.monotonic() - started, 1)
                return answers
            now = time.monotonic()
            if now >= deadline:
                raise CheckFailed(
                    f"{what} after {self.settle_for:g} s: " + "; ".join(problems),
                    hint=propagation.deadline_hint(self.settings),
                )
            if shown is None or shown[0] != problems or now - shown[1] >= SHOW_EVERY:
                shown = (problems, now)
                self.ctx.emit(
                    "propagating",
                    {
                        "what": what,
                        "waiting_on": problems,
                        "left": deadline - now,
                        "until": utc(time.time() + deadline - now),
                    },
                )
            time.sleep(max(0.0, min(POLL, deadline - now)))

    def propagation_evidence(self) -> dict[str, Json]:
        """How the answers were proven: the convergence, the servers left out."""
        required = self.required.to_json() if self.required is not None else {}
        return {
            "convergence": self.convergence,
            "waited": self.waited,
            **required,
        }

    def undo_for(self, old: Json, values: list[str], ttl: int) -> Json:
        """The undo record of a change of this RRset: what it was (`old`) and what the
        change makes of it; revert puts `old` back."""
        return {
            "provider": self.settings.provider,
            "zone": self.settings.zone,
            "name": self.record_name,
            "type": self.rdtype,
            "old": old,
            "new": {"values": values, "ttl": ttl},
        }

    def check_undo(self, undo: Json) -> None:
        rec = shape.record(undo)
        name = shape.text(rec, "name")
        if (name or "").rstrip(".").lower() != self.record_name.lower():
            raise UndoRecordError("'name' is not the record the step changed")
        if shape.text(rec, "type") != self.rdtype:
            raise UndoRecordError("'type' is not the record type the step changed")
        for key in ("old", "new"):
            shape.within(key, _record_set, shape.obj(rec, key))

    def revert(self, undo: Json) -> Json:
        return {"restored": self.provider().revert(undo).to_json()}

    def verify_reverted(self, undo: Json) -> Json:
        now, old = self.lookup(), RecordSet.from_json(undo["old"])
        if not same_values(self.rdtype, now.values, old.values) or now.ttl != old.ttl:
            raise StepFailed(
                f"{self.record_name} {self.rdtype} reads {now.show()} after the rollback, "
                f"expected {old.show()}"
            )
        return {"record": now.to_json()}


def _record_set(data: Json) -> None:
    """The shape RecordSet.to_json gives: values (texts) and a TTL (or null)."""
    shape.texts(data, "values")
    shape.whole(data, "ttl", optional=True)


def _ttl_problems(ttl: int) -> Any:
    def problems(answers: list[dict[str, Json]]) -> list[str]:
        return [
            f"{a['ns']} ({a['address']}) "
            + (a["error"] or f"answers TTL {a['ttl']}, not {ttl} or less")
            for a in answers
            if a["error"] or a["ttl"] is None or a["ttl"] > ttl
        ]

    return problems


@register
class DnsLowerTtl(_DnsAction):
    """The pool record's TTL lowered ahead of the cutover (see the module docstring)."""

    name = "dns.lower_ttl"

    Args = DnsLowerTtlArgs
    params: DnsLowerTtlArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.ttl = self.params.ttl
        # SRV: lowered only when it targets this host (the legacy FE), i.e. moves
        self.srv_from = ""
        if self.params.srv_from is not None:
            if self.rdtype != "SRV":
                raise UsageError(f"{self.name}: 'srv_from' is for SRV records only")
            self.srv_from = self.params.srv_from.rstrip(".").lower()

    def describe(self) -> list[Change]:
        when = ""
        if self.srv_from:
            when = f" when it targets {self.srv_from}"
        elif self.optional:
            when = " when it exists"
        return [
            Change(
                "change",
                self.target,
                f"lower the TTL of {self.record_name} {self.rdtype} to {self.ttl} s{when}, same "
                "value; journal when the old TTL has run out in every cache",
            )
        ]

    def read(self) -> Json:
        record = self.lookup()
        if not record.exists and not self.optional:
            raise CheckFailed(f"{self.record_name} has no {self.rdtype} record to lower")
        if self.diff(record.to_json()):
            self.changeable()
        return record.to_json()

    def diff(self, current: Json) -> list[Change]:
        if not current["values"]:
            return []  # optional and absent: nothing points at the legacy FE there
        if self.srv_from and not _srv_targets(current["values"], self.srv_from):
            return []  # does not target the legacy FE: the cutover leaves it alone
        if current["ttl"] <= self.ttl:
            return []
        values = ", ".join(current["values"])
        return [
            Change(
                "change",
                self.target,
                f"{self.record_name} {self.rdtype} {values}: TTL {current['ttl']} -> {self.ttl} s",
            )
        ]

    def undo_record(self, current: Json) -> Json:
        old = RecordSet.from_json(current)
        return self.undo_for(old.to_json(), list(old.values), self.ttl)

    def apply(self, current: Json) -> Json:
        values = current["values"]
        self.provider().replace(self.record_name, self.rdtype, values, self.ttl, expect=values)
        return {"name": self.record_name, "old": current, "ttl": self.ttl}

    def verify(self, evidence: Json) -> Json:
        answers = self.settle(_ttl_problems(self.ttl), "the lowered TTL is not served everywhere")
        lowered_at = time.time()  # the last server confirmed it: caches refill from here on
        ready_at = lowered_at + int(evidence["old"]["ttl"])
        return {
            **evidence,
            "servers": answers,
            **self.propagation_evidence(),
            "lowered_at": lowered_at,
            "ready_at": ready_at,
            "ready_at_utc": utc(ready_at),
        }


class _GuardedMove(_DnsAction):
    """A move of a record in the cutover: refused until lower-ttl's wait is over."""

    def _guard(self, record: RecordSet) -> dict[str, Json]:
        history = self.ctx.history
        if history is None:
            return {"checked": False, "why": "no journal (dry run): checked when the run starts"}
        lowered = history.lowered_ttl(self.record_name)
        if lowered is None:
            raise CheckFailed(
                f"the TTL of {self.record_name} was not lowered ahead of the cutover; "
                "nothing was changed",
                hint="run `ocsscale run --phase lower-ttl` first, then wait out the old TTL",
            )
        ready_at, lowered_to = lowered.ready_at, lowered.ttl
        if record.ttl is not None and record.ttl > lowered_to:
            raise CheckFailed(
                f"{self.record_name} has TTL {record.ttl} again, above the {lowered_to} s "
                "lower-ttl set: someone raised it since; nothing was changed",
                hint="run `ocsscale rollback --to lower-ttl`, then lower-ttl again and wait",
            )
        left = ready_at - time.time()
        if left > 0 and self.ctx.options.wait:
            self._wait_until(ready_at)
            left = 0
        if left > 0:
            raise CheckFailed(
                f"the old TTL of {self.record_name} runs out in every cache at {utc(ready_at)} "
                f"(in {int(left) + 1} s): the cutover may start then; nothing was changed",
                hint="run the cutover again after that moment, or with --wait",
            )
        return {"checked": True, "ready_at": ready_at, "ready_at_utc": utc(ready_at)}

    def _wait_until(self, ready_at: float) -> None:
        """`run --wait`: count down to the moment the old TTL has run out everywhere."""
        while (left := ready_at - time.time()) > 0:
            self.ctx.emit(
                "waiting",
                {
                    "what": f"the old TTL of {self.record_name}",
                    "until": utc(ready_at),
                    "left": left,
                },
            )
            time.sleep(min(left, 5.0))


@register
class DnsReplace(_GuardedMove):
    """The pool record moved to the VIP, guarded (see the module docstring)."""

    name = "dns.replace"

    Args = DnsReplaceArgs
    params: DnsReplaceArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.address = self.params.address
        self.expect = self.params.expect
        self.ttl = self.params.ttl

    def describe(self) -> list[Change]:
        return [
            Change(
                "change",
                self.target,
                f"{self.record_name} {self.rdtype} {self.expect} -> {self.address} "
                f"(TTL {self.ttl} s), only while it still holds {self.expect}",
            )
        ]

    def read(self) -> Json:
        record = self.lookup()
        done = same_values(self.rdtype, record.values, [self.address]) and record.ttl == self.ttl
        if self.optional and not record.exists:
            return {"record": record.to_json(), "guard": {"checked": False, "why": "absent"}}
        if self.optional and same_values(self.rdtype, record.values, [self.address]):
            # already at the VIP (moved before, or a resumed move): its TTL is left be
            return {"record": record.to_json(), "guard": {"checked": False, "why": "at the VIP"}}
        if self.optional and not done and not _ours_to_move(self.rdtype, record, self.expect):
            raise CheckFailed(
                f"{self.record_name} {self.rdtype} holds {record.show()}, not the legacy FE's "
                f"{self.expect}: it does not move with the pool name; nothing was changed",
                hint=f"list {self.record_name} in dns.keep to leave it where it is, "
                f"or point it back at {self.expect}",
            )
        guard = {"checked": False, "why": "already done"} if done else self._guard(record)
        return {"record": record.to_json(), "guard": guard}

    def diff(self, current: Json) -> list[Change]:
        record = RecordSet.from_json(current["record"])
        if self.optional and (
            not record.exists or same_values(self.rdtype, record.values, [self.address])
        ):
            return []  # absent, or already at the VIP: nothing points at the legacy FE
        if same_values(self.rdtype, record.values, [self.address]) and record.ttl == self.ttl:
            return []
        return [
            Change(
                "change",
                self.target,
                f"{self.record_name} {self.rdtype} {record.show()} -> {self.address} "
                f"(TTL {self.ttl} s), only while it still holds {self.expect}",
            )
        ]

    def undo_record(self, current: Json) -> Json:
        return self.undo_for(current["record"], [self.address], self.ttl)

    def apply(self, current: Json) -> Json:
        undo = self.provider().replace(
            self.record_name, self.rdtype, [self.address], self.ttl, expect=[self.expect]
        )
        return {"old": undo["old"], "new": undo["new"], "changed_at": time.time()}

    def verify(self, evidence: Json) -> Json:
        record = self.lookup()
        if not same_values(self.rdtype, record.values, [self.address]) or record.ttl != self.ttl:
            raise StepFailed(
                f"{self.record_name} {self.rdtype} reads {record.show()} after the change"
            )
        return {**evidence, "read_back": record.to_json()}


def _ours_to_move(rdtype: str, record: RecordSet, expect: str) -> bool:
    """The record holds the legacy value (what the guarded replace expects)."""
    return same_values(rdtype, record.values, [expect])


def srv_target(value: str) -> str:
    """The target host of an SRV value ('prio weight port target')."""
    return value.split()[-1].rstrip(".").lower() if value.split() else ""


def _srv_targets(values: list[str], host: str) -> bool:
    return any(srv_target(v) == host for v in values)


def retargeted(values: list[str], old: str, new: str) -> list[str]:
    """The SRV values with the target `old` aimed at `new` (priority, weight and
    port kept); every other value as it is."""
    out = []
    for value in values:
        parts = value.split()
        if len(parts) == 4 and srv_target(value) == old:
            parts[3] = new.rstrip(".") + "."
        out.append(" ".join(parts))
    return out


@register
class DnsRetargetSrv(_GuardedMove):
    """A SIP SRV record aiming at the legacy FE's host name aimed at the pool name,
    guarded on its whole old RRset, in the cutover.

    Args: `name` (the SRV owner), `from` (the legacy FE's FQDN), `to` (the pool
    FQDN or dns.srv_target), `ttl` (the cutover TTL). Reads the RRset over DNS;
    absent, or aiming elsewhere: nothing to do (the inventory showed it). Refused
    unless lower-ttl's wait for it is over (as dns.replace). Changes: each value
    targeting `from` gets `to`, priority, weight and port kept, only while the
    RRset still holds what was read. Undo: the old values and TTL. Proof: read
    back; dns.verify (type SRV) then proves it on every server that must answer."""

    name = "dns.retarget_srv"

    Args = DnsRetargetSrvArgs
    params: DnsRetargetSrvArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.old_target = self.params.old_target.rstrip(".").lower()
        self.new_target = self.params.to.rstrip(".").lower()
        self.ttl = self.params.ttl

    def describe(self) -> list[Change]:
        return [
            Change(
                "change",
                self.target,
                f"{self.record_name} SRV: target {self.old_target} -> {self.new_target} "
                f"(TTL {self.ttl} s) when it targets the legacy FE, only while it still "
                "holds what was read",
            )
        ]

    def _wanted(self, record: RecordSet) -> list[str]:
        return retargeted(list(record.values), self.old_target, self.new_target)

    def read(self) -> Json:
        record = self.lookup()
        if not _srv_targets(list(record.values), self.old_target):
            why = "absent" if not record.exists else "does not target the legacy FE"
            return {"record": record.to_json(), "guard": {"checked": False, "why": why}}
        self.changeable()
        return {"record": record.to_json(), "guard": self._guard(record)}

    def diff(self, current: Json) -> list[Change]:
        record = RecordSet.from_json(current["record"])
        if not _srv_targets(list(record.values), self.old_target):
            return []
        return [
            Change(
                "change",
                self.target,
                f"{self.record_name} SRV {record.show()} -> "
                f"{', '.join(self._wanted(record))} (TTL {self.ttl} s), only while it "
                "still holds that",
            )
        ]

    def undo_record(self, current: Json) -> Json:
        record = RecordSet.from_json(current["record"])
        return self.undo_for(current["record"], self._wanted(record), self.ttl)

    def apply(self, current: Json) -> Json:
        record = RecordSet.from_json(current["record"])
        wanted = self._wanted(record)
        undo = self.provider().replace(
            self.record_name, "SRV", wanted, self.ttl, expect=list(record.values)
        )
        return {
            "name": self.record_name,
            "old": undo["old"],
            "new": undo["new"],
            "changed_at": time.time(),
        }

    def verify(self, evidence: Json) -> Json:
        # read back on the server changed; dns.verify (type SRV) then proves it on
        # every server that must answer, after the pool name has moved too
        wanted = list(evidence["new"]["values"])
        record = self.lookup()
        if not same_values("SRV", record.values, wanted) or record.ttl != self.ttl:
            raise StepFailed(f"{self.record_name} SRV reads {record.show()} after the change")
        return {**evidence, "read_back": record.to_json()}


def _same(a: Any, b: str) -> bool:
    return str(a or "").rstrip(".").lower() == b.rstrip(".").lower()


@register
class DnsVerify(_DnsAction):
    """Every name server answers the new value (see the module docstring)."""

    name = "dns.verify"
    read_only = True

    Args = DnsVerifyArgs
    params: DnsVerifyArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        if self.rdtype == "SRV":
            # the values the cutover's retarget gave it, read from the journal
            self.address = f"targeting {required(self.name, 'srv_to', self.params.srv_to)}"
            self.optional = True
        else:
            self.address = required(self.name, "address", self.params.address)
        self.expected = [self.address]

    def describe(self) -> list[Change]:
        if self.convergence == propagation.REPLICATION:
            how = (
                f"as AD replication brings it (at most {self.settle_for:g} s); no serials compared"
            )
        else:
            how = "with the same SOA serial"
        return [
            Change(
                "check",
                self.target,
                f"every name server of {self.settings.zone} answers {self.record_name} "
                f"{self.rdtype} {self.address}, {how}",
            )
        ]

    def _problems(self, answers: list[dict[str, Json]]) -> list[str]:
        problems = []
        for a in answers:
            where = f"{a['ns']} ({a['address']})"
            if a["error"]:
                problems.append(f"{where}: {a['error']}")
            elif not same_values(self.rdtype, a["values"], self.expected):
                shown = ", ".join(a["values"]) or "no record"
                problems.append(f"{where} answers {shown}")
        if self.convergence == propagation.SERIAL:
            problems += propagation.serial_problems(answers)
        return problems

    def apply(self, current: Json) -> Json:
        history = self.ctx.history
        moved = history.moves_in_place(self.record_name) if history is not None else []
        if self.optional and history is not None and not moved:
            # absent at the cutover, or (SRV) not aimed at the legacy FE: nothing moved
            return {"name": self.record_name, "address": self.address, "moved": False}
        if self.rdtype == "SRV":
            self.expected = list(moved[0].undo["new"]["values"])
        answers = self.settle(
            self._problems, f"{self.record_name} is not {self.address} on every name server"
        )
        return {
            "name": self.record_name,
            "address": self.address,
            "servers": answers,
            **self.propagation_evidence(),
        }


def _ttl_everywhere(values: list[str], ttl: int, rdtype: str) -> Any:
    def problems(answers: list[dict[str, Json]]) -> list[str]:
        return [
            f"{a['ns']} ({a['address']}) "
            + (a["error"] or f"answers {', '.join(a['values']) or 'nothing'} (TTL {a['ttl']})")
            for a in answers
            if a["error"] or not same_values(rdtype, a["values"], values) or a["ttl"] != ttl
        ]

    return problems


@register
class DnsRaiseTtl(_DnsAction):
    """The cut-over record's long TTL back (module docstring)."""

    name = "dns.raise_ttl"

    Args = DnsRaiseTtlArgs
    params: DnsRaiseTtlArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        # SRV: every value targets `srv_to` once cut over (the pool FQDN)
        self.srv_to = (self.params.srv_to or "").rstrip(".").lower()
        if self.rdtype == "SRV":
            if not self.srv_to:
                raise UsageError(f"{self.name}: an SRV record needs 'srv_to'")
            self.address = self.srv_to
        else:
            self.address = required(self.name, "address", self.params.address)
        self.ttl = self.params.ttl

    def describe(self) -> list[Change]:
        when = " when the cutover moved it" if self.optional else ""
        return [
            Change(
                "change",
                self.target,
                f"{self.record_name} {self.rdtype} {self.address}: TTL back to {self.ttl} s{when}",
            )
        ]

    def _cut_over(self, current: Json) -> bool:
        if self.rdtype == "SRV":
            values = current["values"]
            return bool(values) and all(srv_target(v) == self.srv_to for v in values)
        return same_values(self.rdtype, current["values"], [self.address])

    def _moved(self) -> bool:
        """An optional name: whether this cutover moved it (a done, unreverted move
        of it in the journal); one it left alone keeps its TTL. No journal (a dry
        run): assume it will be."""
        history = self.ctx.history
        if history is None:
            return True
        return bool(history.moves_in_place(self.record_name))

    def read(self) -> Json:
        return self.lookup().to_json()

    def diff(self, current: Json) -> list[Change]:
        if self.optional and (not current["values"] or not self._moved()):
            return []  # absent, or left alone by the cutover: its TTL is not ours
        if not self._cut_over(current):
            return self.describe()  # a dry run before the cutover: what it will do
        if current["ttl"] == self.ttl:
            return []
        return [
            Change(
                "change",
                self.target,
                f"{self.record_name} {self.rdtype} {self.address}: TTL {current['ttl']} -> "
                f"{self.ttl} s",
            )
        ]

    def undo_record(self, current: Json) -> Json:
        old = RecordSet.from_json(current)
        return self.undo_for(old.to_json(), list(old.values), self.ttl)

    def apply(self, current: Json) -> Json:
        if not self._cut_over(current):
            raise CheckFailed(
                f"{self.record_name} {self.rdtype} reads {RecordSet.from_json(current).show()}, "
                f"not {self.address}: the cutover is not in place; nothing was changed"
            )
        values = current["values"]
        self.provider().replace(self.record_name, self.rdtype, values, self.ttl, expect=values)
        return {"name": self.record_name, "old": current, "ttl": self.ttl}

    def verify(self, evidence: Json) -> Json:
        values = list(evidence["old"]["values"])
        answers = self.settle(
            _ttl_everywhere(values, self.ttl, self.rdtype),
            f"{self.record_name} does not have TTL {self.ttl} on every name server",
        )
        return {**evidence, "servers": answers}
