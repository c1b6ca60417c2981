"""Signals during a run: an interrupt never lands between a fault and its record.

`run` and `rollback` install one handler for SIGINT, SIGHUP and SIGTERM
(`handled`). Outside a shield it raises at once: KeyboardInterrupt for SIGINT,
`Terminated` for the other two, so the run ends as a Ctrl-C does (journal
kept, resumable, nothing cleaned up that resume would need).

Inside a shield (`shielded`: a fault being put in place or taken away, with
its journal record) the signal is held until the shield ends, and is then
delivered again. The hold is bounded: a third signal, or any signal once the
shield has lasted SHIELD_LIMIT seconds, breaks through at once (a restore that
hangs must not make the tool unkillable; `ocsscale status` then names the
fault left in place). SIGKILL cannot be held: the fault's record, written
before the fault, is what the next command finds.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from ..errors import EXIT_INTERRUPTED

#: seconds a shield holds signals back at most
SHIELD_LIMIT = 120.0
#: the signals a shield holds back; each ends a run the way Ctrl-C does
HANDLED = (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)
#: held signals at which one more breaks through
BREAK_THROUGH = 3


class Terminated(BaseException):  # noqa: N818 - a signal, named as KeyboardInterrupt is
    """SIGHUP or SIGTERM: the run ends as on Ctrl-C (a BaseException, so that no
    `except Exception` of a step swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code(exc: BaseException) -> int:
    return exc.exit_code if isinstance(exc, Terminated) else EXIT_INTERRUPTED


class _Shield:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.since = 0.0
        self.held: list[int] = []
        self.installed = False


_state = _Shield()


def _raise(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def _handler(signum: int, frame: FrameType | None) -> None:
    with _state.lock:
        shielded = _state.depth > 0
        if shielded:
            _state.held.append(signum)
            over = time.monotonic() - _state.since > SHIELD_LIMIT
            if len(_state.held) < BREAK_THROUGH and not over:
                return
            _state.held.clear()
    _raise(signum)


@contextmanager
def handled() -> Iterator[None]:
    """Install the handler for the length of a run (main thread only: elsewhere,
    as in tests that run a walk on a thread, signals stay as they were)."""
    if threading.current_thread() is not threading.main_thread() or _state.installed:
        yield
        return
    previous = {s: signal.getsignal(s) for s in HANDLED}
    for s in HANDLED:
        signal.signal(s, _handler)
    _state.installed = True
    try:
        yield
    finally:
        _state.installed = False
        for s, handler in previous.items():
            signal.signal(s, handler)


class Held:
    """What a shield held back: `deliver()` raises it where the caller chooses."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def deliver(self) -> None:
        signum, self.signum = self.signum, None
        if signum is not None:
            _raise(signum)


def _enter() -> None:
    with _state.lock:
        if _state.depth == 0:
            _state.since = time.monotonic()
        _state.depth += 1


def _leave(held: Held) -> None:
    with _state.lock:
        _state.depth -= 1
        if _state.depth == 0 and _state.held:
            held.signum = _state.held[0]
            _state.held.clear()


@contextmanager
def shielded(*, deliver: bool = True) -> Iterator[Held]:
    """Hold SIGINT/SIGHUP/SIGTERM back while the block runs (bounded, see above).
    Then the first one held is raised in this thread as the block ends (a
    lane's thread too: the wave then ends as on Ctrl-C), or, with
    `deliver=False`, kept in the handle for the caller to raise where its own
    clean-up is ready for it."""
    _enter()
    held = Held()
    try:
        yield held
    except BaseException as exc:
        _leave(held)
        if held.signum is not None and not isinstance(exc, KeyboardInterrupt | Terminated):
            # the interrupt the operator asked for wins over the block's own error
            try:
                held.deliver()
            except BaseException as interrupt:
                raise interrupt from exc
        raise
    _leave(held)
    if deliver:
        held.deliver()
