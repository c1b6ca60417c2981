"""Events (every state change, with timestamp and reason) and structured logging."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("ocsscale.engine")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: easy for journald, jq and log shippers alike."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


class EventLog:
    """A bounded ring of events, each also logged; `seq` lets readers ask for newer ones."""

    def __init__(self, capacity: int = 2000, quiet: bool = False) -> None:
        # A worker's log is quiet: its events are forwarded to the master, which logs.
        self.quiet = quiet
        self.forward: Callable[[dict[str, Any]], None] | None = None
        self._events: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._seq = 0
        self.counts: dict[str, int] = {}
        # Coalescing for events that can fire per connection (SNAT exhaustion): at most
        # one event per key per second, carrying how many were folded into it.
        self._coalesce: dict[str, tuple[float, int]] = {}

    def emit(self, kind: str, reason: str, **fields: Any) -> dict[str, Any]:
        self._seq += 1
        event = {
            "seq": self._seq,
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "kind": kind,
            "reason": reason,
            **fields,
        }
        self._events.append(event)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.forward is not None:
            self.forward(event)
        if not self.quiet:
            level = logging.WARNING if kind in _WARNING_KINDS else logging.INFO
            log.log(level, reason, extra={"fields": {"event": kind, **fields}})
        return event

    def emit_coalesced(self, key: str, kind: str, reason: str, **fields: Any) -> None:
        now = time.monotonic()
        last, folded = self._coalesce.get(key, (0.0, 0))
        if now - last < 1.0:
            self._coalesce[key] = (last, folded + 1)
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if not folded:  # a burst started: report it when the window closes
                asyncio.get_running_loop().call_later(
                    1.0 - (now - last), self._flush, key, kind, reason, fields
                )
            return
        self._coalesce[key] = (now, 0)
        self.emit(kind, reason, folded=folded, **fields)

    def _flush(self, key: str, kind: str, reason: str, fields: dict[str, Any]) -> None:
        """One event for the occurrences folded at the end of a burst, so none is
        lost however the burst ends (each was counted when it happened)."""
        _last, folded = self._coalesce.get(key, (0.0, 0))
        if folded:
            self._coalesce[key] = (time.monotonic(), 0)
            self.counts[kind] -= 1  # emit() counts this event once more
            again = f"{reason} ({folded} times in the last second)"
            self.emit(kind, again, folded=folded, **fields)

    def since(self, seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        return [e for e in self._events if e["seq"] > seq][-limit:]

    def add(self, event: dict[str, Any]) -> None:
        """Take an event made elsewhere (a worker process) into this log."""
        fields = {k: v for k, v in event.items() if k not in ("seq", "ts", "kind", "reason")}
        self.emit(str(event["kind"]), str(event["reason"]), **fields)


_WARNING_KINDS = frozenset(
    {
        "server-down",
        "snat-exhausted",
        "reload-failed",
        "connect-failed",
        "no-server",
        "accept-paused",
        "maxconn-reached",
        "check-skipped",
        "hard-stop",
    }
)
