"""The findings the report draws, picked out of the journal's evidence.

Evidence is read through its typed records (ocsscale/evidence.py): leniently
for numbers (a missing one, one written as text), strictly for shapes. A record
of the wrong shape (a journal from an older or newer ocsscale, or edited by
hand) is left out and named in `problems`, which the report shows as a note:
the report still comes, with less in it.

- distribution: the evidence of `lb.distribution` (counts, ideal, weights...);
- failover: the evidence of `lb.failover_drill`, one row per drill (and the
  error of a drill that failed), with how each moment was measured;
- lb_pair: with a pair of LBs, which host held the VIP through the run (the
  evidence of `lb.pair_holder` and `lb.pair_drill`) and one row per LB drill:
  its takeover and failback times and the failed requests per second around each
  (the drill's load buckets, by their labels);
- reach: the evidence of `lb.reach`, the VIP's required and optional ports
  from each host;
- load: any list of per-second buckets `{t, label, ok, failed}` found in any
  evidence (the drill's `load.failed_seconds`, a migration-wide load report's
  `buckets`), laid over the phases' time spans, and any `load.labels` tallies;
- dns: the steps of actions named `dns.*`, with the old and new values and
  TTLs their undo record or evidence holds;
- cut: the sessions a wait ended by cutting them (a drained restart's drain
  timeout, decommission's drain timeout under `on_timeout: stop`), with the
  client addresses the evidence names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from ..evidence import (
    Distribution,
    DnsChange,
    DrillResult,
    EvidenceError,
    LbDrillResult,
    LoadReport,
    LoadTally,
    RecordValues,
    count,
    is_bucket_list,
    load_buckets,
)
from ..plan.playbook import PHASE_IDS


class Entry(Protocol):
    """What the findings read of a journal entry (runner.records.Entry): the
    step, and its evidence to read through its typed record."""

    @property
    def seq(self) -> int: ...
    @property
    def cycle_id(self) -> int | None: ...
    @property
    def step_id(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def args(self) -> Mapping[str, Any]: ...
    @property
    def status(self) -> str: ...
    @property
    def started(self) -> float: ...
    @property
    def finished(self) -> float | None: ...
    @property
    def undo(self) -> Any: ...
    @property
    def evidence(self) -> Any: ...
    @property
    def error(self) -> str | None: ...


class Cycle(Protocol):
    """A phase's cycle (runner.records.Cycle): the time span its load is laid over."""

    @property
    def cycle_id(self) -> int: ...
    @property
    def phase(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def started(self) -> float: ...
    @property
    def finished(self) -> float | None: ...


#: how deep evidence is searched for load buckets (evidence is small JSON)
_MAX_DEPTH = 6

_Record = TypeVar("_Record")

#: what a finding's reader says of a record it refused (report.model puts them in the notes)
Problems = list[str] | None


def _read(e: Any, read: Callable[[], _Record], problems: Problems) -> _Record | None:
    """The step's record, or None (and the reason in `problems`) when its evidence
    is not the record its action writes."""
    try:
        return read()
    except EvidenceError as exc:
        if problems is not None:
            problems.append(f"step {e.step_id} (#{e.seq}): {exc.message}; not shown")
        return None


def _count(value: Any) -> int | None:
    return count(value)


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _done_with(entries: Sequence[Entry], action: str) -> Iterator[Entry]:
    for e in entries:
        if e.action == action and isinstance(e.evidence, Mapping):
            yield e


# -- distribution --------------------------------------------------------------------
def distributions(entries: Sequence[Entry], problems: Problems = None) -> list[dict[str, Any]]:
    out = []
    for e in _done_with(entries, "lb.distribution"):
        ev = _read(e, lambda e=e: Distribution.from_json(e.evidence), problems)
        if ev is None or not ev.counts:
            continue
        rows = []
        for fe, n in ev.counts.items():
            proof = ev.nat.get(fe)
            want = _float(ev.ideal.get(fe))
            rows.append(
                {
                    "fe": fe,
                    "count": n or 0,
                    "ideal": want,
                    "weight": _float(ev.weights.get(fe)),
                    # a count that cannot be read proves nothing: not within one
                    "within_one": None if want is None else n is not None and abs(n - want) <= 1.0,
                    "nat_proven": None if proof is None else proof.proven,
                    "from_snat": None if proof is None else proof.from_snat,
                    "from_clients": None
                    if proof is None or proof.from_clients is None
                    else list(proof.from_clients),
                    "nat_note": None if proof is None else proof.why,
                }
            )
        out.append(
            {
                "step": e.step_id,
                "seq": e.seq,
                "status": e.status,
                "vip": ev.vip,
                "port": ev.port,
                "connections": ev.connections,
                "rows": rows,
            }
        )
    return out


# -- failover drill ---------------------------------------------------------------------
def _survived(held: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in held.items()) if held else "-"


def drills(entries: Sequence[Entry], problems: Problems = None) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        if e.action != "lb.failover_drill":
            continue
        if not e.evidence and e.status != "failed":
            continue  # not finished yet
        ev = _read(e, lambda e=e: DrillResult.from_json(e.evidence or {}), problems)
        if ev is None:
            continue
        out.append(
            {
                "step": e.step_id,
                "seq": e.seq,
                "status": e.status,
                "fe": ev.fe or e.args.get("fe"),
                "mode": ev.mode or e.args.get("mode"),
                "detect_s": _float(ev.detect_s),
                "back_s": _float(ev.back_s),
                "requests": ev.requests,
                "failed_until_detection": ev.failed_until_detection,
                "failed_after_detection": ev.failed_after_detection,
                "held_survived": _survived(ev.held_survived),
                "detected_by": ev.detected_by.words() if ev.detected_by else "-",
                "back_detected_by": ev.back_detected_by.words() if ev.back_detected_by else "-",
                "error": e.error,
            }
        )
    return out


# -- a pair of load balancers ----------------------------------------------------------
#: the labels of an LB drill's load around the takeover and around the failback
_TAKEOVER_LABELS = ("lb-fault", "after-takeover")
_FAILBACK_LABELS = ("lb-restore", "failback", "after-failback")


def _holder(held: Mapping[str, bool | None]) -> str:
    holding = [n for n, h in held.items() if h]
    unread = [n for n, h in held.items() if h is None]
    said = " and ".join(holding) or "neither host"
    return said + (f" ({', '.join(unread)} not read)" if unread else "")


def _per_second(evidence: Any, labels: tuple[str, ...], since: float | None) -> list[str]:
    """'+Ns: F failed' for each second of the drill's load under `labels`, from
    `since` (the fault or the restore)."""
    load = evidence.get("load") if isinstance(evidence, Mapping) else None
    items = load.get("failed_seconds") if isinstance(load, Mapping) else None
    if not isinstance(items, list) or not is_bucket_list(items):
        return []
    out = []
    for b in load_buckets(items[:600], "an LB drill's load"):
        if b.label in labels and b.t is not None and b.failed:
            at = f"+{b.t - since:.0f} s" if since is not None else f"{b.t:.0f}"
            out.append(f"{at}: {b.failed} failed")
    return out


def lb_pair(entries: Sequence[Entry], problems: Problems = None) -> dict[str, Any]:
    """Which host held the VIP through the run, and the LB drills."""
    holders: list[dict[str, Any]] = []
    drills_out: list[dict[str, Any]] = []
    for e in entries:
        if e.action == "lb.pair_holder" and isinstance(e.evidence, Mapping):
            active = e.evidence.get("active")
            holders.append(
                {
                    "step": e.step_id,
                    "at": e.finished,
                    "moment": "validate-lb",
                    "holder": active if isinstance(active, str) else "-",
                }
            )
        if e.action != "lb.pair_drill" or (not e.evidence and e.status != "failed"):
            continue
        ev = _read(e, lambda e=e: LbDrillResult.from_json(e.evidence or {}), problems)
        if ev is None:
            continue
        for moment, held, at in (
            ("before the fault", ev.holders_before, ev.fault_at),
            ("after the takeover", ev.holders_during, ev.takeover_at),
            ("after the failback", ev.holders_after, ev.failback_at or ev.restored_at),
        ):
            if held:
                holders.append(
                    {"step": e.step_id, "at": at, "moment": moment, "holder": _holder(held)}
                )
        drills_out.append(
            {
                "step": e.step_id,
                "status": e.status,
                "mode": ev.mode or e.args.get("mode"),
                "host": ev.host,
                "standby": ev.standby,
                "takeover_s": _float(ev.takeover_s),
                "takeover_target_s": _float(ev.takeover_target_s),
                "takeover_target_met": ev.takeover_target_met,
                "failback_s": _float(ev.failback_s),
                "failback": ev.failback,
                "requests": ev.requests,
                "failed_until_takeover": ev.failed_until_takeover,
                "failed_after_takeover": ev.failed_after_takeover,
                "failed_around_failback": ev.failed_around_failback,
                "failed_after_failback": ev.failed_after_failback,
                "held_lost": f"{ev.held_lost}/{ev.held}" if ev.held is not None else "-",
                "takeover_failed_per_s": _per_second(e.evidence, _TAKEOVER_LABELS, ev.fault_at),
                "failback_failed_per_s": _per_second(e.evidence, _FAILBACK_LABELS, ev.restored_at),
                "error": e.error,
            }
        )
    return {"holders": holders, "drills": drills_out}


# -- ports through the VIP -----------------------------------------------------------------
def _ports(value: Any) -> list[int]:
    if not isinstance(value, list):
        return []
    return [n for n in (_count(v) for v in value[:100]) if n is not None and 0 < n < 65536]


def reaches(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    """lb.reach: from each host, the required ports and the optional ones, answering or not."""
    out = []
    for e in _done_with(entries, "lb.reach"):
        ev = e.evidence
        rows = ev.get("ports") if isinstance(ev.get("ports"), list) else []
        failed = _ports([r.get("port") for r in rows if isinstance(r, Mapping) and not r.get("ok")])
        required = _ports(ev.get("required"))
        out.append(
            {
                "step": e.step_id,
                "status": e.status,
                "from": ev.get("from") or e.args.get("from"),
                "vip": ev.get("vip"),
                "required": required,
                "required_failed": [p for p in required if p in failed],
                "optional_answering": _ports(ev.get("optional_answering")),
                "optional_not_answering": _ports(ev.get("optional_not_answering")),
            }
        )
    return out


# -- client load ---------------------------------------------------------------------------
def _find_loads(value: Any, path: str, depth: int) -> Iterator[tuple[str, LoadReport]]:
    """The load reports in `value`, wherever they are. A mapping that holds a list
    of per-second buckets is a load report: its own `buckets` (or else its
    `failed_seconds`) is taken and nothing deeper, so a merged report's
    per-client copies are not counted twice; a list of buckets under another
    name is a load's buckets too."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, Mapping):
        if LoadReport.looks_like(value):
            report = LoadReport.from_json(value, f"the load report at `{path or '.'}`")
            yield f"{path}{'failed_seconds' if report.only_failed else 'buckets'}", report
            return
        for key, item in value.items():
            if is_bucket_list(item):
                buckets = load_buckets(item, f"the load at `{path}{key}`")
                yield f"{path}{key}", LoadReport(buckets, str(key).endswith("failed_seconds"))
            elif isinstance(item, Mapping | list):
                yield from _find_loads(item, f"{path}{key}.", depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, Mapping | list):
                yield from _find_loads(item, f"{path}{i}.", depth + 1)


def _find_labels(value: Any, depth: int = 0) -> Iterator[dict[str, LoadTally]]:
    """`load.labels` style tallies: {label: {requests, ok, failed}}."""
    if depth > _MAX_DEPTH or not isinstance(value, Mapping):
        return
    load = value.get("load")
    if isinstance(load, Mapping) and isinstance(load.get("labels"), Mapping):
        yield {str(k): LoadTally.from_json(v) for k, v in load["labels"].items()}
        return
    for item in value.values():
        yield from _find_labels(item, depth + 1)


def _covers(span: dict[str, Any], t: float) -> bool:
    # a bucket is the whole second from t: it may start before the phase did
    return bool(span["start"] - 1.0 <= t <= span["end"] + 1.0)


def _phase_at(t: float, spans: list[dict[str, Any]], own: dict[str, Any] | None) -> str:
    """The phase running at second `t`: the step's own, when it covers t (so
    phases that follow each other within a second are not mixed up), else the
    latest one that does."""
    if own is not None and _covers(own, t):
        return str(own["phase"])
    for span in reversed(spans):
        if _covers(span, t):
            return str(span["phase"])
    return "between phases"


#: the moments a load is marked with, in the order they happen (the journal
#: stores JSON keys sorted, so the order is restored here): the drill's, then
#: the phases (a migration-wide load is labelled by phase)
_MOMENTS = ("before", "fault", "after-detection", "restore", "back", *PHASE_IDS)


def _label_order(item: tuple[str, Any]) -> tuple[int, str]:
    label = item[0]
    return (_MOMENTS.index(label) if label in _MOMENTS else len(_MOMENTS), label)


def load_timeline(
    entries: Sequence[Entry], cycles: Sequence[Cycle], problems: Problems = None
) -> dict[str, Any]:
    spans = [
        {
            "phase": c.phase,
            "status": c.status,
            "start": c.started,
            "end": c.finished if c.finished is not None else c.started,
        }
        for c in cycles
    ]
    # a cycle still running ends at its last step's last moment
    for span, cycle in zip(spans, cycles, strict=True):
        if cycle.finished is None:
            times = [e.finished or e.started for e in entries if e.cycle_id == cycle.cycle_id]
            span["end"] = max([span["start"], *times])
    series = []
    # per (phase, the step whose evidence holds the load): a drill's own load and
    # the migration-wide client load are different requests, shown apart
    per_phase: dict[tuple[str, str], dict[str, Any]] = {}
    by_cycle = {c.cycle_id: span for c, span in zip(cycles, spans, strict=True)}
    for e in entries:
        if e.evidence is None:
            continue
        own = by_cycle.get(e.cycle_id)
        found = _read(e, lambda e=e: list(_find_loads(e.evidence, "", 0)), problems)
        for path, report in found or []:
            points = []
            for b in report.buckets:
                t, ok, failed = b.t, b.ok, b.failed
                if t is not None:  # a second that cannot be placed is still counted
                    points.append({"t": t, "label": b.label, "ok": ok, "failed": failed})
                phase = "between phases" if t is None else _phase_at(t, spans, own)
                tally = per_phase.setdefault(
                    (phase, e.step_id),
                    {"ok": 0, "failed": 0, "seconds_failing": 0, "only_failed": False},
                )
                tally["only_failed"] = report.only_failed
                tally["ok"] += ok
                tally["failed"] += failed
                tally["seconds_failing"] += 1 if failed else 0
            only_failed = report.only_failed
            series.append(
                {
                    "step": e.step_id,
                    "seq": e.seq,
                    "path": path,
                    "only_failed": only_failed,
                    "points": points,
                }
            )
    labels = []
    for e in entries:
        for tallies in _find_labels(e.evidence):
            for label, tally in sorted(tallies.items(), key=_label_order):
                labels.append(
                    {
                        "step": e.step_id,
                        "label": label,
                        "requests": tally.requests,
                        "ok": tally.ok,
                        "failed": tally.failed,
                    }
                )
    return {
        "phases": [{k: span[k] for k in ("phase", "status", "start", "end")} for span in spans],
        "series": series,
        "per_phase": [{"phase": p, "step": step, **v} for (p, step), v in per_phase.items()],
        "labels": labels,
    }


# -- DNS --------------------------------------------------------------------------------
def _values(record: RecordValues | None) -> dict[str, Any] | None:
    return None if record is None else {"values": list(record.values), "ttl": record.ttl}


def dns_changes(entries: Sequence[Entry], problems: Problems = None) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        if not e.action.startswith("dns."):
            continue
        ev = _read(e, lambda e=e: DnsChange.from_json(e.evidence, e.undo), problems)
        if ev is None:
            continue
        old, new = _values(ev.old), _values(ev.new)
        if new is None and ev.ttl_changed and old is not None:
            new = {"values": old["values"], "ttl": ev.ttl}  # a TTL-only change
        if new is None and ev.address:
            new = {"values": [ev.address], "ttl": None}  # what was verified
        out.append(
            {
                "step": e.step_id,
                "seq": e.seq,
                "action": e.action,
                "status": e.status,
                "name": ev.name or e.args.get("name"),
                "type": ev.type or e.args.get("type") or "A",
                "old": old,
                "new": new,
                "read_back": _values(ev.read_back),
                "ready_at_utc": ev.ready_at_utc,
                "servers": [
                    {
                        "ns": a.ns,
                        "address": a.address,
                        "values": list(a.values),
                        "ttl": a.ttl,
                        "serial": a.serial,
                        "error": a.error,
                    }
                    for a in ev.servers
                ],
                "error": e.error,
            }
        )
    return out


# -- sessions cut ---------------------------------------------------------------------------
#: client addresses shown per step (the evidence holds at most 20)
_MAX_ADDRESSES = 20


def sessions_cut(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    """One row per done step whose wait ended by cutting sessions."""
    out = []
    for e in entries:
        if e.status != "done" or not isinstance(e.evidence, Mapping):
            continue
        ev = e.evidence
        if e.action == "lb.drain_restart":
            count, host = _count(ev.get("sessions_cut")), ev.get("fe")
            ports = {str(k): _count(v) for k, v in _mapping(ev.get("sessions_cut_by_port")).items()}
            where = ", ".join(f"{p}: {n}" for p, n in sorted(ports.items()))
            addresses: list[str] = []
            more = 0
        elif e.action == "legacy.drain":
            count, host = _count(ev.get("clients_cut")), ev.get("legacy")
            listed = ev.get("client_addresses")
            addresses = (
                [str(a) for a in listed if isinstance(a, str)] if isinstance(listed, list) else []
            )
            addresses, more = (
                addresses[:_MAX_ADDRESSES],
                _count(ev.get("client_addresses_more")) or 0,
            )
            where = ""
        else:
            continue
        if not count:
            continue
        out.append(
            {
                "step": e.step_id,
                "seq": e.seq,
                "action": e.action,
                "host": str(host or "-"),
                "sessions": count,
                "ports": where,
                "addresses": addresses,
                "more": more,
            }
        )
    return out
