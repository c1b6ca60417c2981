"""What a client load saw: per-second buckets, per-label and per-target totals, failures.

A :class:`LoadRecorder` collects outcomes from the load's worker threads under
one lock; :meth:`LoadRecorder.report` freezes them into a :class:`LoadReport`,
which is plain JSON (``to_dict``/``from_dict``) so a load run in another
process (a lab client's namespace) can hand it back through a file, and
:func:`merge_reports` adds several such reports up.

Buckets are keyed by the wall-clock second (epoch seconds) in which a request
*finished* and by the label current at that moment: a failure is counted when
it is seen, so a member stopped at time T shows failures from T on, and
reports from several clients line up second by second. A caller may instead
label a request with the label current when it *started* (the failover drill:
a request sent before the LB took a member out belongs to the fault, however
late its timeout ends it). Nothing secret is ever
recorded: targets, addresses, error classes and the probes' one-line details.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_FAILURES_KEPT = 200
UNIDENTIFIED = "unidentified"  # an answer that named no known server
_DETAIL_LIMIT = 200


@dataclass(frozen=True)
class Outcome:
    """One request of the load, as the recorder takes it."""

    finished: float  # epoch seconds
    target: str
    ok: bool
    error: str | None  # the failure class (refused, timeout, resolve, ...)
    detail: str
    latency_ms: float
    server: str | None  # who answered (ok requests), per the caller's identify()
    address: str  # the address actually connected to (after resolving, if any)


@dataclass(frozen=True)
class LoadReport:
    """A load run, frozen and JSON-ready. Counts of ok requests by server are
    under ``by_server``; failures are counted, and the first 200 kept."""

    started: float
    ended: float
    rate: float
    targets: list[dict[str, Any]]
    stopped_by: str  # duration, max_requests, caller, or running (a snapshot)
    totals: dict[str, Any]
    labels: dict[str, dict[str, Any]]
    by_target: dict[str, dict[str, Any]]
    buckets: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    failures_dropped: int = 0
    marks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadReport:
        names = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in names})

    @property
    def requests(self) -> int:
        return int(self.totals.get("requests", 0))

    @property
    def failed(self) -> int:
        return int(self.totals.get("failed", 0))

    def failed_seconds(self) -> list[dict[str, Any]]:
        """The buckets in which at least one request failed."""
        return [b for b in self.buckets if b["failed"]]


def _tally() -> dict[str, Any]:
    return {"requests": 0, "ok": 0, "failed": 0, "by_server": {}, "errors": {}}


def _add(tally: dict[str, Any], outcome: Outcome) -> None:
    tally["requests"] += 1
    if outcome.ok:
        tally["ok"] += 1
        server = outcome.server or UNIDENTIFIED
        tally["by_server"][server] = tally["by_server"].get(server, 0) + 1
    else:
        tally["failed"] += 1
        error = outcome.error or "error"
        tally["errors"][error] = tally["errors"].get(error, 0) + 1


class LoadRecorder:
    """Thread-safe accumulation of outcomes, bounded in memory: one bucket per
    second and label, one tally per label and per target, 200 failures kept."""

    def __init__(self, started: float, rate: float, targets: list[dict[str, Any]]) -> None:
        self._lock = threading.Lock()
        self._started = started
        self._rate = rate
        self._targets = targets
        self._label = ""
        self._marks: list[dict[str, Any]] = []
        self._totals = _tally()
        self._latency_sum = 0.0
        self._latency_max = 0.0
        self._labels: dict[str, dict[str, Any]] = {}
        self._by_target: dict[str, dict[str, Any]] = {}
        self._by_address: Counter[str] = Counter()
        self._buckets: dict[tuple[int, str], dict[str, Any]] = {}
        self._failures: list[dict[str, Any]] = []
        self._dropped = 0

    def begin(self, at: float) -> None:
        with self._lock:
            self._started = at

    def mark(self, label: str, at: float) -> None:
        with self._lock:
            self._label = label
            self._marks.append({"t": round(at, 3), "label": label})

    @property
    def label(self) -> str:
        """The label a request starting now is given (see ``add``)."""
        with self._lock:
            return self._label

    def label_at(self, at: float) -> str:
        """The label that was current at `at`: for outcomes learnt after the fact (a
        Windows client's burst reports its requests when it ends)."""
        with self._lock:
            label = ""
            for mark in self._marks:
                if mark["t"] > at:
                    break
                label = mark["label"]
            return label

    def add(self, outcome: Outcome, label: str | None = None) -> None:
        """Count `outcome` under `label`, by default the label current now."""
        with self._lock:
            label = self._label if label is None else label
            _add(self._totals, outcome)
            _add(self._labels.setdefault(label, _tally()), outcome)
            _add(self._by_target.setdefault(outcome.target, _tally()), outcome)
            self._by_address[outcome.address] += 1
            self._latency_sum += outcome.latency_ms
            self._latency_max = max(self._latency_max, outcome.latency_ms)
            second = int(outcome.finished)
            bucket = self._buckets.get((second, label))
            if bucket is None:
                bucket = {"t": second, "label": label, "ok": 0, "failed": 0, "by_server": {}}
                self._buckets[(second, label)] = bucket
            if outcome.ok:
                bucket["ok"] += 1
                server = outcome.server or UNIDENTIFIED
                bucket["by_server"][server] = bucket["by_server"].get(server, 0) + 1
            else:
                bucket["failed"] += 1
                if len(self._failures) < MAX_FAILURES_KEPT:
                    self._failures.append(
                        {
                            "t": round(outcome.finished, 3),
                            "label": label,
                            "target": outcome.target,
                            "address": outcome.address,
                            "error": outcome.error or "error",
                            "detail": outcome.detail[:_DETAIL_LIMIT],
                        }
                    )
                else:
                    self._dropped += 1

    def report(self, ended: float, stopped_by: str) -> LoadReport:
        with self._lock:
            totals = {
                **_copy(self._totals),
                "by_address": dict(self._by_address),
                "latency_ms_avg": round(self._latency_sum / self._totals["requests"], 2)
                if self._totals["requests"]
                else None,
                "latency_ms_max": round(self._latency_max, 2),
            }
            return LoadReport(
                started=round(self._started, 3),
                ended=round(ended, 3),
                rate=self._rate,
                targets=[dict(t) for t in self._targets],
                stopped_by=stopped_by,
                totals=totals,
                labels={k: _copy(v) for k, v in self._labels.items()},
                by_target={k: _copy(v) for k, v in self._by_target.items()},
                buckets=[_copy(b) for _, b in sorted(self._buckets.items(), key=_bucket_order)],
                failures=[dict(f) for f in self._failures],
                failures_dropped=self._dropped,
                marks=[dict(m) for m in self._marks],
            )


def _bucket_order(item: tuple[tuple[int, str], dict[str, Any]]) -> int:
    # by second; sorted() is stable, so within a second labels keep the order
    # in which they were first seen
    return item[0][0]


def _copy(tally: dict[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in tally.items()}


def merge_reports(reports: dict[str, LoadReport]) -> dict[str, Any]:
    """Several clients' reports as one JSON document: each client's own report,
    and totals, per-label and per-second sums over all of them."""
    totals = _tally()
    labels: dict[str, dict[str, Any]] = {}
    buckets: dict[tuple[int, str], dict[str, Any]] = {}
    for report in reports.values():
        _merge_tally(totals, report.totals)
        for label, tally in report.labels.items():
            _merge_tally(labels.setdefault(label, _tally()), tally)
        for b in report.buckets:
            into = buckets.setdefault(
                (b["t"], b["label"]),
                {"t": b["t"], "label": b["label"], "ok": 0, "failed": 0, "by_server": {}},
            )
            into["ok"] += b["ok"]
            into["failed"] += b["failed"]
            for server, n in b["by_server"].items():
                into["by_server"][server] = into["by_server"].get(server, 0) + n
    return {
        "totals": totals,
        "labels": labels,
        "buckets": [buckets[k] for k in sorted(buckets)],
        "clients": {name: report.to_dict() for name, report in reports.items()},
    }


def _merge_tally(into: dict[str, Any], tally: dict[str, Any]) -> None:
    for key in ("requests", "ok", "failed"):
        into[key] += int(tally.get(key, 0))
    for key in ("by_server", "errors"):
        for name, n in tally.get(key, {}).items():
            into[key][name] = into[key].get(name, 0) + int(n)
