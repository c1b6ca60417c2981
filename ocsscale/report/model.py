"""The report as plain data: the pool, the phases, every step with its evidence,
the findings (findings.py) and what rollback would undo. The JSON format is
this model as it is; the HTML and Markdown pages are rendered from it.

Only what the journal and the validated pool file hold goes in, through named
fields (never the pool file's credentials section): the journal refuses
secrets by type, so nothing secret can reach a report.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from ..config.dnsnames import cutover_names
from ..config.loader import LoadedPool
from ..evidence import EvidenceError, SignOff
from ..plan.playbook import PHASE_IDS
from ..runner.records import KILLED, Entry
from . import findings
from .source import Sources

#: the pretty JSON of one evidence block is cut at this many characters
EVIDENCE_LIMIT = 20_000
MODEL_VERSION = 1


def utc(moment: float | None) -> str | None:
    if moment is None:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))


def _host(spec: Any) -> dict[str, Any]:
    return {
        "name": spec.name,
        "fqdn": getattr(spec, "fqdn", None),
        "address": str(spec.address),
        "os": getattr(spec, "os", None),
        "transport": spec.transport.kind if hasattr(spec, "transport") else None,
    }


def _dns(dns: Any) -> dict[str, Any]:
    # named fields only: the TSIG key (and any credential) stays out
    host = getattr(dns, "host", None)
    return {
        "provider": dns.provider,
        "zone": dns.zone,
        "servers": [str(s) for s in getattr(dns, "servers", [])],
        "port": getattr(dns, "port", 53),
        "ttl": getattr(dns, "ttl", None),
        "cutover_ttl": getattr(dns, "cutover_ttl", None),
        "host": None if host is None else _host(host),
    }


def pool_section(sources: Sources) -> dict[str, Any] | None:
    return None if sources.loaded is None else pool_data(sources.loaded)


def pool_data(loaded: LoadedPool) -> dict[str, Any]:
    """The pool as the report and the change pack show it (and topology.py draws it)."""
    pool, profile = loaded.pool, loaded.profile
    lb = pool.load_balancer
    return {
        "fqdn": pool.pool.fqdn,
        "sip_domain": pool.pool.sip_domain,
        "profile": profile.name,
        "ports": list(getattr(profile, "ports", None) or []),
        "check_ports": list(getattr(profile, "check_ports", None) or []),
        "load_balancer": {
            "driver": lb.driver.kind,
            "topology": lb.topology,
            "mode": lb.mode,
            "vip": str(lb.vip),
            "backend_address": None if lb.backend_address is None else str(lb.backend_address),
            "snat_addresses": [str(a) for a in lb.snat_addresses],
            "expected_peak_connections": lb.expected_peak_connections,
            "host": None if lb.host is None else _host(lb.host),
            "pair": None
            if lb.pair is None
            else {
                "hosts": [_host(h) for h in lb.pair.hosts],
                "preferred": lb.pair.preferred,
                "preempt": lb.pair.preempt,
                "router_id": lb.pair.router_id,
            },
        },
        "front_ends": [{**_host(fe), "weight": fe.weight} for fe in pool.front_ends],
        "legacy_fe": _host(pool.legacy_fe),
        "test_clients": [_host(c) for c in pool.test_clients],
        "directory": {
            "name": pool.directory.name,
            "fqdn": pool.directory.fqdn,
            "address": str(pool.directory.address),
            "port": pool.directory.port,
        },
        "dns": {**_dns(pool.dns), **_moving(pool, profile)},
    }


def _moving(pool: Any, profile: Any) -> dict[str, Any]:
    """Which names move with the pool name at the cutover, and which stay (dns.keep)."""
    names = cutover_names(pool, profile)
    return {
        "moves": [pool.pool.fqdn, *(n["name"] for n in names["a"])],
        "srv_moves": [n["name"] for n in names["srv"]],
        "srv_to": names["srv_to"],
        "keep": list(names["kept"]),
    }


def _evidence(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    size = len(text)
    cut = size > EVIDENCE_LIMIT
    if cut:
        text = text[:EVIDENCE_LIMIT]
    return {"text": text, "chars": size, "cut": cut}


def _target(entry: Entry) -> str:
    seen: list[str] = []
    for change in entry.changes or []:
        target = str(change.get("target", ""))
        if target and target not in seen:
            seen.append(target)
    if not seen:
        for key in ("host", "fe", "name"):
            if isinstance(entry.args.get(key), str):
                return entry.args[key]
    return ", ".join(seen)


def step_row(entry: Entry) -> dict[str, Any]:
    duration = None if entry.finished is None else round(entry.finished - entry.started, 3)
    return {
        "seq": entry.seq,
        "run_id": entry.run_id,
        "phase": entry.phase,
        "step": entry.step_id,
        "action": entry.action,
        "target": _target(entry),
        "cleanup": entry.cleanup,
        "status": entry.status,
        "attempts": entry.attempts,
        "started": entry.started,
        "started_utc": utc(entry.started),
        "finished": entry.finished,
        "finished_utc": utc(entry.finished),
        "duration_s": duration,
        "changes": [str(c.get("summary", "")) for c in entry.changes or []],
        "undo_recorded": entry.undo is not None,
        "error": entry.error,
        "evidence": _evidence(entry.evidence),
    }


def phases_section(sources: Sources) -> list[dict[str, Any]]:
    """The phases of the latest plan run, each with its latest cycle's status
    (as `ocsscale status` shows them), its time span and its step counts."""
    latest: dict[str, Any] = {}
    for cycle in sources.cycles:
        latest[cycle.phase] = cycle
    # the phases of the latest plan that listed any, then those only cycles name
    listed: list[dict[str, Any]] = []
    for run in reversed(sources.runs):
        phases = (run.get("detail") or {}).get("phases") if run["kind"] == "run" else None
        if phases:
            listed = [p for p in phases if isinstance(p, dict) and p.get("id")]
            break
    known = {p["id"] for p in listed}
    extra = sorted(
        (c for c in latest.values() if c.phase not in known), key=lambda c: c.phase_index
    )
    listed += [{"id": c.phase, "title": c.phase} for c in extra]
    listed.sort(key=lambda p: _phase_order(p["id"], latest))
    rows = []
    for phase in listed:
        cycle = latest.get(phase.get("id"))
        steps = [e for e in sources.entries if cycle is not None and e.cycle_id == cycle.cycle_id]
        status = "not started" if cycle is None else cycle.status
        if phase.get("skipped"):
            status = f"skipped: {phase['skipped']}"
        rows.append(
            {
                "id": phase.get("id"),
                "title": phase.get("title"),
                "status": status,
                "started_utc": None if cycle is None else utc(cycle.started),
                "finished_utc": None if cycle is None else utc(cycle.finished),
                "duration_s": None
                if cycle is None or cycle.finished is None
                else round(cycle.finished - cycle.started, 3),
                "steps": len(steps),
                "failed": sum(1 for e in steps if e.status == "failed"),
                "error": None if cycle is None else cycle.error,
            }
        )
    return rows


def _phase_order(phase: str, latest: dict[str, Any]) -> tuple[int, int]:
    if phase in PHASE_IDS:
        return (PHASE_IDS.index(phase), 0)
    cycle = latest.get(phase)
    return (cycle.phase_index if cycle is not None else len(PHASE_IDS), 1)


def runs_section(sources: Sources) -> list[dict[str, Any]]:
    rows = []
    for i, run in enumerate(sources.runs):
        status, error = run["status"], run["error"]
        last = i == len(sources.runs) - 1
        holder_gone = sources.lock is None or sources.lock.stale
        if status == "running" and (not last or holder_gone):
            status, error = "interrupted", KILLED
        rows.append(
            {
                "run_id": run["run_id"],
                "kind": run["kind"],
                "status": status,
                "user": run["user"],
                "host": run["host"],
                "started_utc": utc(run["started"]),
                "finished_utc": utc(run["finished"]),
                "selected": (run.get("detail") or {}).get("selected"),
                "error": error,
            }
        )
    return rows


def answers_section(sources: Sources, problems: list[str] | None = None) -> list[dict[str, Any]]:
    """Who answered what, how (at the run's terminal or with `ocsscale answer`) and when."""
    rows = []
    for n, row in enumerate(sources.answers, 1):
        try:
            answer = SignOff.from_json(row)
        except EvidenceError as exc:
            if problems is not None:
                problems.append(f"answer {n}: {exc.message}; not shown")
            continue
        rows.append(
            {
                **answer.to_json(),
                "n": len(rows) + 1,
                "step": answer.step or "-",
                "how": answer.how(),
                "waited_s": answer.waited_s(),
            }
        )
    return rows


#: the action that holds for the client tests' sign-off (actions/operator_hold.py)
HOLD_ACTION = "operator.hold"


def sign_offs_section(sources: Sources, answers: list[dict[str, Any]]) -> dict[str, Any]:
    """The key numbers of the people's part: the holds (asked, or skipped by
    --no-hold), the answers given and how long the runs waited for them."""
    holds = [e for e in sources.entries if e.action == HOLD_ACTION and e.status != "pending"]
    skipped = [e for e in holds if isinstance(e.evidence, dict) and e.evidence.get("skipped")]
    waited = [a["waited_s"] for a in answers if a["waited_s"] is not None]
    return {
        "holds": len(holds) - len(skipped),
        "holds_skipped": len(skipped),
        "answers": len(answers),
        "waited_s": sum(waited) if waited else None,
    }


def rollback_section(sources: Sources) -> list[dict[str, Any]]:
    return [
        {
            "seq": e.seq,
            "phase": e.phase,
            "step": e.step_id,
            "action": e.action,
            "status": e.status,
            "undoes": "; ".join(str(c.get("summary", "")) for c in e.changes or []) or e.action,
        }
        for e in sources.undoable
    ]


def _pool_name(sources: Sources, pool: dict[str, Any] | None) -> str:
    if pool is not None:
        return str(pool["fqdn"])
    for run in reversed(sources.runs):
        name = (run.get("detail") or {}).get("pool")
        if name:
            return str(name)
    return "(unknown pool)"


def summary(model: dict[str, Any]) -> list[dict[str, str]]:
    """The numbers a reader wants first, each as a label, a value and a tone
    (ok, bad or neutral), from the sections already built."""
    tiles: list[dict[str, str]] = []
    phases = [p for p in model["phases"] if not str(p["status"]).startswith("skipped")]
    done = sum(1 for p in phases if p["status"] == "done")
    failed = [p["id"] for p in phases if p["status"] == "failed"]
    tone = "bad" if failed else "ok" if phases and done == len(phases) else "neutral"
    shown = f"{done} of {len(phases)} done" + (f"; failed: {', '.join(failed)}" if failed else "")
    tiles.append({"label": "phases", "value": shown, "tone": tone})
    steps = model["steps"]
    bad = sum(1 for s in steps if s["status"] == "failed")
    tiles.append(
        {
            "label": "steps",
            "value": f"{len(steps)} journaled, {bad} failed",
            "tone": "bad" if bad else "neutral",
        }
    )
    if model["distribution"]:
        rows = model["distribution"][-1]["rows"]
        ok = all(r["within_one"] is not False for r in rows)
        value = ", ".join(f"{r['fe']} {r['count']}" for r in rows)
        tiles.append({"label": "distribution", "value": value, "tone": "ok" if ok else "bad"})
    drills = [d for d in model["failover"] if d["detect_s"] is not None]
    if drills:
        slowest = max(drills, key=lambda d: d["detect_s"])
        after = sum(int(d["failed_after_detection"] or 0) for d in drills)
        tiles.append(
            {
                "label": "slowest failover detection",
                "value": f"{slowest['detect_s']:.2f} s ({slowest['fe']}, {slowest['mode']}); "
                f"{after} failed after detection",
                "tone": "bad" if after else "ok",
            }
        )
    per_phase = model["load"]["per_phase"]
    if per_phase:
        total = sum(int(r["failed"]) for r in per_phase)
        outside = sum(int(r["failed"]) for r in per_phase if r["phase"] != "failover-test")
        tiles.append(
            {
                "label": "client load",
                "value": f"{total} failed request(s), {outside} outside the failover drill",
                "tone": "bad" if outside else "ok",
            }
        )
    moved = [d for d in model["dns"] if d["action"] == "dns.replace" and d["status"] == "done"]
    if moved:
        # the pool name's move (the other names move with it, shown in the DNS section)
        pool_name = str((model.get("pool") or {}).get("fqdn") or "").lower()
        d = next((m for m in reversed(moved) if str(m["name"]).lower() == pool_name), moved[-1])
        tiles.append(
            {
                "label": "DNS",
                "value": f"{d['name']}: {_values(d['old'])} → {_values(d['new'])}",
                "tone": "neutral",
            }
        )
    cut = model.get("cut") or []
    if cut:
        tiles.append(
            {
                "label": "sessions cut",
                "value": f"{sum(int(c['sessions']) for c in cut)} at the end of a drain "
                f"({', '.join(sorted({str(c['host']) for c in cut}))})",
                "tone": "neutral",
            }
        )
    people = model.get("sign_offs")
    if people and (people["holds"] or people["holds_skipped"] or people["answers"]):
        tiles.append(_people_tile(people))
    tiles.append(
        {
            "label": "rollback would undo",
            "value": f"{len(model['rollback'])} change(s)",
            "tone": "neutral",
        }
    )
    return tiles


def _people_tile(people: dict[str, Any]) -> dict[str, str]:
    holds, skipped = people["holds"], people["holds_skipped"]
    said = [f"{holds} hold(s) for a sign-off"]
    if skipped:
        said.append(f"{skipped} skipped (--no-hold: nobody signed off)")
    said.append(f"{people['answers']} answer(s)")
    waited = people["waited_s"]
    value = "; ".join(said) + (
        f"; waited {_minutes(waited)} for people" if waited is not None else ""
    )
    return {"label": "sign-offs", "value": value, "tone": "neutral"}


def _minutes(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, s = divmod(round(seconds), 60)
    return (
        f"{minutes} min {s:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
    )


def _values(record: dict[str, Any] | None) -> str:
    return ", ".join(record["values"]) if record and record.get("values") else "-"


def run_loads(sources: Sources) -> list[Any]:
    """The client loads of runs (`run --client-load`), shaped like journal entries so
    the load timeline places their per-second buckets by time, phase by phase."""
    from types import SimpleNamespace

    loads = []
    for run in sources.runs:
        load = run.get("load")
        if isinstance(load, dict):
            loads.append(
                SimpleNamespace(
                    evidence={"client_load": {"buckets": load.get("buckets", [])}},
                    cycle_id=None,
                    step_id=f"run {run.get('run_id')}: client load",
                    seq=0,
                    started=run.get("started"),
                    finished=run.get("finished"),
                )
            )
    return loads


def build(sources: Sources, now: float | None = None) -> dict[str, Any]:
    """The whole report as plain JSON-ready data."""
    pool = pool_section(sources)
    notes = []
    if sources.pool_problem:
        notes.append(
            f"{sources.pool_problem}: the pool and topology shown are what the journal holds."
        )
    if not sources.has_journal:
        notes.append("Nothing has run yet for this pool file: the journal is empty.")
    lock = sources.lock
    if lock is not None and not lock.stale:
        notes.append(
            f"A run is in progress ({lock.command}, {lock.user}@{lock.host}, pid {lock.pid}): "
            "this report shows the journal as it stood when it was made."
        )
    # what the tool itself left broken comes first, as in `ocsscale status`
    notes[:0] = [
        f"Left broken by the tool when a run was cut short: {fault.describe()}. "
        "`ocsscale run` or `ocsscale rollback` puts it right first."
        for fault in sources.faults
    ]
    steps = [step_row(e) for e in sources.entries]
    #: evidence records of the wrong shape, left out of the findings: said in the notes
    unread: list[str] = []
    model = {
        "report_version": MODEL_VERSION,
        "generated_utc": utc(time.time() if now is None else now),
        "pool_name": _pool_name(sources, pool),
        "pool_file": str(sources.config),
        "journal": str(sources.state_dir / "journal.sqlite") if sources.has_journal else None,
        "notes": notes,
        "pool": pool,
        "runs": runs_section(sources),
        "phases": phases_section(sources),
        "steps": steps,
        "distribution": findings.distributions(sources.entries, unread),
        "failover": findings.drills(sources.entries, unread),
        "lb_pair": findings.lb_pair(sources.entries, unread),
        "reach": findings.reaches(sources.entries),
        "load": findings.load_timeline(
            [*sources.entries, *run_loads(sources)], sources.cycles, unread
        ),
        "dns": findings.dns_changes(sources.entries, unread),
        "cut": findings.sessions_cut(sources.entries),
        "answers": answers_section(sources, unread),
        "rollback": rollback_section(sources),
    }
    model["sign_offs"] = sign_offs_section(sources, model["answers"])
    notes += [f"Evidence not read: {problem}." for problem in unread]
    model = _finite(model)
    model["summary"] = summary(model)
    return model


def _finite(value: Any) -> Any:
    """`value` with NaN and infinities (a journal edited by hand may hold them)
    as None: the JSON report stays JSON, and nothing downstream computes with them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
