"""decommission: the old single front end drained and its services stopped, reversibly.

It never touches the pool, its database, the pool's A or SRV records or the
LB farm: only the legacy FE's own services. The rest (Deactivate in setup,
removing its A/PTR records and certificate) stays manual, as a checklist.

legacy.drain (check; args: legacy, wait = seconds, 600 by default)
  Refused until the old TTL has passed since the cutover (read from the
  journal: the last done dns.replace, its `changed_at` plus the TTL the old
  record had), saying when it may start. Then counts the established client
  connections on the legacy FE's SIP ports (its own connection table: `ss` on
  Linux, `netstat -ano` on Windows) until none remain; on timeout it fails
  listing who is still connected.

legacy.stop_services (args: legacy)
  Reads: each OCS service's state (running, enabled at boot). Changes: stops
  and disables them. Undo (journaled first): enables and starts again those
  that were. Proof: read back stopped (after) and as before (after rollback).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import CheckFailed, StepFailed, UsageError
from ..transports.commands import PsScript
from .base import Action, Change, Context, Json, register
from .lb_validate import established

DRAIN_WAIT = 600.0
POLL = 2.0

_WIN_MODE = {"Auto": "Automatic", "Manual": "Manual", "Disabled": "Disabled"}


def _legacy(ctx: Context, args: Mapping[str, Any], action: str) -> Any:
    name = str(args.get("legacy") or ctx.pool.legacy_fe.name)
    if name != ctx.pool.legacy_fe.name:
        raise UsageError(f"{action}: 'legacy' must name the legacy FE {ctx.pool.legacy_fe.name}")
    return ctx.pool.legacy_fe


def _utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def cutover_settled(ctx: Context) -> dict[str, Any]:
    """When clients can no longer hold the legacy address: the last cutover's change
    time plus the old record's TTL. Raises CheckFailed before then."""
    journal = ctx.extra.get("journal")
    if journal is None:
        return {"checked": False, "why": "no journal (dry run): checked when the run starts"}
    cutover = None
    for entry in reversed(journal.entries()):
        # a re-run that found the record already moved changed nothing: look further back
        evidence = entry.evidence if entry.action == "dns.replace" else None
        if entry.status == "done" and isinstance(evidence, dict) and "changed_at" in evidence:
            cutover = evidence
            break
    if cutover is None or "changed_at" not in cutover:
        raise CheckFailed(
            "the pool name has not been cut over (no finished dns.replace in the journal): "
            "decommission comes after the cutover"
        )
    old_ttl = int((cutover.get("old") or {}).get("ttl") or 0)
    ready = float(cutover["changed_at"]) + old_ttl
    while ctx.extra.get("wait") and (left := ready - time.time()) > 0:  # run --wait
        what = f"the old TTL ({old_ttl} s) since the cutover"
        ctx.emit("waiting", {"what": what, "until": _utc(ready), "left": left})
        time.sleep(min(left, 5.0))
    if time.time() < ready:
        raise CheckFailed(
            f"clients may still hold the legacy address for the old TTL ({old_ttl} s) after "
            f"the cutover at {_utc(float(cutover['changed_at']))}: decommission may start at "
            f"{_utc(ready)}",
            hint="run decommission again after that moment, or with --wait",
        )
    return {"checked": True, "cutover_at": cutover["changed_at"], "old_ttl": old_ttl}


@register
class LegacyDrain(Action):
    """No client connections left on the legacy FE (module docstring)."""

    name = "legacy.drain"
    read_only = True

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.legacy = _legacy(ctx, args, self.name)
        sip = ctx.profile.sip_ports
        self.ports = [p for p in (sip.tls, sip.tcp) if p is not None] or list(ctx.profile.ports)
        try:
            self.wait = float(args.get("wait", DRAIN_WAIT))
        except (TypeError, ValueError):
            raise UsageError(f"{self.name}: 'wait' must be a number of seconds") from None

    def targets(self) -> list[str]:
        return [self.legacy.name]

    def describe(self) -> list[Change]:
        return [
            Change(
                "check",
                self.legacy.name,
                f"after the old TTL has passed since the cutover: no client connection left on "
                f"{self.legacy.name} ports {', '.join(map(str, self.ports))} (waits up to "
                f"{self.wait:.0f} s)",
            )
        ]

    def _clients(self) -> list[str]:
        ours = {str(fe.address) for fe in self.ctx.pool.front_ends}
        ours |= {str(a) for a in self.ctx.pool.load_balancer.snat_addresses}
        ours.add(str(self.ctx.pool.load_balancer.vip.ip))
        host = self.ctx.host(self.legacy.name)
        peers = []
        for port in self.ports:
            peers += [
                f"{peer} (port {port})" for _, peer in established(host, port) if peer not in ours
            ]
        return sorted(peers)

    def apply(self, current: Json) -> Json:
        settled = cutover_settled(self.ctx)
        deadline = time.monotonic() + self.wait
        seen: list[dict[str, Any]] = []
        while True:
            clients = self._clients()
            seen.append({"t": time.time(), "connections": len(clients)})
            if not clients:
                break
            if time.monotonic() > deadline:
                raise CheckFailed(
                    f"{self.legacy.name}: {len(clients)} client connection(s) still open after "
                    f"{self.wait:.0f} s: {', '.join(clients[:12])}",
                    hint="find out who they are (clients with a static server setting?) "
                    "or run decommission again later",
                )
            time.sleep(POLL)
        return {"legacy": self.legacy.name, "ports": self.ports, "cutover": settled, "seen": seen}


@register
class LegacyStopServices(Action):
    """Stop and disable the legacy FE's OCS services (module docstring)."""

    name = "legacy.stop_services"
    phases = ("decommission",)

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.legacy = _legacy(ctx, args, self.name)
        self.services = ctx.profile.services.for_os(self.legacy.os)
        if not self.services and not ctx.profile.services.windows_display_names:
            raise UsageError(f"{self.name}: the profile lists no services for {self.legacy.os}")

    def targets(self) -> list[str]:
        return [self.legacy.name]

    def describe(self) -> list[Change]:
        return [
            Change(
                "change",
                self.legacy.name,
                f"stop and disable {', '.join(self.services)} (undo: enabled and started again)",
            )
        ]

    # -- service states ---------------------------------------------------------------
    def _states(self) -> dict[str, dict[str, Any]]:
        host = self.ctx.host(self.legacy.name)
        if host.os == "windows":
            # found by display name (with W3SVC and their running dependants), as restarts do
            names = self.ctx.profile.services
            found = host.services([], [*names.windows_display_names, *names.windows])  # type: ignore[attr-defined]
            return {
                s.name: {
                    "active": s.status == "Running",
                    "enabled": s.start_mode.lower().startswith("auto"),
                    "start_mode": s.start_mode,
                }
                for s in found
            }
        active = host.control_services("is-active", self.services, check=False)  # type: ignore[attr-defined]
        enabled = host.control_services("is-enabled", self.services, check=False)  # type: ignore[attr-defined]
        return {
            name: {"active": a, "enabled": e}
            for name, a, e in zip(self.services, active, enabled, strict=True)
        }

    def _set(self, name: str, *, active: bool, enabled: bool, mode: str | None = None) -> None:
        host = self.ctx.host(self.legacy.name)
        if host.os == "windows":
            startup = _WIN_MODE.get(mode or "", "Automatic") if enabled else "Disabled"
            script = "Set-Service -Name $Name -StartupType $Mode; " + (
                "Start-Service -Name $Name" if active else "Stop-Service -Name $Name -Force"
            )
            host.run(PsScript(script, {"Name": name, "Mode": startup}), timeout=300.0)
            return
        control = host.control_services  # type: ignore[attr-defined]
        control("enable" if enabled else "disable", [name])
        control("start" if active else "stop", [name])

    def read(self) -> Json:
        return self._states()

    def diff(self, current: Json) -> list[Change]:
        if all(not s["active"] and not s["enabled"] for s in current.values()):
            return []
        return self.describe()

    def undo_record(self, current: Json) -> Json:
        return {"host": self.legacy.name, "services": current}

    def apply(self, current: Json) -> Json:
        for name in current:
            self._set(name, active=False, enabled=False)
        return {"host": self.legacy.name, "before": current}

    def verify(self, evidence: Json) -> Json:
        states = self._states()
        running = [n for n, s in states.items() if s["active"]]
        if running:
            raise StepFailed(
                f"{self.legacy.name}: still running after the stop: {', '.join(running)}"
            )
        return {**evidence, "after": states}

    def revert(self, undo: Json) -> Json:
        for name, state in undo["services"].items():
            self._set(
                name, active=state["active"], enabled=state["enabled"], mode=state.get("start_mode")
            )
        return {"host": undo["host"], "restored": undo["services"]}

    def verify_reverted(self, undo: Json) -> Json:
        states = self._states()
        wrong = [
            n for n, s in undo["services"].items() if states.get(n, {}).get("active") != s["active"]
        ]
        if wrong:
            raise StepFailed(f"{undo['host']}: not as before the decommission: {', '.join(wrong)}")
        return {"host": undo["host"], "services": states}


@register
class LegacyChecklist(Action):
    """What stays manual after the legacy FE is stopped (a printed checklist)."""

    name = "legacy.checklist"
    read_only = True

    def targets(self) -> list[str]:
        return []

    def describe(self) -> list[Change]:
        legacy = self.ctx.pool.legacy_fe
        return [Change("check", legacy.name, f"print what stays manual for {legacy.fqdn}")]

    def apply(self, current: Json) -> Json:
        legacy = self.ctx.pool.legacy_fe
        steps = [
            f"On {legacy.fqdn}, run Setup and choose Deactivate for its Office Communications "
            "Server role, so Active Directory no longer lists it.",
            f"Remove the A record of {legacy.fqdn} ({legacy.address}) and its PTR record from DNS "
            f"(not {self.ctx.pool.pool.fqdn}, which now points at the VIP).",
            f"Revoke or remove the certificate issued to {legacy.fqdn}.",
            "Leave the pool, its database, the pool's A and SRV records and the load "
            "balancer farm as they are: this run never touched them.",
        ]
        self.ctx.emit("checklist", {"title": f"decommission {legacy.name} by hand", "steps": steps})
        return {"steps": steps}
