"""The evidence records the report reads, typed: a distribution, a drill's
result, a load report's per-second buckets and tallies, a DNS change, an answer
(a hold's sign-off among them).

Actions write some of them (`to_json`); the report reads every one through
`from_json`. A journal may come from an older or a newer ocsscale, or have been
edited by hand, so reading is strict about the shape (a field that should be a
mapping, a list or a text and is something else refuses the record, with an
EvidenceError naming the field and what it found, never the value) and lenient
about numbers, as the report always was: a number that cannot be read is None,
one written as text is read, and every number is clamped so sums and charts stay
finite.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import OcsscaleError

#: what JSON holds: the parts of a record the report does not read are kept as they are
Json = Any

#: numbers in evidence are clamped to this: no count, duration or moment of a
#: migration comes near it, and charts, sums and formats stay finite below it
MAX_NUMBER = 1e15
#: a moment (seconds since 1970) is read only from 1970 up to the year 3000
MAX_MOMENT = 32_503_680_000.0
#: entries of one list or mapping read, at most: far above a day of per-second
#: buckets under a few labels, far below a hang
MAX_ITEMS = 1_000_000


class EvidenceError(OcsscaleError):
    """A step's evidence is not the record its action writes."""


# -- numbers, read leniently ---------------------------------------------------------
def parse_number(value: object) -> float | None:
    """The number `value` holds (NaN, an infinity or a huge int included), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):  # float() of a huge int overflows
        return float(max(-MAX_NUMBER, min(MAX_NUMBER, value)))
    if isinstance(value, float):
        return value
    if isinstance(value, str) and len(value) <= 40:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def number(value: object) -> float | None:
    """A number, clamped to +-MAX_NUMBER; None for NaN or what is not a number."""
    found = parse_number(value)
    if found is None or math.isnan(found):
        return None
    return max(-MAX_NUMBER, min(MAX_NUMBER, found))


def count(value: object) -> int | None:
    """A count (of requests, connections): a whole number not below 0, or None."""
    found = number(value)
    return None if found is None or found < 0 else int(found)


def nonnegative(value: object) -> float | None:
    """Seconds, an ideal share, a weight: a number not below 0, or None. An int
    stays an int (what an action wrote is written back as it was)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_NUMBER:
        return value
    found = number(value)
    return None if found is None or found < 0 else found


def moment(value: object) -> float | None:
    """Seconds since 1970, or None for a moment no run can have had."""
    found = number(value)
    return None if found is None or not 0 <= found <= MAX_MOMENT else found


# -- shapes, read strictly -------------------------------------------------------------
def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return "a value of another kind"


class _Fields:
    """One record's JSON, its fields read by kind."""

    def __init__(self, what: str, data: object) -> None:
        self.what = what
        if not isinstance(data, Mapping):
            raise EvidenceError(f"{what}: not a mapping but {_kind(data)}")
        if len(data) > MAX_ITEMS:
            raise EvidenceError(f"{what}: more than {MAX_ITEMS} fields")
        self.data = data

    def refuse(self, key: str, wanted: str, found: object) -> EvidenceError:
        return EvidenceError(f"{self.what}: `{key}` is not {wanted} but {_kind(found)}")

    def get(self, key: str) -> object:
        return self.data.get(key)

    def mapping(self, key: str) -> Mapping[str, object]:
        """The mapping under `key` ({} when it is missing or null)."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.refuse(key, "a mapping", value)
        if len(value) > MAX_ITEMS:
            raise EvidenceError(f"{self.what}: `{key}` holds more than {MAX_ITEMS} entries")
        return {str(k): v for k, v in value.items()}

    def items(self, key: str) -> list[object]:
        """The list under `key` ([] when it is missing or null)."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.refuse(key, "a list", value)
        if len(value) > MAX_ITEMS:
            raise EvidenceError(f"{self.what}: `{key}` holds more than {MAX_ITEMS} items")
        return value

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.refuse(key, "a text", value)
        return value

    def texts(self, key: str) -> list[str]:
        """A list of texts; one text alone is a list of one."""
        value = self.data.get(key)
        if isinstance(value, str):
            return [value]
        items = self.items(key)
        if not all(isinstance(v, str | int | float) for v in items):
            raise EvidenceError(f"{self.what}: `{key}` holds something that is not a value")
        return [str(v) for v in items]

    def texts_or_none(self, key: str) -> tuple[str, ...] | None:
        return None if self.data.get(key) is None else tuple(self.texts(key))

    def records(self, key: str) -> list[_Fields]:
        """A list of mappings, each read as a record of its own."""
        return [
            _Fields(f"{self.what}: `{key}` item {i + 1}", v) for i, v in enumerate(self.items(key))
        ]


def _numbers(values: Mapping[str, object], read: Any) -> dict[str, Any]:
    return {k: read(v) for k, v in values.items()}


# -- lb.distribution ---------------------------------------------------------------------
@dataclass(frozen=True)
class NatProof:
    """What one FE's own connection table showed of the held connections."""

    proven: bool | None
    why: str | None = None  # when it could not be read
    # None: not in the record (an FE whose table could not be read)
    peers: tuple[str, ...] | None = None
    from_snat: int | None = None
    from_clients: tuple[str, ...] | None = None
    local_not_own: tuple[str, ...] | None = None

    @classmethod
    def from_json(cls, data: object, what: str = "a NAT proof") -> NatProof:
        f = _Fields(what, data)
        proven = f.get("proven")
        if proven is not None and not isinstance(proven, bool):
            raise f.refuse("proven", "true/false", proven)
        return cls(
            proven=proven,
            why=f.text("why"),
            peers=f.texts_or_none("peers"),
            from_snat=count(f.get("from_snat")),
            from_clients=f.texts_or_none("from_clients"),
            local_not_own=f.texts_or_none("local_not_own"),
        )

    def to_json(self) -> dict[str, Json]:
        if not self.proven:
            return {"proven": self.proven, "why": self.why}
        return {
            "proven": True,
            "peers": list(self.peers or ()),
            "from_snat": self.from_snat,
            "from_clients": list(self.from_clients or ()),
            "local_not_own": list(self.local_not_own or ()),
        }


@dataclass(frozen=True)
class Distribution:
    """lb.distribution: where held connections landed, against the weighted ideal."""

    vip: str | None
    port: int | None
    connections: int | None
    counts: Mapping[str, int | None]
    ideal: Mapping[str, float | None] = field(default_factory=dict)
    weights: Mapping[str, float | None] = field(default_factory=dict)
    #: each connection: the client it was opened from and the FE it landed on
    landed: tuple[Mapping[str, str | None], ...] = ()
    nat: Mapping[str, NatProof] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: object) -> Distribution:
        f = _Fields("lb.distribution evidence", data)
        landed = []
        for item in f.records("landed"):
            landed.append({"from": item.text("from"), "fe": item.text("fe")})
        return cls(
            vip=f.text("vip"),
            port=count(f.get("port")),
            connections=count(f.get("connections")),
            counts=_numbers(f.mapping("counts"), count),
            ideal=_numbers(f.mapping("ideal"), nonnegative),
            weights=_numbers(f.mapping("weights"), nonnegative),
            landed=tuple(landed),
            nat={
                k: NatProof.from_json(v, f"lb.distribution evidence: `nat` entry {i + 1}")
                for i, (k, v) in enumerate(f.mapping("nat").items())
            },
        )

    def to_json(self) -> dict[str, Json]:
        return {
            "vip": self.vip,
            "port": self.port,
            "connections": self.connections,
            "counts": dict(self.counts),
            "ideal": dict(self.ideal),
            "weights": dict(self.weights),
            "landed": [dict(x) for x in self.landed],
            "nat": {k: v.to_json() for k, v in self.nat.items()},
        }


# -- load: per-second buckets and per-label tallies ----------------------------------------
@dataclass(frozen=True)
class LoadBucket:
    """One second of a load, under one label: its requests that answered and failed."""

    t: float | None  # None: a second that cannot be placed (it is still counted)
    label: str
    ok: int
    failed: int

    @staticmethod
    def looks_like(item: object) -> bool:
        """Whether `item` is shaped as a bucket: a second and its counts, even ones
        that cannot be read (they are still counted). What the report looks for."""
        return (
            isinstance(item, Mapping)
            and parse_number(item.get("t")) is not None
            and parse_number(item.get("failed")) is not None
            and ("ok" in item or "label" in item)
        )

    @classmethod
    def from_json(cls, data: object, what: str = "a load bucket") -> LoadBucket:
        f = _Fields(what, data)
        if not cls.looks_like(data):
            raise EvidenceError(f"{what}: not a second of a load (t, failed, ok or label)")
        return cls(
            t=moment(f.get("t")),
            label=str(f.data.get("label", "")),
            ok=count(f.get("ok")) or 0,
            failed=count(f.get("failed")) or 0,
        )


@dataclass(frozen=True)
class LoadTally:
    """One label's requests in a load report."""

    requests: int | None
    ok: int | None
    failed: int | None

    @classmethod
    def from_json(cls, data: object, what: str = "a load tally") -> LoadTally:
        if not isinstance(data, Mapping):
            data = {}  # a label with no tally: counted as unknown, as the report always did
        f = _Fields(what, data)
        return cls(count(f.get("requests")), count(f.get("ok")), count(f.get("failed")))


@dataclass(frozen=True)
class LoadReport:
    """A load's report: per-second buckets (or only the seconds that failed), and
    tallies per label (the drill's moments, a run's phases)."""

    buckets: tuple[LoadBucket, ...]
    only_failed: bool  # the buckets are `failed_seconds`: the seconds that failed
    labels: Mapping[str, LoadTally] = field(default_factory=dict)

    @staticmethod
    def looks_like(data: object) -> bool:
        """Whether `data` holds a load report: a list of buckets under `buckets` or
        `failed_seconds`. What the report looks for in any evidence."""
        return isinstance(data, Mapping) and any(
            _bucket_list(data.get(k)) for k in ("buckets", "failed_seconds")
        )

    @classmethod
    def from_json(cls, data: object, what: str = "a load report") -> LoadReport:
        f = _Fields(what, data)
        # the full buckets when there are some, else only the seconds that failed
        key = "buckets" if _bucket_list(f.get("buckets")) else "failed_seconds"
        return cls(
            buckets=load_buckets(f.items(key), f"{what}: `{key}`"),
            only_failed=key == "failed_seconds",
            labels={k: LoadTally.from_json(v) for k, v in f.mapping("labels").items()},
        )


def is_bucket_list(value: object) -> bool:
    """A non-empty list of load buckets."""
    return _bucket_list(value)


def _bucket_list(value: object) -> bool:
    return (
        isinstance(value, list)
        and 0 < len(value) <= MAX_ITEMS
        and all(LoadBucket.looks_like(b) for b in value)
    )


def load_buckets(items: list[object], what: str = "a load") -> tuple[LoadBucket, ...]:
    return tuple(LoadBucket.from_json(b, f"{what} item {i + 1}") for i, b in enumerate(items))


# -- lb.failover_drill -----------------------------------------------------------------
_DETECTED_BY = {"lb-view", "outside", "operator"}


@dataclass(frozen=True)
class Detection:
    """How a drill's moment was measured: the LB's view, from outside (so many
    answers in a row), or the operator."""

    by: str | None
    run: int | None = None

    @classmethod
    def from_json(cls, data: object, what: str = "a detection") -> Detection | None:
        if data is None:
            return None
        f = _Fields(what, data)
        return cls(f.text("by"), count(f.get("run")))

    def words(self) -> str:
        """In fixed words: the journal's value only picks one, never reaches the report."""
        if self.by == "lb-view":
            return "LB's view"
        if self.by == "outside":
            return "from outside" + (f" ({self.run} in a row)" if self.run is not None else "")
        if self.by == "operator":
            return "operator"
        return "-"


@dataclass(frozen=True)
class DrillResult:
    """lb.failover_drill: one FE taken down and brought back under a load."""

    fe: str | None
    mode: str | None  # link, or service:PORT
    detect_s: float | None
    back_s: float | None
    requests: int | None
    failed_until_detection: int | None
    failed_after_detection: int | None
    held_survived: Mapping[str, Json]
    detected_by: Detection | None
    back_detected_by: Detection | None

    @classmethod
    def from_json(cls, data: object) -> DrillResult:
        f = _Fields("lb.failover_drill evidence", data)
        return cls(
            fe=f.text("fe"),
            mode=f.text("mode"),
            detect_s=nonnegative(f.get("detect_s")),
            back_s=nonnegative(f.get("back_s")),
            requests=count(f.get("requests")),
            failed_until_detection=count(f.get("failed_until_detection")),
            failed_after_detection=count(f.get("failed_after_detection")),
            held_survived=f.mapping("held_survived"),
            detected_by=Detection.from_json(f.get("detected_by"), f"{f.what}: `detected_by`"),
            back_detected_by=Detection.from_json(
                f.get("back_detected_by"), f"{f.what}: `back_detected_by`"
            ),
        )


# -- lb.pair_drill, lb.pair_holder -----------------------------------------------------
def _holders(f: _Fields, key: str) -> dict[str, bool | None]:
    """Which host held the VIP, per host: true, false, or null (not read)."""
    found = f.mapping(key)
    out: dict[str, bool | None] = {}
    for name, held in list(found.items())[:8]:
        if held is not None and not isinstance(held, bool):
            raise f.refuse(key, "true, false or null per host", held)
        out[str(name)] = held
    return out


@dataclass(frozen=True)
class LbDrillResult:
    """lb.pair_drill: the active LB of a pair failed (its process, or its link) and
    brought back under a load; which host held the VIP before, during and after."""

    mode: str | None  # service or link
    host: str | None  # the failed (active) host
    standby: str | None
    takeover_s: float | None
    takeover_target_s: float | None
    takeover_target_met: bool | None
    failback_s: float | None
    failback: str | None
    preempt: bool | None
    requests: int | None
    failed_until_takeover: int | None
    failed_after_takeover: int | None
    failed_around_failback: int | None
    failed_after_failback: int | None
    held: int | None
    held_lost: int | None
    holders_before: Mapping[str, bool | None]
    holders_during: Mapping[str, bool | None]
    holders_after: Mapping[str, bool | None]
    fault_at: float | None
    takeover_at: float | None
    restored_at: float | None
    failback_at: float | None

    @classmethod
    def from_json(cls, data: object) -> LbDrillResult:
        f = _Fields("lb.pair_drill evidence", data)
        met, preempt = f.get("takeover_target_met"), f.get("preempt")
        return cls(
            mode=f.text("mode"),
            host=f.text("host"),
            standby=f.text("standby"),
            takeover_s=nonnegative(f.get("takeover_s")),
            takeover_target_s=nonnegative(f.get("takeover_target_s")),
            takeover_target_met=met if isinstance(met, bool) else None,
            failback_s=nonnegative(f.get("failback_s")),
            failback=f.text("failback"),
            preempt=preempt if isinstance(preempt, bool) else None,
            requests=count(f.get("requests")),
            failed_until_takeover=count(f.get("failed_until_takeover")),
            failed_after_takeover=count(f.get("failed_after_takeover")),
            failed_around_failback=count(f.get("failed_around_failback")),
            failed_after_failback=count(f.get("failed_after_failback")),
            held=count(f.get("held")),
            held_lost=count(f.get("held_lost")),
            holders_before=_holders(f, "holders_before"),
            holders_during=_holders(f, "holders_during"),
            holders_after=_holders(f, "holders_after"),
            fault_at=moment(f.get("fault_at")),
            takeover_at=moment(f.get("takeover_at")),
            restored_at=moment(f.get("restored_at")),
            failback_at=moment(f.get("failback_at")),
        )

    def to_json(self) -> dict[str, Json]:
        return {
            "mode": self.mode,
            "host": self.host,
            "standby": self.standby,
            "takeover_s": self.takeover_s,
            "takeover_target_s": self.takeover_target_s,
            "takeover_target_met": self.takeover_target_met,
            "failback_s": self.failback_s,
            "failback": self.failback,
            "preempt": self.preempt,
            "requests": self.requests,
            "failed_until_takeover": self.failed_until_takeover,
            "failed_after_takeover": self.failed_after_takeover,
            "failed_around_failback": self.failed_around_failback,
            "failed_after_failback": self.failed_after_failback,
            "held": self.held,
            "held_lost": self.held_lost,
            "holders_before": dict(self.holders_before),
            "holders_during": dict(self.holders_during),
            "holders_after": dict(self.holders_after),
            "fault_at": self.fault_at,
            "takeover_at": self.takeover_at,
            "restored_at": self.restored_at,
            "failback_at": self.failback_at,
        }


# -- DNS -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordValues:
    """A record's values and TTL, as a DNS step read or wrote them."""

    values: tuple[str, ...]
    ttl: int | None

    @classmethod
    def from_json(cls, data: object, what: str) -> RecordValues | None:
        if data is None or (isinstance(data, Mapping) and not data):
            return None
        f = _Fields(what, data)
        return cls(tuple(f.texts("values")), count(f.get("ttl")))

    def to_json(self) -> dict[str, Json]:
        return {"values": list(self.values), "ttl": self.ttl}


@dataclass(frozen=True)
class ServerAnswer:
    """What one name server answered for the record."""

    ns: str | None
    address: str | None
    values: tuple[str, ...]
    ttl: int | None
    serial: int | None
    error: str | None

    @classmethod
    def from_json(cls, f: _Fields) -> ServerAnswer:
        return cls(
            ns=f.text("ns"),
            address=f.text("address"),
            values=tuple(f.texts("values")),
            ttl=count(f.get("ttl")),
            serial=count(f.get("serial")),
            error=f.text("error"),
        )


@dataclass(frozen=True)
class DnsChange:
    """A `dns.*` step's change: the record's name and type, its value before and
    after (from its undo record, else its evidence), what was read back and what
    each name server answered."""

    name: str | None
    type: str | None
    old: RecordValues | None
    new: RecordValues | None
    ttl: int | None  # the TTL of a TTL-only change (dns.lower_ttl), when readable
    ttl_changed: bool  # the evidence names a TTL of its own (a TTL-only change)
    address: str | None  # what dns.verify proved
    read_back: RecordValues | None
    ready_at_utc: str | None
    servers: tuple[ServerAnswer, ...]

    @classmethod
    def from_json(cls, evidence: object, undo: object = None) -> DnsChange:
        """From a DNS step's evidence and undo record, either of them null (a
        step that failed, or one that changes nothing)."""
        ev = _Fields("DNS evidence", {} if evidence is None else evidence)
        un = _Fields("DNS undo record", {} if undo is None else undo)
        old = RecordValues.from_json(un.get("old"), "DNS undo record: `old`")
        new = RecordValues.from_json(un.get("new"), "DNS undo record: `new`")
        return cls(
            name=ev.text("name") or un.text("name"),
            type=un.text("type"),
            old=old or RecordValues.from_json(ev.get("old"), "DNS evidence: `old`"),
            new=new or RecordValues.from_json(ev.get("new"), "DNS evidence: `new`"),
            ttl=count(ev.get("ttl")),
            ttl_changed=ev.get("ttl") is not None,
            address=_value_text(ev, "address"),
            read_back=RecordValues.from_json(ev.get("read_back"), "DNS evidence: `read_back`"),
            ready_at_utc=ev.text("ready_at_utc"),
            # an empty answer says nothing: left out, as the report always did
            servers=tuple(ServerAnswer.from_json(s) for s in ev.records("servers") if s.data),
        )


def _value_text(f: _Fields, key: str) -> str | None:
    value = f.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise f.refuse(key, "a value", value)
    return str(value)


# -- answers ---------------------------------------------------------------------------
#: names, questions and notes shown from the journal are cut to these (the answer
#: channel refuses longer ones; a journal edited by hand may hold anything)
MAX_BY = 100
MAX_QUESTION = 2000
MAX_NOTES = 2000
#: how an answer was given, in words (the journal's value only picks one)
_HOW = {
    "terminal": "at the run's terminal",
    "answer": "ocsscale answer",
    "flag": "--yes on the command line",
}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _iso_moment(text: str | None) -> float | None:
    """Seconds since 1970 of an ISO UTC time the answer channel wrote, or None."""
    if not text or len(text) > 40:
        return None
    try:
        found = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if found.tzinfo is None:
        found = found.replace(tzinfo=dt.UTC)
    return moment(found.timestamp())


@dataclass(frozen=True)
class SignOff:
    """An answer the operator gave, as the journal keeps it: a hold's sign-off
    (passed or failed, by whom, with notes), a run's go-ahead and every other
    question's answer. Who gave it (`--by`, `run --operator`, else the OS user),
    how (`via`) and when (`at`; `asked_at` when the question came)."""

    run_id: str
    step: str | None
    question: str
    answer: str
    by: str
    via: str  # terminal, answer (`ocsscale answer`) or flag (--yes)
    notes: str
    at: str
    asked_at: str | None = None

    @classmethod
    def from_json(cls, data: object) -> SignOff:
        f = _Fields("an answer", data)
        needed = {k: f.text(k) for k in ("run_id", "question", "answer", "by", "via", "at")}
        for key, value in needed.items():
            if value is None:
                raise EvidenceError(f"an answer: `{key}` is missing")
        return cls(
            run_id=str(needed["run_id"]),
            step=f.text("step"),
            question=_cut(str(needed["question"]), MAX_QUESTION),
            answer=_cut(str(needed["answer"]), 40),
            by=_cut(str(needed["by"]), MAX_BY),
            via=str(needed["via"]),
            notes=_cut(f.text("notes") or "", MAX_NOTES),
            at=str(needed["at"]),
            asked_at=f.text("asked_at"),
        )

    def how(self) -> str:
        return _HOW.get(self.via, "-")

    def waited_s(self) -> float | None:
        """How long the run waited for this answer (None: not known)."""
        asked, given = _iso_moment(self.asked_at), _iso_moment(self.at)
        if asked is None or given is None:
            return None
        return max(0.0, given - asked)

    def to_json(self) -> dict[str, Json]:
        return {
            "run_id": self.run_id,
            "step": self.step,
            "question": self.question,
            "answer": self.answer,
            "by": self.by,
            "via": self.via,
            "notes": self.notes,
            "at": self.at,
            "asked_at": self.asked_at,
        }
