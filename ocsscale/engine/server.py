"""The engine: listeners, servers, health, reload. One process, or one worker of many."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from typing import Any, Literal

from ..errors import OcsscaleError
from .accept import Acceptor
from .balancer import AdminState, Balancer, ServerRuntime
from .deadlines import Deadlines
from .events import EventLog, log
from .farm import Farm, Timeouts
from .health import HealthMonitor
from .maxconn import UNLIMITED, Gate, Ticket, process_maxconn
from .proxy import IDLE_TICKS, Route, Session, expire_half_closed
from .snat import SnatPool

LISTEN_BACKLOG = 4096
STOP_POLL = 0.05  # how often a stopping engine looks whether its sessions are done
Role = Literal["single", "worker", "master"]


class EngineError(OcsscaleError):
    """An expected failure (port in use, unknown server) with a message for the
    operator: exit 1, rendered as every error of the tool (cli/render.py)."""


def _listen_socket(vip: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in vip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((vip, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as err:
        sock.close()
        raise EngineError(f"cannot listen on {vip}:{port}: {err.strerror or err}") from None
    return sock


class Engine:
    """Holds a farm's runtime. `role` decides which parts run in this process:
    single = everything; worker = listeners and data path (state comes from the
    master); master = health checks and admin state, no listeners."""

    def __init__(self, farm: Farm, role: Role = "single") -> None:
        self.farm = farm
        self.role = role
        self.loop = asyncio.get_running_loop()
        self.balancer = Balancer()
        self.snat = SnatPool(farm.snat.addresses)
        self.events = EventLog()
        self.timeouts: Timeouts = farm.timeouts
        self.idle_tick = farm.timeouts.idle / IDLE_TICKS
        self.idle_closed = 0
        # timeouts.half_close of every session, on one loop timer (deadlines.py).
        self.half_close = Deadlines(self.loop, expire_half_closed)  # type: ignore[arg-type]
        self.listeners: dict[tuple[str, int], tuple[Route, Acceptor]] = {}
        # maxconn: the process gate, and one per listen port (over all VIPs).
        self.gate = Gate("process", UNLIMITED)
        self.gate_source = ""
        self.port_gates: dict[int, Gate] = {}
        self.health = HealthMonitor(
            farm.health, self._check_source, self._health_changed, self._check_skipped
        )
        self.reloads = 0
        self.hard_stop = asyncio.Event()  # a second stop signal: no more grace
        self._sweeper: asyncio.Task[None] | None = None
        # Called after any server state change (the master pushes it to workers).
        self.on_servers_changed: list[Any] = []

    # -- start / stop -----------------------------------------------------------
    async def start(self) -> None:
        self._apply_servers(self.farm, first=True)
        self._apply_limits(self.farm)
        if self.role != "master":
            await self._apply_listeners(self.farm)
            self._sweeper = self.loop.create_task(self._sweep_idle())
        if self.role != "worker":
            for server in self.balancer.servers.values():
                self.health.watch(server)
        # Everything alive now lives as long as the process (farm, modules, pydantic
        # models): out of the cyclic collector's scans, which the per-connection
        # allocations trigger many times a second.
        gc.collect()
        gc.freeze()
        self.events.emit(
            "started",
            f"farm {self.farm.farm} serving {len(self.listeners)} listeners",
            role=self.role,
        )

    async def _sweep_idle(self) -> None:
        while True:
            await asyncio.sleep(self.idle_tick)
            for server in list(self.balancer.servers.values()):
                for session in list(server.sessions):
                    session.idle_tick()

    async def stop(self, grace: float = 0.0) -> None:
        """HAProxy's soft stop: stop accepting (new clients are refused), let the
        established sessions finish for up to `grace` seconds (or until
        `hard_stop` is set), then reset what is left, so that a transfer cut short
        never looks complete to its client."""
        self.health.stop()
        for _route, srv in self.listeners.values():
            srv.close()
        self.listeners.clear()
        if self.gate.active and grace > 0:
            self.events.emit(
                "stopping",
                f"stopped accepting; {self.gate.active} sessions may finish within"
                f" {grace:g}s (timeouts.hard_stop_after)",
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    while self.gate.active and not self.hard_stop.is_set():
                        await asyncio.sleep(STOP_POLL)
        if self._sweeper is not None:
            self._sweeper.cancel()
        sessions = [x for s in self.balancer.servers.values() for x in s.sessions]
        if sessions:
            self.events.emit(
                "hard-stop", f"{len(sessions)} sessions still open at stop; reset (not closed)"
            )
        for session in sessions:
            session.reset()
        self.half_close.close()

    # -- limits and listeners ---------------------------------------------------
    def _apply_limits(self, farm: Farm) -> None:
        """maxconn for the process and each port; a lower limit never closes a
        session, it only holds new clients in the listen queue until one ends."""
        limit, source = process_maxconn(farm, self.role)
        if (limit, source) != (self.gate.limit, self.gate_source):
            self.gate_source = source
            self.gate.set_limit(limit)
            if self.role != "master":
                level = logging.WARNING if "run out" in source else logging.INFO
                log.log(level, f"maxconn {limit} per process ({source})")
        for pm in farm.ports:
            self._port_gate(pm.port).set_limit(pm.maxconn or UNLIMITED)
        ports = {pm.port for pm in farm.ports}
        # A removed port's gate lives on in its sessions' tickets.
        self.port_gates = {p: g for p, g in self.port_gates.items() if p in ports}

    def _port_gate(self, port: int) -> Gate:
        gate = self.port_gates.get(port)
        if gate is None:
            gate = self.port_gates[port] = Gate(f"port {port}", UNLIMITED, self.gate)
        return gate

    async def _apply_listeners(self, farm: Farm) -> None:
        wanted = {(vip, pm.port): pm.target for vip in farm.vip for pm in farm.ports}
        reuse_port = farm.workers > 1
        new: dict[tuple[str, int], tuple[Route, Acceptor]] = {}
        try:
            for (vip, port), target in wanted.items():
                if (vip, port) in self.listeners:
                    continue
                sock = _listen_socket(vip, port, reuse_port)
                route = Route(vip, port, target)

                def factory(ticket: Ticket, r: Route = route) -> Session:
                    return Session(self, r, ticket)

                gate = self._port_gate(port)
                srv = Acceptor(self.loop, sock, factory, self.events, f"{vip}:{port}", gate)
                new[(vip, port)] = (route, srv)
        except BaseException:
            # All or nothing: a reload that cannot bind every port changes nothing.
            for _route, srv in new.values():
                srv.close()
            kept = {port for _vip, port in self.listeners}
            self.port_gates = {p: g for p, g in self.port_gates.items() if p in kept}
            raise
        for key, (route, srv) in list(self.listeners.items()):
            if key not in wanted:
                srv.close()  # stops accepting; established sessions are kept
                del self.listeners[key]
            else:
                route.target = wanted[key]
        self.listeners.update(new)

    # -- servers ----------------------------------------------------------------
    def _apply_servers(self, farm: Farm, first: bool = False) -> list[str]:
        changes: list[str] = []
        current = self.balancer.servers
        for spec in farm.servers:
            s = current.get(spec.name)
            if s is None or s.removed:
                current[spec.name] = ServerRuntime(spec.name, spec.address, spec.weight, spec.state)
                if not first:
                    changes.append(f"added {spec.name}")
                continue
            if s.address != spec.address:
                s.address = spec.address
                s.healthy, s.check_reason = True, "not checked yet"
                changes.append(f"{spec.name} address -> {spec.address}")
            if s.weight != spec.weight:
                changes.append(f"{spec.name} weight {s.weight} -> {spec.weight}")
                s.weight = spec.weight
            # A runtime admin change survives a reload unless the file's state changed.
            if s.file_admin != spec.state:
                s.file_admin = spec.state
                if s.admin != spec.state:
                    changes.append(f"{spec.name} {s.admin} -> {spec.state} (farm file)")
                    self._set_admin_state(s, spec.state, reason="farm file changed")
        names = {spec.name for spec in farm.servers}
        for name, s in list(current.items()):
            if name not in names and not s.removed:
                s.removed = True
                changes.append(f"removed {name}")
                self.health.unwatch(name)
            if s.removed and not s.sessions:
                del current[name]
        return changes

    def _check_source(self, server_address: str) -> str | None:
        return self.snat.first(server_address)

    def _health_changed(self, server: ServerRuntime, up: bool, reason: str) -> None:
        server.healthy = up
        server.last_change = self.loop.time()
        kind = "server-up" if up else "server-down"
        self.events.emit(
            kind, f"{server.name} is {'up' if up else 'down'}: {reason}", server=server.name
        )
        self._notify()

    def _check_skipped(self, server: ServerRuntime, reason: str) -> None:
        self.events.emit_coalesced(
            f"skip:{server.name}",
            "check-skipped",
            f"{server.name}: check round not counted: {reason}",
            server=server.name,
        )

    def _notify(self) -> None:
        for callback in self.on_servers_changed:
            callback()

    def _set_admin_state(self, s: ServerRuntime, state: AdminState, reason: str) -> None:
        was = s.admin
        s.admin = state
        if self.role != "worker":
            if state == "maint":
                self.health.unwatch(s.name)
            elif was == "maint":
                # Back from maintenance: prove health before taking traffic again.
                s.healthy = not self.farm.health.ports
                s.check_reason = "leaving maintenance"
                self.health.watch(s)
        self.events.emit("admin-state", f"{s.name}: {was} -> {state} ({reason})", server=s.name)

    def server(self, name: str) -> ServerRuntime:
        s = self.balancer.servers.get(name)
        if s is None or s.removed:
            raise EngineError(f"no server named {name!r} in farm {self.farm.farm}")
        return s

    def set_admin(self, name: str, state: AdminState, shutdown: bool = False) -> dict[str, Any]:
        s = self.server(name)
        if s.admin != state:
            self._set_admin_state(s, state, reason="admin API")
        closed = self.shutdown_sessions(name) if shutdown else 0
        self._notify()
        return {"server": s.as_dict(), "sessions_closed": closed}

    def shutdown_sessions(self, name: str) -> int:
        s = self.balancer.servers.get(name)
        sessions = list(s.sessions) if s else []
        for session in sessions:
            session.reset()
        if sessions:
            self.events.emit(
                "sessions-shutdown", f"closed {len(sessions)} sessions of {name}", server=name
            )
        return len(sessions)

    # -- reload -----------------------------------------------------------------
    async def reload(self, farm: Farm) -> dict[str, Any]:
        old = self.farm
        if farm.farm != old.farm:
            raise EngineError(f"farm name changed ({old.farm} -> {farm.farm}); restart instead")
        if self.role != "master":
            await self._apply_listeners(farm)
        self._apply_limits(farm)
        self.farm = farm
        self.timeouts = farm.timeouts
        self.idle_tick = farm.timeouts.idle / IDLE_TICKS
        self.snat.addresses = list(farm.snat.addresses)
        for a in farm.snat.addresses:
            self.snat.in_use.setdefault(a, 0)
        if farm.health != old.health and self.role != "worker":
            self.health.stop()
            self.health.settings = farm.health
        changes = self._apply_servers(farm)
        if self.role != "worker":
            for s in self.balancer.servers.values():
                if s.name not in self.health.tasks or any(s.name in c for c in changes):
                    self.health.watch(s)
        self.reloads += 1
        self._notify()
        summary = {"listeners": sorted(f"{v}:{p}" for v, p in self.listeners), "changes": changes}
        self.events.emit("reloaded", f"farm reloaded: {', '.join(changes) or 'no server changes'}")
        return summary

    # -- views ------------------------------------------------------------------
    def buffered_bytes(self) -> int:
        return sum(
            session.buffered() for s in self.balancer.servers.values() for session in s.sessions
        )

    def listener_view(self) -> list[dict[str, Any]]:
        if self.role == "master":  # workers own the sockets; show what they serve
            routes = [Route(v, pm.port, pm.target) for v in self.farm.vip for pm in self.farm.ports]
        else:
            routes = [r for r, _ in self.listeners.values()]
        return [
            {"vip": r.vip, "port": r.port, "backend_port": r.target}
            for r in sorted(routes, key=lambda r: (r.vip, r.port))
        ]

    def maxconn_view(self) -> dict[str, Any]:
        def limit(gate: Gate) -> int | None:
            return None if gate.limit >= UNLIMITED else gate.limit

        return {
            "limit": limit(self.gate),
            "source": self.gate_source,
            "sessions": self.gate.active,
            "ports": {
                str(p): {"limit": limit(g), "sessions": g.active}
                for p, g in sorted(self.port_gates.items())
            },
        }

    def status(self) -> dict[str, Any]:
        return {
            "farm": self.farm.farm,
            "role": self.role,
            "workers": self.farm.workers,
            "listeners": self.listener_view(),
            "servers": [s.as_dict() for s in self.balancer.servers.values()],
            "active": self.balancer.active_total,
            "snat": {**self.snat.as_dict(), "exhausted": self.snat.exhausted},
            "buffered_bytes": self.buffered_bytes(),
            "idle_closed": self.idle_closed,
            "maxconn": self.maxconn_view(),
            "reloads": self.reloads,
            "check_results": {f"{n}:{r}": c for (n, r), c in self.health.results.items()},
            # the settings the checker runs with (a farm's health, read back by ocsscale)
            "health": self.health.settings.model_dump(),
            "event_counts": dict(self.events.counts),
        }
