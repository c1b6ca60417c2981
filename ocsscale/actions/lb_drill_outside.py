"""The failover drill behind an appliance: when the member left, and came back, seen from outside.

An appliance driven by hand (the manual driver) has no view the tool can read,
so detection is measured on the drill's own client load through the VIP:

- down: from the fault on, requests are read in the order they were sent. A
  failure, or an answer from the failed front end itself, means the appliance
  still sends to it: the count starts again with the requests sent after that
  was seen. A request still under way holds the count (a request to a cut link
  ends only at its timeout, and may yet fail). `run` requests in a row answered
  by the other front ends show the appliance has taken the member out.
- up: from the restore on, a request on each of the load's ports answered by
  the member again shows the appliance has put it back.

An answer from the operator ("the appliance shows it down", or "up"), asked
without waiting (Operator.ask_nowait), ends the wait too, whichever comes first.
An answer that names no server proves nothing: it counts as neither.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..probes.load_report import Outcome

#: requests kept waiting to be read in order; far above a drill's rate x timeout
MAX_KEPT = 5_000


class OutsideView:
    """Fed by the drill's LoadRunner (`observe`); read by the drill's `_wait`."""

    def __init__(self, fe: str, issued: Callable[[], int]) -> None:
        self.fe = fe
        self._issued = issued  # the number the next request will get
        self._lock = threading.Lock()
        self._ended: dict[int, Outcome] = {}

    def observe(self, seq: int, outcome: Outcome) -> None:
        with self._lock:
            if len(self._ended) < MAX_KEPT:
                self._ended[seq] = outcome

    def _take(self, seq: int) -> Outcome | None:
        with self._lock:
            return self._ended.pop(seq, None)

    def _drop_before(self, seq: int) -> None:
        with self._lock:
            for old in [s for s in self._ended if s < seq]:
                del self._ended[old]

    def down(self, run: int) -> DownWatch:
        """Start watching for the member taken out, from the next request sent."""
        start = self._issued()
        self._drop_before(start)
        return DownWatch(self, start, run)

    def up(self, targets: list[str]) -> UpWatch:
        """Start watching for the member back on every target, from the next request."""
        start = self._issued()
        self._drop_before(start)
        return UpWatch(self, start, targets)


class DownWatch:
    def __init__(self, view: OutsideView, start: int, run: int) -> None:
        self.view, self.next, self.run = view, start, run
        self.count = 0  # answered by another front end, in a row
        self.restarts = 0  # failures or the member's own answers seen
        self.unidentified = 0
        self.first_sent: int | None = None  # the run's first request

    def poll(self) -> bool:
        """Read what has ended, in sending order; True once the run is complete."""
        while self.count < self.run:
            outcome = self.view._take(self.next)
            if outcome is None:
                return False  # not ended yet (or not sent yet): the order waits for it
            self.next += 1
            if outcome.ok and outcome.server not in (None, self.view.fe):
                if self.count == 0:
                    self.first_sent = self.next - 1
                self.count += 1
                continue
            if outcome.ok and outcome.server is None:
                self.unidentified += 1
            self.restarts += 1
            self.count = 0
            # only what is sent from now on: what was sent before may still be on its way
            # to the member
            restart = self.view._issued()
            self.view._drop_before(restart)
            self.next = max(self.next, restart)
        return True

    def evidence(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "in_a_row": self.count,
            "restarts": self.restarts,
            "unidentified": self.unidentified,
        }


class UpWatch:
    def __init__(self, view: OutsideView, start: int, targets: list[str]) -> None:
        self.view, self.start = view, start
        self.waiting = set(targets)
        self.seen: dict[str, float] = {}

    def poll(self) -> bool:
        with self.view._lock:
            ended = [self.view._ended.pop(s) for s in list(self.view._ended) if s >= self.start]
        for outcome in ended:
            if outcome.ok and outcome.server == self.view.fe and outcome.target in self.waiting:
                self.waiting.discard(outcome.target)
                self.seen[outcome.target] = time.time()
        return not self.waiting

    def evidence(self) -> dict[str, Any]:
        return {"answered_by_member": sorted(self.seen), "not_yet": sorted(self.waiting)}
