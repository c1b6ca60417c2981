"""validate-lb: distribution, SNAT and DNAT, and each front end alone behind the VIP.

lb.distribution (check): the walkthrough's telnet test, automated. N TLS
  connections to VIP:port are opened from the test clients (round robin over
  those that can carry a stream; the admin host when none can) and HELD open,
  since least-connections balancing only shows with connections that stay;
  each is attributed to the FE whose certificate (or answer) it got. Every FE
  must hold its weighted share within one connection. While they are held,
  each FE's own list of established connections on that port proves SNAT and
  DNAT as the walkthrough's note asks: the peers are SNAT addresses (never a
  client's own address) and the local address is the FE's own.
  Reads only; closes every connection it opened.

lb.isolate (target: the LB): with every other member set to maint through the
  driver, every profile port through the VIP is answered by this FE; then
  every member's admin state is put back and the step waits until all are up.
  Undo: the members' admin states as they were (journaled first), so a run
  cut short in the middle is put right by rollback.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from pydantic import Field

from ..config.profiles import port_requirement
from ..errors import CheckFailed, OcsscaleError, StepFailed, UndoRecordError, UsageError
from ..evidence import Distribution, NatProof
from ..probes import ProbeEvidence, socket_connector
from ..probes.basic import tls_hold
from ..probes.stream import close_quietly
from ..providers.lb.base import ADMIN_STATES
from . import undo_shape as shape
from .args import ActionArgs, Port
from .base import Action, Change, Context, Json, register
from .lb import (
    FeStepArgs,
    front_end_arg,
    lb_target_label,
    lb_targets,
    planned_farm,
    wait_members_up,
)
from .plugin_ports import lb_driver
from .probing import (
    answered_by,
    certificate_owner,
    probe_port,
    tls_options,
    vantage,
)

MAX_CONNECTIONS = 200


def identify(evidence: ProbeEvidence, pool: Any) -> str | None:
    return answered_by(evidence, pool) or certificate_owner(evidence, pool)


def weighted_ideal(weights: Mapping[str, int], total: int) -> dict[str, float]:
    whole = sum(weights.values())
    return {n: (total * w / whole if whole else 0.0) for n, w in weights.items()}


def streaming_sources(ctx: Context) -> list[Any]:
    """Vantages that can hold a connection: Linux test clients, else the admin host."""
    found = []
    for client in ctx.pool.test_clients:
        where = vantage(ctx, client.name)
        if where.streams:
            found.append(where)
    return found or [vantage(ctx, "admin")]


def established(host: Any, port: int) -> list[tuple[str, str]]:
    """(local address, peer address) of the established TCP connections on local `port`,
    as the host's transport reads them in any language (transports/connections.py); an
    answer it cannot read raises, naming the host."""
    return [(c.local, c.remote) for c in host.connections([port])]


class DistributionArgs(ActionArgs):
    #: the VIP's port the held connections go to
    port: Port = 5061
    #: how many connections to hold (default: twice the weights, at least 8)
    connections: (
        Annotated[
            int, Field(ge=1, le=MAX_CONNECTIONS, description=f"a count in 1..{MAX_CONNECTIONS}")
        ]
        | None
    ) = None


@register
class LbDistribution(Action):
    """Held connections land on the FEs by weight; SNAT and DNAT proven (module docstring)."""

    name = "lb.distribution"
    read_only = True
    Args = DistributionArgs
    params: DistributionArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.port = self.params.port
        self.weights = {fe.name: fe.weight for fe in ctx.pool.front_ends}
        self.count = self.params.connections or max(8, 2 * sum(self.weights.values()))
        if not 1 <= self.count <= MAX_CONNECTIONS:
            raise UsageError(f"{self.name}: 'connections' must be 1..{MAX_CONNECTIONS}")
        self.vip = str(ctx.pool.load_balancer.vip.ip)
        self.snat = {str(a) for a in ctx.pool.load_balancer.snat_addresses} or {self.vip}

    def targets(self) -> list[str]:
        return [c.name for c in self.ctx.pool.test_clients] + [
            fe.name for fe in self.ctx.pool.front_ends
        ]

    def describe(self) -> list[Change]:
        return [
            Change(
                "check",
                "test clients",
                f"{self.count} connections held open to {self.vip}:{self.port} land on the "
                "front ends within one connection of the weighted ideal; on each FE the peer "
                "is a SNAT address and the local address its own (SNAT + DNAT)",
            )
        ]

    def apply(self, current: Json) -> Json:
        sources = streaming_sources(self.ctx)
        held: list[Any] = []
        landed: list[dict[str, Any]] = []
        try:
            for i in range(self.count):
                where = sources[i % len(sources)]
                evidence, stream = tls_hold(
                    self.vip,
                    self.port,
                    self.ctx.pool.pool.fqdn,
                    tls=tls_options(self.ctx, self.vip),
                    connect=where.connect or socket_connector,
                    source=where.name,
                )
                if stream is None:
                    raise CheckFailed(
                        f"connection {i + 1} of {self.count} from {where.name} to "
                        f"{self.vip}:{self.port} failed: {evidence.detail}"
                    )
                held.append(stream)
                landed.append({"from": where.name, "fe": identify(evidence, self.ctx.pool)})
            nat = self._nat_proof()
        finally:
            for stream in held:
                close_quietly(stream)
        return self._judge(landed, nat)

    def _nat_proof(self) -> dict[str, Any]:
        clients = {str(c.address) for c in self.ctx.pool.test_clients}
        proof: dict[str, Any] = {}
        for fe in self.ctx.pool.front_ends:
            try:
                pairs = established(self.ctx.host(fe.name), self.port)
            except OcsscaleError as exc:
                proof[fe.name] = {"proven": False, "why": exc.message}
                continue
            own = str(fe.address)
            from_clients = sorted({p for _, p in pairs if p in clients})
            wrong_local = sorted({loc for loc, _ in pairs if loc not in (own, "0.0.0.0")})
            proof[fe.name] = {
                "proven": True,
                "peers": sorted({p for _, p in pairs}),
                "from_snat": sum(1 for _, p in pairs if p in self.snat),
                "from_clients": from_clients,
                "local_not_own": wrong_local,
            }
        return proof

    def _judge(self, landed: list[dict[str, Any]], nat: dict[str, Any]) -> Json:
        counts = {name: 0 for name in self.weights}
        unknown = 0
        for item in landed:
            if item["fe"] in counts:
                counts[item["fe"]] += 1
            else:
                unknown += 1
        ideal = weighted_ideal(self.weights, self.count)
        findings = []
        problems = []
        for name, n in counts.items():
            ok = math.fabs(n - ideal[name]) <= 1.0
            findings.append(
                {
                    "check": f"{name} (weight {self.weights[name]})",
                    "ok": ok,
                    "message": f"{n} of {self.count} connections (ideal {ideal[name]:.1f})",
                }
            )
            if not ok:
                problems.append(f"{name} holds {n}, ideal {ideal[name]:.1f}")
        if unknown:
            problems.append(f"{unknown} connection(s) answered by no known front end")
        for name, p in nat.items():
            if not p["proven"]:
                findings.append(
                    {"check": f"SNAT/DNAT {name}", "ok": True, "proven": False, "message": p["why"]}
                )
                continue
            ok = not p["from_clients"] and not p["local_not_own"] and p["from_snat"] >= counts[name]
            message = (
                f"{p['from_snat']} connection(s) from SNAT {', '.join(sorted(self.snat))} to "
                f"{name}'s own address"
            )
            if p["from_clients"]:
                message = f"client addresses seen (no SNAT): {', '.join(p['from_clients'])}"
            elif p["local_not_own"]:
                message = f"local address not the FE's own (no DNAT): {p['local_not_own']}"
            elif p["from_snat"] < counts[name]:
                message = f"only {p['from_snat']} of {counts[name]} held connections seen"
            findings.append({"check": f"SNAT/DNAT {name}", "ok": ok, "message": message})
            if not ok:
                problems.append(f"{name}: {message}")
        self.ctx.emit(
            "findings",
            {"title": f"distribution of {self.count} held connections", "findings": findings},
        )
        if problems:
            raise CheckFailed(
                f"the load balancer's distribution over {self.vip}:{self.port} does not hold: "
                + "; ".join(problems)
            )
        return Distribution(
            vip=self.vip,
            port=self.port,
            connections=self.count,
            counts=counts,
            ideal=ideal,
            weights=self.weights,
            landed=tuple(landed),
            nat={name: NatProof.from_json(proof) for name, proof in nat.items()},
        ).to_json()


@register
class LbIsolate(Action):
    """One FE alone behind the VIP answers every port (module docstring)."""

    name = "lb.isolate"
    phases = ("validate-lb",)
    Args = FeStepArgs
    params: FeStepArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.fe = front_end_arg(ctx, self.params.fe, self.name).name
        names = [fe.name for fe in ctx.pool.front_ends]
        self.others = [n for n in names if n != self.fe]
        self.vip = str(ctx.pool.load_balancer.vip.ip)
        self.label = lb_target_label(ctx)

    def targets(self) -> list[str]:
        return lb_targets(self.ctx) + [c.name for c in self.ctx.pool.test_clients]

    def describe(self) -> list[Change]:
        return [
            Change(
                "change",
                self.label,
                f"{', '.join(self.others) or 'no other member'} to maint; every profile port "
                f"through {self.vip} answered by {self.fe}; states restored",
            )
        ]

    def read(self) -> Json:
        stats = lb_driver(self.ctx).stats()
        return {name: s.admin for name, s in stats.items()}

    def diff(self, current: Json) -> list[Change]:
        return self.describe()

    def undo_record(self, current: Json) -> Json:
        return {"admin": current}

    def apply(self, current: Json) -> Json:
        driver = lb_driver(self.ctx)
        before = {name: current.get(name, "ready") for name in self.others}

        def take_out() -> None:
            for name in self.others:
                driver.set_member(name, "maint")

        def put_back() -> None:
            for name, state in before.items():
                driver.set_member(name, state)

        # journaled before the first member goes to maint, both ways under a signal
        # shield: a run cut short leaves them back, or a record the next command acts on
        with self.ctx.faults.held(
            "members-maint",
            ", ".join(self.others),
            f"{', '.join(self.others) or 'no member'} in maint at {self.label} "
            f"({self.fe} isolated behind the VIP)",
            {"admin": before},
            put=take_out,
            take_away=put_back,
        ):
            wait_members_up(driver, [self.fe])
            results = self._probe_all()
        wait_members_up(driver, [fe.name for fe in self.ctx.pool.front_ends])
        failed = [r for r in results if not r["ok"]]
        self.ctx.emit(
            "findings",
            {
                "title": f"{self.fe} alone behind {self.vip}",
                "findings": [
                    {
                        "check": f"port {r['port']} ({r['kind']})",
                        "ok": r["ok"],
                        "proven": r["answered_by"] is not None,
                        "message": r["message"],
                    }
                    for r in results
                ],
            },
        )
        if failed:
            raise CheckFailed(
                f"with the others in maint, {len(failed)} port(s) through {self.vip} were not "
                f"answered by {self.fe}: "
                + "; ".join(f"{r['port']}: {r['message']}" for r in failed[:5])
            )
        return {"fe": self.fe, "others": self.others, "ports": results}

    def _probe_all(self) -> list[dict[str, Any]]:
        where = streaming_sources(self.ctx)[0]
        wanted = [
            (port, requirement)
            for port in planned_farm(self.ctx).ports
            if (requirement := port_requirement(self.ctx.pool, self.ctx.profile, port)) != "absent"
        ]
        # every port at once, as probe.ports does: each waits on the network only
        with ThreadPoolExecutor(max_workers=max(1, len(wanted))) as pool:
            return list(pool.map(lambda item: self._probe_one(where, *item), wanted))

    def _probe_one(self, where: Any, port: int, requirement: str) -> dict[str, Any]:
        evidence = probe_port(
            self.ctx.profile,
            self.vip,
            port,
            self.ctx.pool.pool.fqdn,
            tls=tls_options(self.ctx, self.vip),
            connect=where.connect or socket_connector,
            source=where.name,
        )
        who = identify(evidence, self.ctx.pool)
        # an optional port nobody answers is information, as in probe.ports
        silent_optional = not evidence.ok and requirement == "optional"
        ok = (evidence.ok and who in (None, self.fe)) or silent_optional
        if silent_optional:
            message = f"optional port, not answered: {evidence.detail}"
        elif not evidence.ok:
            message = evidence.detail
        elif who is None:
            message = "answered; the answer names no server (unproven)"
        else:
            message = f"answered by {who}"
        return {
            "port": port,
            "kind": evidence.probe,
            "ok": ok,
            "answered_by": who,
            "message": message,
        }

    def verify(self, evidence: Json) -> Json:
        return evidence

    def restore_fault(self, kind: str, restore: Json) -> Json:
        """An isolate step cut short: the other members back as they were."""
        return {"revert": self.revert(restore), "verify": self.verify_reverted(restore)}

    def check_undo(self, undo: Json) -> None:
        admin = shape.obj(shape.record(undo), "admin")
        for name, state in admin.items():
            if not name or len(name) > shape.MAX_TEXT or not name.isprintable():
                raise UndoRecordError("'admin' names a member with an unusable name")
            if state not in ADMIN_STATES:
                raise UndoRecordError(
                    f"in 'admin': a state is not one of {', '.join(ADMIN_STATES)}"
                )

    def revert(self, undo: Json) -> Json:
        driver = lb_driver(self.ctx)
        for name, state in undo["admin"].items():
            driver.set_member(name, state)
        return {"restored": undo["admin"]}

    def verify_reverted(self, undo: Json) -> Json:
        stats = lb_driver(self.ctx).stats()
        wrong = [n for n, s in undo["admin"].items() if n in stats and stats[n].admin != s]
        if wrong:
            raise StepFailed(f"{self.label}: admin state not restored for {', '.join(wrong)}")
        return {"admin": {n: s.admin for n, s in stats.items()}}
