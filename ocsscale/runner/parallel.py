"""Which steps may run at the same time, and running them on bounded threads.

A *wave* is a run of consecutive items (plan steps, or journal entries in a
rollback) that came from one playbook entry (`foreach`) and whose action says
it may run in parallel (`Action.parallel`). Within a wave, items that share a
host form one *lane* and run in order; lanes run side by side, at most
`forks` at once (Ansible's word for the same setting). Anything else is a
wave of one item, so the order the playbook gives is kept wherever it matters:
one front end pinned at a time, the farm before its read-back, and so on.

Every item still writes its own journal record before its change (the journal
is safe to share between threads), so a crash mid-wave resumes as a crash
mid-step does. A Ctrl-C lets the items already under way finish (their undo
records are written; half a change is what resume is for), starts no new one,
and is then raised; a second Ctrl-C does not wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

#: a pool of 16 front ends and a few clients pins, flushes and probes at once
DEFAULT_FORKS = 16
MAX_FORKS = 64


@dataclass(frozen=True)
class Wave(Generic[T]):
    lanes: tuple[tuple[T, ...], ...]

    @property
    def items(self) -> list[T]:
        return [item for lane in self.lanes for item in lane]


def lanes(items: Sequence[T], hosts_of: Callable[[T], Iterable[str]]) -> list[list[T]]:
    """Items sharing a host (directly or through others) in one lane, in their order."""
    found: list[tuple[set[str], list[T]]] = []
    for item in items:
        hosts = set(hosts_of(item))
        touching = [lane for lane in found if lane[0] & hosts] if hosts else []
        if not touching:
            found.append((hosts, [item]))
            continue
        first = touching[0]
        for other in touching[1:]:
            first[0].update(other[0])
            first[1].extend(other[1])
            found.remove(other)
        first[0].update(hosts)
        first[1].append(item)
    return [lane for _, lane in found]


def waves(
    items: Sequence[T],
    key_of: Callable[[T], Hashable | None],
    hosts_of: Callable[[T], Iterable[str]],
) -> list[Wave[T]]:
    """Consecutive items with the same key form a wave; `key_of` gives None for
    an item that must run alone (its action is not parallel)."""
    out: list[Wave[T]] = []
    run: list[T] = []
    run_key: Hashable | None = None

    def flush() -> None:
        if run:
            out.append(Wave(tuple(tuple(lane) for lane in lanes(run, hosts_of))))
            run.clear()

    for item in items:
        key = key_of(item)
        if key is None:
            flush()
            out.append(Wave(((item,),)))
            continue
        if key != run_key:
            flush()
            run_key = key
        run.append(item)
    flush()
    return out


class Stop:
    """Set once something failed or the operator pressed Ctrl-C: no lane starts
    another item (items already under way finish)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()


def run_lanes(
    wave: Wave[T],
    run_lane: Callable[[tuple[T, ...], Stop], list[BaseException]],
    forks: int,
) -> list[BaseException]:
    """Run the wave's lanes, at most `forks` at once, and return the failures
    every lane returned, in lane order. A lane calls `stop.set()` when nothing
    more should start (a change failed); a lane that raises stops the others
    the same way, and its exception is raised once every lane has ended. A
    wave of one lane runs on the calling thread."""
    stop = Stop()
    if len(wave.lanes) == 1 or forks <= 1:
        failures: list[BaseException] = []
        for lane in wave.lanes:
            if stop:
                break
            failures += run_lane(lane, stop)
        return failures
    pool = ThreadPoolExecutor(max_workers=min(forks, len(wave.lanes)), thread_name_prefix="lane")
    futures: list[Future[list[BaseException]]] = []
    try:
        futures = [pool.submit(run_lane, lane, stop) for lane in wave.lanes]
        pending: set[Future[list[BaseException]]] = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in done):
                stop.set()
    except BaseException:
        # Ctrl-C on this thread: start nothing more; what is under way finishes,
        # so its journal record is whole (a second Ctrl-C ends the wait)
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    raised = [f.exception() for f in futures if f.exception() is not None]
    if raised:
        # an interrupt first, then the first error
        raise next((e for e in raised if not isinstance(e, Exception)), raised[0])  # type: ignore[misc]
    return [failure for future in futures for failure in future.result()]
