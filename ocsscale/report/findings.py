"""The findings the report draws, picked out of the journal's evidence.

Evidence is whatever an action returned, so everything here reads it
defensively (a missing key, a number that is a string): a journal from an
older or newer ocsscale still gives a report, with less in it.

- distribution: the evidence of `lb.distribution` (counts, ideal, weights...);
- failover: the evidence of `lb.failover_drill`, one row per drill (and the
  error of a drill that failed), with how each moment was measured;
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

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..plan.playbook import PHASE_IDS
from ..runner.journal import Cycle, Entry

#: how deep evidence is searched for load buckets (evidence is small JSON)
_MAX_DEPTH = 6


#: numbers in evidence are clamped to this: no count, duration or moment of a
#: migration comes near it, and charts, sums and formats stay finite below it
_MAX_NUMBER = 1e15
#: a moment (seconds since 1970) is read only from 1970 up to the year 3000
_MAX_MOMENT = 32_503_680_000.0


def _parse(value: Any) -> float | None:
    """The number `value` holds (NaN, an infinity or a huge int included), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):  # float() of a huge int overflows
        return float(max(-_MAX_NUMBER, min(_MAX_NUMBER, value)))
    if isinstance(value, float):
        return value
    if isinstance(value, str) and len(value) <= 40:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _num(value: Any) -> float | None:
    """A number from evidence (untrusted), clamped to +-_MAX_NUMBER (1e308 and
    infinities included); None for NaN or what is not a number."""
    number = _parse(value)
    if number is None or math.isnan(number):
        return None
    return max(-_MAX_NUMBER, min(_MAX_NUMBER, number))


def _count(value: Any) -> int | None:
    """A count (of requests, connections): a whole number not below 0, or None."""
    number = _num(value)
    return None if number is None or number < 0 else int(number)


def _nonnegative(value: Any) -> float | None:
    """Seconds, an ideal share, a weight: a number not below 0, or None."""
    number = _num(value)
    return None if number is None or number < 0 else number


def _moment(value: Any) -> float | None:
    """Seconds since 1970, or None for a moment no run can have had."""
    number = _num(value)
    return None if number is None or not 0 <= number <= _MAX_MOMENT else number


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _done_with(entries: Sequence[Entry], action: str) -> Iterator[Entry]:
    for e in entries:
        if e.action == action and isinstance(e.evidence, Mapping):
            yield e


# -- distribution --------------------------------------------------------------------
def distributions(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    out = []
    for e in _done_with(entries, "lb.distribution"):
        ev = e.evidence
        counts = {str(k): _count(v) for k, v in _mapping(ev.get("counts")).items()}
        if not counts:
            continue
        ideal = {str(k): _nonnegative(v) for k, v in _mapping(ev.get("ideal")).items()}
        weights = {str(k): _nonnegative(v) for k, v in _mapping(ev.get("weights")).items()}
        nat = _mapping(ev.get("nat"))
        rows = []
        for fe, n in counts.items():
            proof = _mapping(nat.get(fe))
            want = ideal.get(fe)
            rows.append(
                {
                    "fe": fe,
                    "count": n or 0,
                    "ideal": want,
                    "weight": weights.get(fe),
                    # a count that cannot be read proves nothing: not within one
                    "within_one": None if want is None else n is not None and abs(n - want) <= 1.0,
                    "nat_proven": proof.get("proven"),
                    "from_snat": proof.get("from_snat"),
                    "from_clients": proof.get("from_clients"),
                    "nat_note": proof.get("why"),
                }
            )
        out.append(
            {
                "step": e.step_id,
                "seq": e.seq,
                "status": e.status,
                "vip": ev.get("vip"),
                "port": _count(ev.get("port")),
                "connections": _count(ev.get("connections")),
                "rows": rows,
            }
        )
    return out


# -- failover drill ---------------------------------------------------------------------
def _measured(value: Any) -> str:
    """How a drill's moment was measured (its `detected_by`), in fixed words: the
    journal's value only picks one, never reaches the report itself."""
    how = _mapping(value)
    by = how.get("by")
    if by == "lb-view":
        return "LB's view"
    if by == "outside":
        run = _count(how.get("run"))
        if run is not None:
            return f"from outside ({run} in a row)"
        return "from outside"
    if by == "operator":
        return "operator"
    return "-"


def _survived(value: Any) -> str:
    held = _mapping(value)
    return ", ".join(f"{k}: {v}" for k, v in held.items()) if held else "-"


def drills(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        if e.action != "lb.failover_drill":
            continue
        ev = _mapping(e.evidence)
        if not ev and e.status != "failed":
            continue  # not finished yet
        out.append(
            {
                "step": e.step_id,
                "seq": e.seq,
                "status": e.status,
                "fe": ev.get("fe") or e.args.get("fe"),
                "mode": ev.get("mode") or e.args.get("mode"),
                "detect_s": _nonnegative(ev.get("detect_s")),
                "back_s": _nonnegative(ev.get("back_s")),
                "requests": _count(ev.get("requests")),
                "failed_until_detection": _count(ev.get("failed_until_detection")),
                "failed_after_detection": _count(ev.get("failed_after_detection")),
                "held_survived": _survived(ev.get("held_survived")),
                "detected_by": _measured(ev.get("detected_by")),
                "back_detected_by": _measured(ev.get("back_detected_by")),
                "error": e.error,
            }
        )
    return out


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
def _is_bucket(item: Any) -> bool:
    return (
        isinstance(item, Mapping)
        # the shape of a bucket: numbers, even unreadable ones (they are still counted)
        and _parse(item.get("t")) is not None
        and _parse(item.get("failed")) is not None
        and ("ok" in item or "label" in item)
    )


def _bucket_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_bucket(b) for b in value)


def _find_buckets(value: Any, path: str, depth: int) -> Iterator[tuple[str, list[Any]]]:
    """Lists of per-second buckets in `value`. A mapping that holds one is a load
    report: its own `buckets` (or else its `failed_seconds`) is taken and nothing
    deeper, so a merged report's per-client copies are not counted twice."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, Mapping):
        for key in ("buckets", "failed_seconds"):
            if _bucket_list(value.get(key)):
                yield f"{path}{key}", value[key]
                return
        for key, item in value.items():
            if _bucket_list(item):
                yield f"{path}{key}", item
            elif isinstance(item, Mapping | list):
                yield from _find_buckets(item, f"{path}{key}.", depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, Mapping | list):
                yield from _find_buckets(item, f"{path}{i}.", depth + 1)


def _find_labels(value: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """`load.labels` style tallies: {label: {requests, ok, failed}}."""
    if depth > _MAX_DEPTH or not isinstance(value, Mapping):
        return
    load = value.get("load")
    if isinstance(load, Mapping) and isinstance(load.get("labels"), Mapping):
        yield dict(load["labels"])
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


def load_timeline(entries: Sequence[Entry], cycles: Sequence[Cycle]) -> dict[str, Any]:
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
        for path, buckets in _find_buckets(e.evidence, "", 0):
            points = []
            for b in buckets:
                t = _moment(b.get("t"))
                ok = _count(b.get("ok")) or 0
                failed = _count(b.get("failed")) or 0
                if t is not None:  # a second that cannot be placed is still counted
                    points.append(
                        {"t": t, "label": str(b.get("label", "")), "ok": ok, "failed": failed}
                    )
                phase = "between phases" if t is None else _phase_at(t, spans, own)
                tally = per_phase.setdefault(
                    (phase, e.step_id),
                    {"ok": 0, "failed": 0, "seconds_failing": 0, "only_failed": False},
                )
                tally["only_failed"] = path.endswith("failed_seconds")
                tally["ok"] += ok
                tally["failed"] += failed
                tally["seconds_failing"] += 1 if failed else 0
            only_failed = path.endswith("failed_seconds")
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
                t = _mapping(tally)
                labels.append(
                    {
                        "step": e.step_id,
                        "label": str(label),
                        "requests": _count(t.get("requests")),
                        "ok": _count(t.get("ok")),
                        "failed": _count(t.get("failed")),
                    }
                )
    return {
        "phases": [{k: span[k] for k in ("phase", "status", "start", "end")} for span in spans],
        "series": series,
        "per_phase": [{"phase": p, "step": step, **v} for (p, step), v in per_phase.items()],
        "labels": labels,
    }


# -- DNS --------------------------------------------------------------------------------
def _record(value: Any) -> dict[str, Any] | None:
    rec = _mapping(value)
    if not rec:
        return None
    values = rec.get("values")
    if isinstance(values, str):
        values = [values]
    return {
        "values": [str(v) for v in values or []],
        "ttl": _count(rec.get("ttl")),
    }


def _servers(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    out = []
    for a in value:
        a = _mapping(a)
        if a:
            out.append(
                {
                    "ns": a.get("ns"),
                    "address": a.get("address"),
                    "values": [str(v) for v in a.get("values") or []],
                    "ttl": _count(a.get("ttl")),
                    "serial": _count(a.get("serial")),
                    "error": a.get("error"),
                }
            )
    return out


def dns_changes(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        if not e.action.startswith("dns."):
            continue
        ev, undo = _mapping(e.evidence), _mapping(e.undo)
        old = _record(undo.get("old")) or _record(ev.get("old"))
        new = _record(undo.get("new")) or _record(ev.get("new"))
        if new is None and ev.get("ttl") is not None and old is not None:
            new = {"values": old["values"], "ttl": _count(ev.get("ttl"))}  # a TTL-only change
        if new is None and ev.get("address"):
            new = {"values": [str(ev["address"])], "ttl": None}  # what was verified
        out.append(
            {
                "step": e.step_id,
                "seq": e.seq,
                "action": e.action,
                "status": e.status,
                "name": ev.get("name") or undo.get("name") or e.args.get("name"),
                "type": undo.get("type") or e.args.get("type") or "A",
                "old": old,
                "new": new,
                "read_back": _record(ev.get("read_back")),
                "ready_at_utc": ev.get("ready_at_utc"),
                "servers": _servers(ev.get("servers")),
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
