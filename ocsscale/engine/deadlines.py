"""Exact deadlines for many sessions on one loop timer.

A session that half-closes must end `timeouts.half_close` after the first FIN
unless the other side closes too. Nearly every session half-closes (each side's
FIN arrives separately), so a loop timer per session was armed and cancelled for
almost every connection. Here every deadline of the same length goes into one
insertion-ordered dict, whose order is therefore also the order of the
deadlines; one `call_at` is armed for the earliest head. Adding and cancelling
are a dict insert and delete; the timer is not re-armed on cancel (it wakes once,
finds nothing due, and re-arms for the new head). Another length (a reload that
changes the timeout) gets its own queue, so a shorter deadline never waits
behind a longer one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable

CLOCK_SLACK = 0.001


class Deadlines:
    """Calls `expire(key)` once `delay` seconds have passed since `add(key, delay)`,
    unless `cancel(key)` came first."""

    def __init__(self, loop: asyncio.AbstractEventLoop, expire: Callable[[Hashable], None]) -> None:
        self.loop = loop
        self.expire = expire
        self.queues: dict[float, dict[Hashable, float]] = {}
        self.where: dict[Hashable, float] = {}  # key -> the delay (queue) it waits in
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0

    def __len__(self) -> int:
        return len(self.where)

    def add(self, key: Hashable, delay: float) -> None:
        if key in self.where:
            return
        when = self.loop.time() + delay
        queue = self.queues.get(delay)
        if queue is None:
            queue = self.queues[delay] = {}
        queue[key] = when
        self.where[key] = delay
        if self.timer is None or when < self.timer_at:
            self._arm(when)

    def cancel(self, key: Hashable) -> None:
        delay = self.where.pop(key, None)
        if delay is not None:
            del self.queues[delay][key]

    def _arm(self, when: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = when
        self.timer = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self.timer = None
        # uvloop's clock and timers count whole milliseconds: what is due within
        # one is due now (asyncio's own loop allows its clock resolution the same way).
        now = self.loop.time() + CLOCK_SLACK
        due: list[Hashable] = []
        nxt: float | None = None
        for delay, queue in list(self.queues.items()):
            while queue:
                key = next(iter(queue))
                when = queue[key]
                if when > now:
                    nxt = when if nxt is None or when < nxt else nxt
                    break
                del queue[key]
                del self.where[key]
                due.append(key)
            if not queue and len(self.queues) > 1:
                del self.queues[delay]  # an old length nobody waits in any more
        if nxt is not None:
            self._arm(nxt)
        for key in due:
            self.expire(key)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queues.clear()
        self.where.clear()
