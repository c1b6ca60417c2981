"""Server runtime state and weighted least connections.

The choice follows HAProxy's leastconn: the eligible server with the lowest
(active + 1) / weight wins. Two refinements keep weights honest when connections
are short-lived: idle servers (no active connection) are taken first, and ties
(including among idle servers) go by a weighted rotation (stride scheduling:
each pick advances the server's pass by 1/weight; a server that was away rejoins
at the current pass, so it gets no burst to "catch up"). Active
connections are counted per server across every port of the farm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .proxy import Session

AdminState = Literal["ready", "drain", "maint"]


class ServerRuntime:
    """One server as the engine sees it now (settings plus live counters)."""

    __slots__ = (
        "name",
        "address",
        "weight",
        "admin",
        "file_admin",
        "healthy",
        "check_reason",
        "active",
        "served",
        "per_port",
        "sessions",
        "removed",
        "last_change",
        "vpass",
    )

    def __init__(self, name: str, address: str, weight: int, admin: AdminState) -> None:
        self.name = name
        self.address = address
        self.weight = weight
        self.admin: AdminState = admin
        # The farm file's own state, to tell an edited file from a runtime override.
        self.file_admin: AdminState = admin
        # HAProxy's "init-state up": a server starts up and the first failed check
        # round takes it down, so a fresh engine serves immediately.
        self.healthy = True
        self.check_reason = "not checked yet"
        self.active = 0
        self.served = 0
        self.per_port: dict[int, int] = {}
        self.sessions: set[Session] = set()
        self.removed = False
        self.last_change = 0.0
        self.vpass = 0.0

    @property
    def eligible(self) -> bool:
        return self.admin == "ready" and self.healthy and self.weight > 0 and not self.removed

    @property
    def state(self) -> str:
        """What an operator wants to read: admin state first, then health."""
        if self.removed:
            return "removed"
        if self.admin != "ready":
            return self.admin
        return "up" if self.healthy else "down"

    def opened(self, port: int) -> None:
        self.active += 1
        self.served += 1
        self.per_port[port] = self.per_port.get(port, 0) + 1

    def closed(self, port: int) -> None:
        self.active -= 1
        self.per_port[port] -= 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "weight": self.weight,
            "admin": self.admin,
            "healthy": self.healthy,
            "state": self.state,
            "check": self.check_reason,
            "active": self.active,
            "served": self.served,
            "per_port": {str(p): n for p, n in sorted(self.per_port.items())},
        }


class Balancer:
    def __init__(self) -> None:
        self.servers: dict[str, ServerRuntime] = {}
        self.vclock = 0.0

    def pick(self, exclude: ServerRuntime | None = None) -> ServerRuntime | None:
        best: ServerRuntime | None = None
        best_key: tuple[float, float] = (0.0, 0.0)
        clock = self.vclock
        for s in self.servers.values():
            if not s.eligible or s is exclude:
                continue
            load = (s.active + 1) / s.weight if s.active else 0.0
            key = (load, s.vpass if s.vpass > clock else clock)
            if best is None or key < best_key:
                best, best_key = s, key
        if best is not None:
            self.vclock = best_key[1]
            best.vpass = best_key[1] + 1.0 / best.weight
        return best

    def why_none(self) -> str:
        """Why no server is eligible, for the event that refuses a client."""
        if not any(not s.removed for s in self.servers.values()):
            return "the farm has no servers"
        parts = []
        for s in self.servers.values():
            if s.removed:
                continue
            if s.state == "down":
                parts.append(f"{s.name} down: {s.check_reason}")
            elif s.weight == 0 and s.state == "up":
                parts.append(f"{s.name} weight 0")
            else:
                parts.append(f"{s.name} {s.state}")
        return "; ".join(parts)

    @property
    def active_total(self) -> int:
        return sum(s.active for s in self.servers.values())
