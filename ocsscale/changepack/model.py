"""The change pack as plain data: what a change-advisory board reads before the
window. Built once from the plan (plan/) and the validated pool file, and an
optional rehearsal's timings (runner/rehearsal.py); rendered as HTML, Markdown
or JSON (render.py) from this one model, so the three say the same.

Only named fields of the pool file go in (never its credentials). Durations are
estimates: the waits the pool file fixes, plus work per step from a table of
typical times (WORK), scaled by the number of steps, i.e. by the pool's size.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..actions.base import Action
from ..config.dnsnames import cutover_names
from ..config.loader import LoadedPool
from ..plan import Plan, PlanPhase, PlanStep
from ..report.model import pool_data
from ..report.render import duration
from ..runner.rehearsal import Rehearsal

MODEL_VERSION = 1

#: typical seconds of one step's own work (connect, change, verify), by action;
#: waits are added separately from the pool file. Unknown actions: DEFAULT_WORK.
#: Steps that run side by side (one wave) count once per round of run.forks.
WORK: Mapping[str, float] = {
    "pool.check": 1,
    "host.reachable": 5,
    "fe.checklist": 1,
    "fe.gate": 20,
    "hosts.pin": 3,
    "hosts.unpin": 3,
    "host.flush_dns": 2,
    "host.restart_services": 60,
    "probe.ports": 15,
    "probe.tcp": 5,
    "routing.enable": 10,
    "lb.apply_farm": 10,
    "lb.readback": 3,
    "lb.reach": 10,
    "lb.distribution": 30,
    "lb.isolate": 20,
    "lb.drain_restart": 60,
    "lb.failover_drill": 15,
    "lb.pair_drill": 30,
    "lb.failover_procedure": 1,
    "dns.lower_ttl": 3,
    "dns.replace": 3,
    "dns.retarget_srv": 3,
    "dns.verify": 3,
    "dns.raise_ttl": 3,
    "cutover.inventory": 5,
    "cutover.no_pins": 3,
    "cutover.watch": 0,
    "legacy.drain": 5,
    "legacy.stop_services": 30,
    "legacy.checklist": 1,
    "operator.hold": 0,
}
DEFAULT_WORK = 10.0
#: what a person is assumed to take: the client tests at one hold, one manual entry
HOLD_SECONDS = 900.0
MANUAL_SECONDS = 300.0

#: phases outside the maintenance window: lower-ttl ahead of it, decommission after
AHEAD, INSIDE, AFTER = "ahead of the window", "in the window", "after the window"

#: users affected in each phase (the walkthrough's: until the cutover, users are on
#: the legacy FE through DNS; only the test clients reach the new front ends)
_USERS = {
    "preflight": "none: reads only",
    "routing": "none for users on the legacy FE; the new front ends gain a route",
    "configure-fe": "none: checks on the new front ends, which serve no user yet",
    "validate-fe": "none for users (they stay on the legacy FE); the new front ends' services "
    "restart; the test clients are pinned to one front end at a time",
    "configure-lb": "none: the VIP is not in DNS yet",
    "validate-lb": "none for users; each new front end is drained at the LB and restarted, "
    "one at a time; the test clients are pinned to the VIP",
    "failover-test": "none for users (they are on the legacy FE); the drill stops each front "
    "end's services and cuts its link in turn, and the test clients see the LB take it out",
    "lower-ttl": "none: the TTL is lowered, the address stays",
    "cutover": "every user: the pool name moves to the VIP; each front end is drained and "
    "restarted in turn (sessions still held after the drain timeout are cut); over the watch's "
    "failure budget the record is put back by itself",
    "decommission": "users still signed in to the legacy FE after its drain timeout",
}

#: what `rollback --to PHASE` cannot put back, by action
_CANNOT = {
    "host.restart_services": "a restart cannot be undone (the services run again)",
    "lb.drain_restart": "a restart and the sessions its drain cut cannot be undone",
    "lb.failover_drill": "the drill's failed requests; it puts its fault right itself "
    "(rollback only proves it is right)",
    "lb.pair_drill": "the LB drill's failed requests and the connections it cut; it puts "
    "its fault right itself (rollback only proves it is right)",
    "legacy.drain": "client sessions the drain cut",
    "operator.hold": "the sign-off stays in the journal",
    "host.flush_dns": "a flushed DNS cache (it refills from DNS)",
    "dns.replace": "clients that looked the name up keep the new address for its TTL",
    "dns.retarget_srv": "clients that looked the SRV record up keep it for its TTL",
}


@dataclass(frozen=True)
class Inputs:
    plan: Plan
    phases: Sequence[PlanPhase]
    loaded: LoadedPool
    actions: Mapping[str, type[Action]]
    pool_file: str
    rehearsal: Rehearsal | None = None


def _propagation(loaded: LoadedPool) -> int:
    dns = loaded.pool.dns
    if dns.propagation_timeout is not None:
        return int(dns.propagation_timeout)
    ad = dns.provider == "windows" or bool(getattr(dns, "ad_integrated", False))
    return 300 if ad else 30


def _person(step: PlanStep, inputs: Inputs) -> str | None:
    """Why this step waits for a person, or None."""
    pool = inputs.loaded.pool
    cls = inputs.actions.get(step.action)
    read_only = cls is not None and cls.read_only
    if step.action == "operator.hold":
        return "the client tests, signed off by a person (who, passed or failed, notes)"
    drill_link = step.action == "lb.failover_drill" and "link" in step.ref.labels
    if drill_link and not pool.load_balancer.failover.link_down_command:
        return "a person pulls and plugs the front end's network cable"
    pair = pool.load_balancer.pair
    lb_link = step.action == "lb.pair_drill" and step.args.get("mode") == "link"
    if lb_link and pair is not None and not pair.link_down_command:
        return "a person pulls and plugs the active load balancer's network cable"
    manual_lb = pool.load_balancer.driver.kind == "manual"
    # a drill stops services itself and watches from outside: the appliance is not asked
    by_driver = step.action.startswith(("lb.", "routing.")) and step.action != "lb.failover_drill"
    if manual_lb and not read_only and by_driver:
        return "manual LB driver: a person enters it on the appliance and answers done"
    if pool.dns.provider == "manual" and not read_only and step.action.startswith("dns."):
        return "manual DNS: a person makes the change and answers done"
    if step.action == "cutover.inventory" and not pool.dns.acknowledge:
        return (
            "only when it finds a CNAME or an unlisted name at the legacy FE: a person "
            "acknowledges it"
        )
    return None


def _is_check(step: PlanStep, inputs: Inputs) -> bool:
    cls = inputs.actions.get(step.action)
    if cls is not None and cls.read_only:
        return True
    return all(c.kind in ("check", "none") for c in step.changes)


def _waits(phase: PlanPhase, inputs: Inputs) -> list[dict[str, Any]]:
    """The waits the pool file fixes in this phase: `fixed` ones always pass,
    `bound` ones are the most they may take."""
    pool = inputs.loaded.pool
    actions = [s.action for s in phase.all_steps]
    out: list[dict[str, Any]] = []

    def add(what: str, seconds: float, kind: str) -> None:
        out.append({"what": what, "seconds": float(seconds), "kind": kind})

    dns_steps = sum(1 for a in actions if a in ("dns.lower_ttl", "dns.verify", "dns.raise_ttl"))
    if dns_steps:
        add(
            f"DNS propagation, at most {_propagation(inputs.loaded)} s for each of "
            f"{dns_steps} record step(s) (dns.propagation_timeout)",
            _propagation(inputs.loaded) * dns_steps,
            "bound",
        )
    if "cutover.watch" in actions:
        add("the watch window (dns.watch_window)", pool.dns.watch_window, "fixed")
    drains = actions.count("lb.drain_restart")
    if drains and phase.id == "cutover" and pool.cutover.fe_restart == "drained":
        add(
            f"the drain of {drains} front end(s), at most {pool.cutover.drain_timeout} s each "
            "(cutover.drain_timeout)",
            pool.cutover.drain_timeout * drains,
            "bound",
        )
    drills = actions.count("lb.failover_drill")
    if drills:
        detect = pool.load_balancer.failover.detect_timeout
        add(
            f"the LB taking a member out and back, at most {detect:g} s each way for "
            f"{drills} drill(s) (load_balancer.failover.detect_timeout)",
            detect * 2 * drills,
            "bound",
        )
    if "legacy.drain" in actions:
        add(
            f"the legacy FE's drain, at most {pool.decommission.drain_timeout} s "
            "(decommission.drain_timeout)",
            pool.decommission.drain_timeout,
            "bound",
        )
    return out


def _step(step: PlanStep, inputs: Inputs, measured: Mapping[str, float]) -> dict[str, Any]:
    targets = [t for t in dict.fromkeys(c.target for c in step.changes)]
    person = _person(step, inputs)
    return {
        "id": step.id,
        "action": step.action,
        "cleanup": step.cleanup,
        "built": step.built,
        "targets": targets,
        "changes": [c.to_dict() for c in step.changes],
        # a hold is a person's; a check that may ask (the inventory) stays a check
        "kind": "person"
        if step.action == "operator.hold" or (person and not _is_check(step, inputs))
        else "check"
        if _is_check(step, inputs)
        else "change",
        "person": person,
        "work_seconds": float(WORK.get(step.action, DEFAULT_WORK)),
        "measured_seconds": measured.get(step.id),
    }


def _hosts(steps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target the phase touches, with what changes there (checks apart)."""
    seen: dict[str, dict[str, Any]] = {}
    for step in steps:
        for change in step["changes"]:
            row = seen.setdefault(
                change["target"], {"host": change["target"], "changes": [], "checks": 0}
            )
            if change["kind"] in ("check", "none"):
                row["checks"] += 1
            elif change["summary"] not in row["changes"]:
                row["changes"].append(change["summary"])
    return list(seen.values())


#: steps rollback replays nothing for: what they did cannot be taken back (_CANNOT says what)
_NO_UNDO = frozenset(
    {
        "host.flush_dns",
        "host.restart_services",
        "lb.drain_restart",
        "lb.failover_drill",
        "lb.pair_drill",
        "operator.hold",
        "legacy.drain",
    }
)


def _rollback(phase: PlanPhase, steps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    # a pin that the phase's own cleanup removes is not replayed by rollback
    unpinned = {
        t for s in steps if s["cleanup"] and s["action"] == "hosts.unpin" for t in s["targets"]
    }
    undone = [
        s
        for s in steps
        if s["kind"] != "check"
        and s["action"] not in _NO_UNDO
        and not (s["action"] in ("hosts.pin", "hosts.unpin") and set(s["targets"]) <= unpinned)
    ]
    undoes = [f"{s['id']}: {'; '.join(c['summary'] for c in s['changes'])}" for s in undone]
    if unpinned:
        undoes.append(
            "nothing of the pins: the phase's cleanup removes them, and rollback replays "
            "no pin with its unpin"
        )
    cannot = list(dict.fromkeys(_CANNOT[s["action"]] for s in steps if s["action"] in _CANNOT))
    by_hand = [s for s in undone if s["person"]]
    cannot += [f"{s['id']}: made by hand, so put back by hand (rollback asks)" for s in by_hand]
    seconds = sum(s["work_seconds"] for s in undone) + MANUAL_SECONDS * len(by_hand)
    return {
        "command": f"ocsscale rollback --to {phase.id}",
        "covers": f"{phase.id} and every phase after it, newest change first",
        "undoes": undoes,
        "cannot": cannot,
        "seconds": float(seconds),
    }


def _work(phase: PlanPhase, inputs: Inputs) -> float:
    """The steps' own work: one after another, but the steps of one wave (a playbook
    entry on different hosts: runner/parallel.py) side by side, run.forks at a time."""
    forks = inputs.loaded.pool.run.forks
    total = 0.0
    waves: dict[str, list[float]] = {}
    for step in phase.all_steps:
        seconds = float(WORK.get(step.action, DEFAULT_WORK))
        cls = inputs.actions.get(step.action)
        if step.wave and cls is not None and cls.parallel:
            waves.setdefault(step.wave, []).append(seconds)
        else:
            total += seconds
    for times in waves.values():
        total += max(times) * -(-len(times) // forks)  # rounds of `forks` at once
    return total


def _phase(phase: PlanPhase, inputs: Inputs) -> dict[str, Any]:
    rehearsal = inputs.rehearsal
    measured = {s.step_id: s.seconds for s in rehearsal.steps} if rehearsal else {}
    steps = [_step(s, inputs, measured) for s in phase.all_steps]
    waits = _waits(phase, inputs)
    work = _work(phase, inputs)
    people = HOLD_SECONDS * sum(1 for s in steps if s["action"] == "operator.hold")
    people += MANUAL_SECONDS * sum(
        1
        for s in steps
        if s["person"] and s["action"] not in ("operator.hold", "cutover.inventory")
    )
    fixed = sum(w["seconds"] for w in waits if w["kind"] == "fixed")
    bound = sum(w["seconds"] for w in waits if w["kind"] == "bound")
    taken = rehearsal.phase(phase.id) if rehearsal else None
    window = AHEAD if phase.id == "lower-ttl" else AFTER if phase.id == "decommission" else INSIDE
    return {
        "id": phase.id,
        "title": phase.title,
        "section": phase.section,
        "skipped": phase.skipped,
        "window": window,
        "steps": steps,
        "hosts": _hosts(steps),
        "manual": [{"step": s["id"], "why": s["person"]} for s in steps if s["person"]],
        "checks_only": bool(steps) and all(s["kind"] == "check" for s in steps),
        "duration": {
            "work_seconds": float(work),
            "people_seconds": float(people),
            "waits": waits,
            "expected_seconds": float(work + people + fixed),
            "at_most_seconds": float(work + people + fixed + bound),
            "measured_seconds": None if taken is None else taken.seconds,
            "measured_status": None if taken is None else taken.status,
        },
        "rollback": _rollback(phase, steps),
        "risk": {
            "users": _USERS.get(phase.id, "not known to the tool for this phase"),
            "stops": [s["id"] for s in steps if s["kind"] == "check" and not s["cleanup"]],
        },
    }


def _dns_changes(loaded: LoadedPool) -> list[dict[str, Any]]:
    pool, dns = loaded.pool, loaded.pool.dns
    names = cutover_names(pool, loaded.profile)
    vip = str(pool.load_balancer.vip.ip)
    ttl_now = f"as the zone has it (lower-ttl reads it; {dns.ttl} s assumed)"
    rows = [
        {
            "name": name,
            "type": "A",
            "old": str(pool.legacy_fe.address),
            "new": vip,
            "ttl_now": ttl_now,
            "ttl_lowered": dns.cutover_ttl,
            "ttl_after": dns.ttl,
            "when": "lower-ttl lowers the TTL; cutover moves it; raised after the watch",
        }
        for name in [pool.pool.fqdn, *(n["name"] for n in names["a"])]
    ]
    rows += [
        {
            "name": n["name"],
            "type": "SRV",
            "old": f"target {names['srv_from']}",
            "new": f"target {names['srv_to']}",
            "ttl_now": ttl_now,
            "ttl_lowered": dns.cutover_ttl,
            "ttl_after": dns.ttl,
            "when": "only when it targets the legacy FE",
        }
        for n in names["srv"]
    ]
    return rows


def _outside(loaded: LoadedPool, phases: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    dns = loaded.pool.dns
    ids = {p["id"] for p in phases if not p["skipped"]}
    out = []
    lead = float(dns.ttl + _propagation(loaded))
    if "lower-ttl" in ids:
        out.append(
            {
                "phase": "lower-ttl",
                "when": AHEAD,
                "earliest": "any time before the window, and at the latest "
                f"{duration(lead)} before the cutover is to start: the cutover may start "
                f"once the record's current TTL ({dns.ttl} s assumed; lower-ttl reads it) "
                "has run out in every cache after it (`ocsscale status` names the moment)",
                "lead_seconds": lead,
            }
        )
    if "decommission" in ids:
        out.append(
            {
                "phase": "decommission",
                "when": AFTER,
                "earliest": f"{duration(dns.cutover_ttl)} (the old TTL: the lowered one) "
                "after the cutover's record change; it refuses to start before",
                "lead_seconds": float(dns.cutover_ttl),
            }
        )
    return out


def build(inputs: Inputs, now: float | None = None) -> dict[str, Any]:
    loaded = inputs.loaded
    pool = loaded.pool
    phases = [_phase(p, inputs) for p in inputs.phases]
    live = [p for p in phases if not p["skipped"]]
    window = [p for p in live if p["window"] == INSIDE]
    rehearsal = inputs.rehearsal
    return {
        "model_version": MODEL_VERSION,
        "kind": "ocsscale change pack",
        "generated_utc": time.strftime(
            "%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() if now is None else now)
        ),
        "pool_name": pool.pool.fqdn,
        "pool_file": inputs.pool_file,
        "playbook": inputs.plan.playbook,
        "profile": loaded.profile.name,
        "lb_driver": pool.load_balancer.driver.kind,
        "dns_provider": pool.dns.provider,
        "pool": pool_data(loaded),
        "hosts": sorted({h["host"] for p in live for h in p["hosts"]}),
        "phases": phases,
        "window": {
            "phases": [p["id"] for p in window],
            "expected_seconds": sum(p["duration"]["expected_seconds"] for p in window),
            "at_most_seconds": sum(p["duration"]["at_most_seconds"] for p in window),
            "measured_seconds": (
                sum(p["duration"]["measured_seconds"] or 0.0 for p in window) if rehearsal else None
            ),
        },
        "outside_window": _outside(loaded, phases),
        "dns_changes": _dns_changes(loaded),
        "rehearsal": None
        if rehearsal is None
        else {
            "journal": str(rehearsal.path),
            "pool": rehearsal.pool,
            "phases": len(rehearsal.phases),
            "steps": len(rehearsal.steps),
        },
        "assumptions": {
            "hold_seconds": HOLD_SECONDS,
            "manual_seconds": MANUAL_SECONDS,
            "work_per_step": "typical seconds per action, scaled by this pool's step count",
        },
        "signoff": {"requested_by": "", "approved_by": "", "window": ""},
    }
