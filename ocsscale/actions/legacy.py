"""decommission: the old single front end drained and its services stopped, reversibly.

It never touches the pool, its database, the pool's A or SRV records or the
LB farm: only the legacy FE's own services. The rest (Deactivate in setup,
removing its A/PTR records and certificate) stays manual, as a checklist.

legacy.drain (check; args: legacy, drain_timeout = seconds (600; `wait` is its
older name), on_timeout = stop | fail, peers: the pool file's `decommission`)
  Refused until the old TTL has passed since the cutover (read from the
  journal: the last done dns.replace, its `changed_at` plus the TTL the old
  record had), saying when it may start. Then reads the established
  connections on the legacy FE's SIP ports (its own connection table, read the
  same in every language: `ss` on Linux, .NET's GetActiveTcpConnections on
  Windows; a table it cannot read fails the step naming the host) until
  no client is left. Known peers are not clients and are not waited for: OCS
  servers stay connected to it (the pool's FEs, the LB's VIP, SNAT, back-end
  and host addresses, and `peers`: Edge, Director, Mediation, CWA, Exchange
  UM; a peer name is a host of the pool file or looked up in the zone). The
  live line shows clients and peers apart. At `drain_timeout`, `fail` fails
  the phase before anything changed, listing who is connected; `stop` goes
  on and records how many client sessions the stop will cut and from which
  addresses (at most 20 listed), as a finding and in the evidence.

legacy.stop_services (args: legacy)
  Reads: each OCS service's state and start mode, by value not display text
  (Windows: found by display name, Win32_Service.StartMode Auto/Manual/Disabled
  and the status enum; Linux: the words `systemctl is-active` / `is-enabled`
  print, checked against their exit status). Changes: stops each and sets it
  Disabled / disabled (Windows: dependants first); refused before any change
  when a start mode could not be put back exactly (Boot, System, static,
  masked, ...). Undo (journaled first):
  each service's start mode as it was, then started again if it ran (Windows:
  dependencies first). Proof: read back stopped and disabled (after); each
  start mode equal to the recorded one and running as before (after rollback).
  Any answer it cannot read fails the step. An undo record of an earlier
  version (Linux: `enabled` only) is put back as enable/disable.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from ..config.model import LbPairHost
from ..errors import CheckFailed, StepFailed, UndoRecordError, UsageError
from ..providers.dns import DnsError
from ..transports.posix import ACTIVE_WORDS, START_MODE_WORDS
from ..transports.windows_facts import ServiceInfo, stop_order
from . import undo_shape as shape
from .args import ActionArgs, HostName, Seconds
from .base import Action, Change, Context, Json, register
from .history import Move
from .plugin_ports import open_provider

DRAIN_WAIT = 600.0
POLL = 2.0
MAX_LISTED = 20  # client addresses named in the evidence, the finding and the error
MAX_SEEN = 200  # readings kept in the evidence: the last ones
MAX_PEERS = 256


#: a peer of the legacy FE: a host of the pool file, a name in the zone, an address
Peer = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=253)]


class LegacyArgs(ActionArgs):
    #: the legacy FE (checked against the pool file's); not given: that one
    legacy: HostName | None = None


class LegacyDrainArgs(LegacyArgs):
    #: not given: the pool file's `decommission` settings
    drain_timeout: Seconds | None = None
    #: the older name of drain_timeout
    wait: Seconds | None = None
    on_timeout: Literal["stop", "fail"] | None = Field(None, description="one of stop, fail")
    peers: list[Peer] | None = Field(
        None,
        max_length=MAX_PEERS,
        description=f"a list of names or addresses (at most {MAX_PEERS})",
    )


def _legacy(ctx: Context, given: str | None, action: str) -> Any:
    name = given or ctx.pool.legacy_fe.name
    if name != ctx.pool.legacy_fe.name:
        raise UsageError(f"{action}: 'legacy' must name the legacy FE {ctx.pool.legacy_fe.name}")
    return ctx.pool.legacy_fe


def _utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _old_ttl(evidence: dict[str, Any]) -> int:
    return int((evidence.get("old") or {}).get("ttl") or 0)


def last_cutover(moves: Sequence[Move]) -> dict[str, Any] | None:
    """The evidence of the cutover's move whose old TTL runs out last (None: no
    name was moved): every name the cutover moved (the pool name, sip.<domain>,
    dns.names, the SRV records) may be held by clients at its old value for its
    old TTL. Also what `status` reads to say when decommission may start."""
    moved = []
    for move in moves:
        # a re-run that found the record already moved changed nothing: its
        # evidence has no change time; the move is the entry with the undo record
        evidence = move.evidence
        if isinstance(evidence, dict) and "changed_at" in evidence:
            moved.append(evidence)
    if not moved:
        return None
    return max(moved, key=lambda e: float(e["changed_at"]) + _old_ttl(e))


def settles_at(moves: Sequence[Move]) -> tuple[float, int] | None:
    """(the moment clients can no longer hold the legacy address, the old TTL)."""
    cutover = last_cutover(moves)
    if cutover is None:
        return None
    return float(cutover["changed_at"]) + _old_ttl(cutover), _old_ttl(cutover)


def cutover_settled(ctx: Context) -> dict[str, Any]:
    """When clients can no longer hold the legacy address: the last cutover's change
    time plus the old record's TTL. Raises CheckFailed before then."""
    history = ctx.history
    if history is None:
        return {"checked": False, "why": "no journal (dry run): checked when the run starts"}
    cutover = last_cutover(history.moves_in_place())
    if cutover is None:
        raise CheckFailed(
            "the pool name has not been cut over (no finished dns.replace in the journal): "
            "decommission comes after the cutover"
        )
    old_ttl = _old_ttl(cutover)
    ready = float(cutover["changed_at"]) + old_ttl
    while ctx.options.wait and (left := ready - time.time()) > 0:  # run --wait
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

    Args = LegacyDrainArgs
    params: LegacyDrainArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.legacy = _legacy(ctx, self.params.legacy, self.name)
        sip = ctx.profile.sip_ports
        self.ports = [p for p in (sip.tls, sip.tcp) if p is not None] or list(ctx.profile.ports)
        settings = ctx.pool.decommission
        given = self.params.drain_timeout
        self.wait = float(
            given if given is not None else self.params.wait or settings.drain_timeout
        )
        self.on_timeout = self.params.on_timeout or settings.on_timeout
        peers = self.params.peers
        self.peers = list(peers if peers is not None else settings.peers)

    def targets(self) -> list[str]:
        return [self.legacy.name]

    def describe(self) -> list[Change]:
        return [
            Change(
                "check",
                self.legacy.name,
                f"after the old TTL has passed since the cutover: no client connection left on "
                f"{self.legacy.name} ports {', '.join(map(str, self.ports))}, known peers not "
                f"counted (waits up to {self.wait:.0f} s, then {self._then()})",
            )
        ]

    def _then(self) -> str:
        return "stops its services anyway" if self.on_timeout == "stop" else "fails"

    def _known_peers(self) -> set[str]:
        """The addresses of OCS servers and the LB: connected, but not clients."""
        pool = self.ctx.pool
        lb = pool.load_balancer
        known = {str(fe.address) for fe in pool.front_ends}
        known |= {str(a) for a in lb.snat_addresses}
        known.add(str(lb.vip.ip))
        if lb.backend_address is not None:
            known.add(str(lb.backend_address.ip))
        for host in lb.lb_hosts():
            known.add(str(host.address))
            if isinstance(host, LbPairHost):
                known |= {str(a.ip) for a in host.addresses}
        for peer in self.peers:
            known |= _peer_addresses(self.ctx, peer)
        return known

    def _connected(self) -> list[tuple[str, int]]:
        """(peer address, local port) of each established connection on the SIP ports."""
        host = self.ctx.host(self.legacy.name)
        return [(c.remote, c.local_port) for c in host.connections(self.ports)]

    def apply(self, current: Json) -> Json:
        settled = cutover_settled(self.ctx)
        known = self._known_peers()  # names looked up once, before the wait
        began = time.monotonic()
        deadline = began + self.wait
        seen: list[dict[str, Any]] = []
        while True:
            connected = self._connected()
            clients = sorted(f"{a} (port {p})" for a, p in connected if a not in known)
            peers = len(connected) - len(clients)
            seen.append({"t": time.time(), "clients": len(clients), "peers": peers})
            if not clients:
                break
            left = deadline - time.monotonic()
            if left < 0:
                break
            self.ctx.emit(
                "waiting",
                {
                    "what": f"the clients of {self.legacy.name}",
                    "left": left,
                    "until": "",
                    "line": f"draining {self.legacy.name}: {len(clients)} client session(s) "
                    f"({_listed(clients, 3)}), {peers} peer session(s) not waited for; at most "
                    f"{left:.0f} s more, then it {self._then()}",
                },
            )
            time.sleep(POLL)
        evidence = {
            "legacy": self.legacy.name,
            "ports": self.ports,
            "cutover": settled,
            "peers_known": sorted(known),
            "seen": seen[-MAX_SEEN:],
            "drain_s": round(time.monotonic() - began, 3),
        }
        if not clients:
            return evidence
        addresses = sorted({c.split(" ", 1)[0] for c in clients})
        if self.on_timeout == "fail":
            raise CheckFailed(
                f"{self.legacy.name}: {len(clients)} client connection(s) still open after "
                f"{self.wait:.0f} s (decommission.on_timeout: fail): "
                f"{_listed(clients, MAX_LISTED)}",
                hint="find out who they are (clients with a static server setting? a server to "
                "add to decommission.peers?) or run decommission again later",
            )
        message = (
            f"{len(clients)} client session(s) still open after {self.wait:.0f} s, cut by "
            f"stopping its services (decommission.on_timeout: stop), from "
            f"{_listed(addresses, MAX_LISTED)}"
        )
        self.ctx.emit(
            "findings",
            {
                "title": f"{self.legacy.name}: drain timed out",
                "findings": [
                    {"check": "drain", "ok": True, "proven": True, "info": True, "message": message}
                ],
            },
        )
        return {
            **evidence,
            "timed_out": True,
            "clients_cut": len(clients),
            "client_addresses": addresses[:MAX_LISTED],
            "client_addresses_more": max(0, len(addresses) - MAX_LISTED),
        }


def _listed(items: list[str], at_most: int) -> str:
    shown = ", ".join(items[:at_most])
    return shown + (f" and {len(items) - at_most} more" if len(items) > at_most else "")


def _peer_addresses(ctx: Context, peer: str) -> set[str]:
    """The addresses of one configured peer: itself when an address, else the host
    of the pool file so named, else its A records in the zone. Fails when a name
    gives no address (its connections would be counted as clients unawares)."""
    try:
        return {str(ipaddress.IPv4Address(peer))}
    except ValueError:
        pass
    known = ctx.pool.address_of(peer)
    if known is not None:
        return {str(known)}
    provider = open_provider(ctx)
    try:
        found = provider.lookup(peer, "A").values
    except DnsError as exc:
        raise CheckFailed(
            f"decommission peer {peer}: its address could not be looked up: {exc.message}"
        ) from None
    finally:
        provider.close()
    if not found:
        raise CheckFailed(
            f"decommission peer {peer}: no A record in the zone's DNS, so its connections "
            "could not be told from clients",
            hint="write its address in decommission.peers instead",
        )
    return set(found)


@register
class LegacyStopServices(Action):
    """Stop and disable the legacy FE's OCS services (module docstring)."""

    name = "legacy.stop_services"
    phases = ("decommission",)

    Args = LegacyArgs
    params: LegacyArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.legacy = _legacy(ctx, self.params.legacy, self.name)
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
                f"stop and disable {', '.join(self.services)} (undo: each back to its start "
                "mode, and started again if it ran)",
            )
        ]

    # -- service states ---------------------------------------------------------------
    def _windows(self) -> bool:
        return bool(self.legacy.os == "windows")

    def _states(self, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """name -> {active, stopped, start_mode, enabled}: the OCS services found (or
        `names`, each of which must exist). Fails on any answer it cannot read."""
        host = self.ctx.host(self.legacy.name)
        if self._windows():
            if names is None:  # by display name (with W3SVC and running dependants), as restarts
                profile = self.ctx.profile.services
                found = host.services([], [*profile.windows_display_names, *profile.windows])  # type: ignore[attr-defined]
            else:
                found = host.services(names)  # type: ignore[attr-defined]
            return {s.name: _windows_state(self.legacy.name, s) for s in found}
        read = host.service_states(self.services if names is None else names)  # type: ignore[attr-defined]
        return {name: _linux_state(words) for name, words in read.items()}

    def read(self) -> Json:
        return self._states()

    def diff(self, current: Json) -> list[Change]:
        if all(s["stopped"] and _disabled(s["start_mode"]) for s in current.values()):
            return []
        return self.describe()

    def undo_record(self, current: Json) -> Json:
        # each service's start mode as the host says it (Auto/Manual/Disabled, enabled/disabled)
        return {"host": self.legacy.name, "services": current}

    def apply(self, current: Json) -> Json:
        windows = self._windows()
        settable = _WIN_MODES if windows else _LINUX_MODES
        odd = [
            f"{n} ({s['start_mode']})"
            for n, s in current.items()
            if s["start_mode"] not in settable
        ]
        if odd:  # nothing changed yet: a start mode the undo could not put back exactly
            raise CheckFailed(
                f"{self.legacy.name}: cannot put back the start mode of {', '.join(odd)}: "
                f"decommission changes only services whose start mode is {' or '.join(settable)}",
                hint="set those services' start mode by hand, or stop them by hand",
            )
        host = self.ctx.host(self.legacy.name)
        if windows:
            # dependants first: Stop-Service -Force stops them with what they depend on, and
            # a stopped one is no longer found (by a run resumed after a crash) to disable
            found = host.services(list(current))  # type: ignore[attr-defined]
            for name in [n for n in stop_order(found) if n in current]:
                host.set_service(name, "Disabled", running=False)  # type: ignore[attr-defined]
        else:
            for name in current:
                host.control_services("stop", [name])  # type: ignore[attr-defined]
                host.control_services("disable", [name])  # type: ignore[attr-defined]
        return {"host": self.legacy.name, "before": current}

    def verify(self, evidence: Json) -> Json:
        states = self._states(list(evidence["before"]))
        wrong = [
            n
            for n in evidence["before"]
            if n not in states or not states[n]["stopped"] or not _disabled(states[n]["start_mode"])
        ]
        if wrong:
            raise StepFailed(
                f"{self.legacy.name}: not stopped and disabled after the decommission: "
                + ", ".join(wrong)
            )
        return {**evidence, "after": states}

    def check_undo(self, undo: Json) -> None:
        rec = shape.record(undo)
        shape.same(rec, "host", self.legacy.name, "the legacy front end")
        services = shape.obj(rec, "services")
        for name, state in services.items():
            if not name or len(name) > shape.MAX_TEXT or not name.isprintable():
                raise UndoRecordError("'services' names a service with an unusable name")
            state = shape.within("services", shape.record, state)
            for key in ("active", "enabled"):
                shape.within("services", lambda s, k=key: shape.flag(s, k), state)
            shape.within("services", lambda s: shape.text(s, "start_mode", optional=True), state)

    def revert(self, undo: Json) -> Json:
        windows = self._windows()
        recorded = _recorded(undo, windows)
        host = self.ctx.host(self.legacy.name)
        if windows:
            # what each depends on first: a start starts its dependencies, never a disabled one
            found = host.services(list(recorded))  # type: ignore[attr-defined]
            order = [n for n in reversed(stop_order(found)) if n in recorded]
            for name in order:
                mode, active, _ = recorded[name]
                host.set_service(name, mode, running=active)  # type: ignore[attr-defined]
        else:
            for name, (mode, active, _) in recorded.items():
                host.control_services("enable" if mode == "enabled" else "disable", [name])  # type: ignore[attr-defined]
                host.control_services("start" if active else "stop", [name])  # type: ignore[attr-defined]
        return {"host": undo["host"], "restored": undo["services"]}

    def verify_reverted(self, undo: Json) -> Json:
        """Each service's start mode is the recorded one and it runs (or not) as it did."""
        recorded = _recorded(undo, self._windows())
        states = self._states(list(recorded))
        wrong = []
        for name, (mode, active, exact) in recorded.items():
            now = states.get(name)
            if now is None:
                wrong.append(f"{name} (not found)")
                continue
            if exact and now["start_mode"] != mode:
                wrong.append(f"{name} (start mode {now['start_mode']}, was {mode})")
            elif not exact and now["enabled"] != (mode in ("Auto", "enabled")):
                wrong.append(f"{name} (start mode {now['start_mode']})")
            if not (now["active"] if active else now["stopped"]):
                wrong.append(f"{name} ({'not running' if active else 'not stopped'})")
        if wrong:
            raise StepFailed(f"{undo['host']}: not as before the decommission: {', '.join(wrong)}")
        return {"host": undo["host"], "services": states}


#: the start modes the action sets and can put back exactly
_WIN_MODES = ("Auto", "Manual", "Disabled")  # Win32_Service.StartMode
_LINUX_MODES = ("enabled", "disabled")  # systemctl is-enabled
#: ServiceControllerStatus names (an enum's names: the same in every language)
_WIN_STATUSES = (
    "Running", "Stopped", "StartPending", "StopPending", "Paused", "PausePending",
    "ContinuePending",
)  # fmt: skip


def _disabled(start_mode: str) -> bool:
    return start_mode.lower() == "disabled"


def _windows_state(host: str, service: ServiceInfo) -> dict[str, Any]:
    # WMI's StartMode words and the enum's names are not translated: anything else
    # (an empty mode when WMI did not answer) is an answer not understood
    if service.status not in _WIN_STATUSES or service.start_mode not in (
        *_WIN_MODES,
        "Boot",
        "System",
    ):
        raise StepFailed(f"{host}: unreadable state of service {service.name}")
    return {
        "active": service.status == "Running",
        "stopped": service.status == "Stopped",
        "start_mode": service.start_mode,
        "enabled": service.start_mode == "Auto",
    }


def _linux_state(words: Mapping[str, str]) -> dict[str, Any]:
    active, mode = words["active"], words["start_mode"]
    return {
        "active": ACTIVE_WORDS[active],
        "stopped": active in ("inactive", "failed"),
        "start_mode": mode,
        "enabled": START_MODE_WORDS[mode],
    }


def _recorded(undo: Json, windows: bool) -> dict[str, tuple[str, bool, bool]]:
    """name -> (start mode to put back, whether it ran, whether the mode is exact).
    A record of an earlier version holds no start mode on Linux, only `enabled`
    (the same two modes); on Windows it always held Win32_Service's StartMode."""
    out: dict[str, tuple[str, bool, bool]] = {}
    for name, state in undo["services"].items():
        if not isinstance(state, dict):
            raise StepFailed(f"{undo['host']}: the undo record of {name} is not a service state")
        active = state.get("active") is True
        mode = state.get("start_mode")
        exact = isinstance(mode, str)
        if not isinstance(mode, str):
            enabled = state.get("enabled") is True
            mode = (
                ("Auto" if enabled else "Manual")
                if windows
                else ("enabled" if enabled else "disabled")
            )
        if mode not in (_WIN_MODES if windows else _LINUX_MODES):
            raise StepFailed(
                f"{undo['host']}: the undo record holds no start mode to put back for {name}"
            )
        out[name] = (mode, active, exact)
    return out


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
