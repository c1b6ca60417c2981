"""Connection limits (HAProxy's `maxconn`): at the limit the engine stops accepting,
and clients wait in the kernel's listen queue instead of being closed.

Every session holds two descriptors (client side and server side). The process
limit defaults to what RLIMIT_NOFILE leaves after a reserve for what must never
run out of descriptors: the process itself (event loop, logs, worker channels),
the listening sockets, the admin API (at most ADMIN_MAXCONN connections at once)
and one round of health checks for every server. So the sessions alone can never
exhaust the engine, and its own exhaustion never fails a check or the admin API.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .farm import Farm

# Descriptors of the process itself: stdio, the event loop's epoll, eventfd and
# wake-up pipes, signal sockets, log files; an idle engine holds about 16.
FD_BASE_RESERVE = 32
# Admin API connections served at once; more wait in the admin socket's queue.
ADMIN_MAXCONN = 16
FDS_PER_SESSION = 2
UNLIMITED = 1 << 62


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one, as HAProxy sets its own
    ulimit-n; returns the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError):
        return soft
    return hard


def fd_reserve(farm: Farm, role: str) -> int:
    """Descriptors kept out of the sessions' reach in a process of `role`."""
    reserve = FD_BASE_RESERVE
    if role != "master":
        reserve += len(farm.vip) * len(farm.ports)  # listening sockets
    if role != "worker":
        reserve += ADMIN_MAXCONN + 1  # admin connections and the admin socket
        reserve += len(farm.servers) * len(farm.health.ports)  # one check round each
    if role == "master":
        reserve += farm.workers  # one channel per worker
    elif role == "worker":
        reserve += 1  # the channel to the master
    return reserve


def process_maxconn(farm: Farm, role: str) -> tuple[int, str]:
    """The process-wide limit in force and a short note on where it comes from."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    reserve = fd_reserve(farm, role)
    if soft == resource.RLIM_INFINITY:
        fits = UNLIMITED
    else:
        fits = max(1, (soft - reserve) // FDS_PER_SESSION)
    if farm.maxconn is None:
        return fits, f"RLIMIT_NOFILE {soft} minus a reserve of {reserve}, 2 per session"
    if farm.maxconn > fits:
        return farm.maxconn, (
            f"farm file; more than RLIMIT_NOFILE {soft} allows ({fits} after a reserve of"
            f" {reserve}): the engine may run out of descriptors"
        )
    return farm.maxconn, "farm file"


class Gate:
    """A count of open connections against a limit. A listener's gate has the
    process gate as parent, so a connection counts against both. Acceptors that
    stopped at a full gate wait in `waiters` until a connection ends."""

    __slots__ = ("name", "limit", "active", "parent", "waiters")

    def __init__(self, name: str, limit: int, parent: Gate | None = None) -> None:
        self.name = name
        self.limit = limit
        self.active = 0
        self.parent = parent
        self.waiters: list[Callable[[], None]] = []

    def full_gate(self) -> Gate | None:
        """The gate (this one or its parent) that is at its limit, if any."""
        if self.active >= self.limit:
            return self
        return self.parent.full_gate() if self.parent is not None else None

    def take(self) -> Ticket:
        gate: Gate | None = self
        while gate is not None:
            gate.active += 1
            gate = gate.parent
        return Ticket(self)

    def set_limit(self, limit: int) -> None:
        self.limit = limit
        self._wake()

    def _release(self) -> None:
        gate: Gate | None = self
        while gate is not None:
            gate.active -= 1
            gate._wake()
            gate = gate.parent

    def _wake(self) -> None:
        if self.waiters and self.active < self.limit:
            waiters, self.waiters = self.waiters, []
            for resume in waiters:
                resume()


class Ticket:
    """One connection's place in its gates; released once, however it ends."""

    __slots__ = ("gate",)

    def __init__(self, gate: Gate) -> None:
        self.gate: Gate | None = gate

    def release(self) -> None:
        gate, self.gate = self.gate, None
        if gate is not None:
            gate._release()
