"""The client load from a Windows test client: bursts run on the host itself over WinRM.

WinRM cannot carry a stream, so the requests cannot be sent from here through
the host as a Linux client's are. Instead the host runs them itself, in short
bounded bursts (`load_burst`, templates/powershell/load_burst.ps1.j2): each
request resolves the pool name as the host resolves it (its hosts file, its
DNS client), connects, and on a TLS port completes a handshake that the host's
own trust store and name check must accept. A SIP/TLS port gets the handshake
only (no SIP OPTIONS), so the targets are keyed "tls" here.

:class:`WindowsLoadRunner` has LoadRunner's interface (start, mark, stop,
snapshot, wait) and the same LoadRecorder, so its report merges with the
others'. A background thread sends one burst after the other on its own WinRM
connection (a host object runs one operation at a time: the run's steps must
never wait behind the load), at most `rate` requests per second, until
`duration` or stop(). The burst's times come from the script's stopwatch, not
the host's clock: the script started no earlier than the burst was sent and no
later than its answer came back minus its own run time, and the latter is the
closer bound (PowerShell's start-up is what takes long), so its requests are
placed on this machine's clock from there and labelled with the step current
then. A burst that fails as a whole (WinRM) counts one failed request, target
"winrm": a gap in the measurement is never taken for a quiet pool.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

from ocsscale.errors import OcsscaleError, UsageError
from ocsscale.probes.evidence import CertSummary, ProbeEvidence
from ocsscale.probes.load import (
    MAX_DURATION,
    BackgroundLoad,
    Identify,
    LoadTarget,
    check_bounds,
)
from ocsscale.probes.load_report import Outcome

MAX_RATE = 20.0  # requests per second: a host runs its burst one request after the other
BURST_SECONDS = 2.0  # a burst's span: longer bursts leave fewer gaps, shorter ones stop sooner
MAX_COUNT = 50  # per burst, the script's own bound
MAX_TIMEOUT = 5.0  # per request (connect, then handshake)
WINRM_TARGET = "winrm"


class WindowsLoadRunner(BackgroundLoad):
    """Runs bursts on `host` (a WinRMHost of its own) in a background thread."""

    _thread_name = "ocsscale-winload"

    def __init__(
        self,
        host: Any,
        targets: list[LoadTarget],
        *,
        rate: float,
        duration: float,
        identify: Identify,
        timeout: float = 3.0,
        burst_seconds: float = BURST_SECONDS,
    ) -> None:
        check_bounds(rate=rate, duration=duration, max_rate=MAX_RATE, max_duration=MAX_DURATION)
        if not targets:
            raise UsageError("a load needs at least one target")
        names = {t.address for t in targets}
        if len(names) != 1:
            raise UsageError("a Windows client's load goes to one name, resolved on the host")
        if not 0 < timeout <= MAX_TIMEOUT:
            raise UsageError(f"request timeout must be more than 0 and at most {MAX_TIMEOUT:g} s")
        if not 0 < burst_seconds <= 10.0:
            raise UsageError("a burst lasts more than 0 and at most 10 s")
        self._host = host
        self._name = names.pop()
        # what the host does per port: a TLS handshake, or a bare connect
        self._targets = [
            replace(t, kind="tls" if t.kind in ("sip-tls", "tls") else "tcp", banner=False)
            for t in targets
        ]
        self._rate = float(rate)
        self._duration = float(duration)
        self._identify = identify
        self._timeout = float(timeout)
        self._burst_seconds = float(burst_seconds)
        super().__init__(self._rate, [t.describe() for t in self._targets])

    def _stop_wait(self) -> float:
        # the burst in flight: its span, two request timeouts, and a minute of WinRM
        return self._burst_seconds + 2 * self._timeout + 60.0

    # -- the background thread --------------------------------------------------------

    def _run(self) -> None:
        interval = 1.0 / self._rate
        started = time.monotonic()
        end = started + self._duration
        next_at = started
        sent_so_far = 0  # the rotation over the targets goes on from burst to burst
        stopped_by = "caller"
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= end:
                stopped_by = "duration"
                break
            if next_at > now:
                self._stop.wait(min(next_at, end) - now)
                continue
            span = min(self._burst_seconds, end - now)
            count = max(1, min(MAX_COUNT, math.ceil(span * self._rate)))
            first = sent_so_far % len(self._targets)
            order = self._targets[first:] + self._targets[:first]
            done = self._burst(order, count, min(interval, 10.0), span)
            sent_so_far += max(done, 1)
            # the rate is a ceiling: the next burst starts no sooner than its due time;
            # after a burst that failed as a whole, a second at least (no WinRM hammering)
            pause = done * interval if done else max(interval, 1.0)
            next_at = max(now + pause, time.monotonic())
        self._finish(stopped_by)

    def _burst(self, order: list[LoadTarget], count: int, interval: float, span: float) -> int:
        """One burst, its requests recorded; how many requests it made."""
        sent = time.time()
        try:
            burst = self._host.load_burst(
                self._name,
                [(t.port, t.kind) for t in order],
                count=count,
                interval=interval,
                duration=span,
                timeout=self._timeout,
            )
        except OcsscaleError as exc:
            now = time.time()
            self._add(now, WINRM_TARGET, "", False, "winrm", exc.message, (now - sent) * 1000, None)
            return 0
        except Exception as exc:  # the thread must never die silently: count it
            now = time.time()
            self._add(now, WINRM_TARGET, "", False, "internal", type(exc).__name__, 0.0, None)
            return 0
        began = max(sent, time.time() - burst.elapsed_ms / 1000.0)
        by_port = {t.port: t for t in order}
        for request in burst.requests:
            target = by_port[request.port]
            server = None
            if request.ok:
                server = self._server(target, request.address, request.certificate)
            self._add(
                began + request.t_ms / 1000.0,
                target.key,
                request.address,
                request.ok,
                request.error or None,
                request.detail,
                float(request.latency_ms),
                server,
            )
        return len(burst.requests)

    def _server(self, target: LoadTarget, address: str, der: bytes | None) -> str | None:
        """Who answered, by the certificate the handshake ended with (its SANs)."""
        if der is None:
            return None
        try:
            certificate = CertSummary.from_der(der)
        except ValueError:
            return None
        evidence = ProbeEvidence(
            probe="tls",
            host=address,
            port=target.port,
            presented_name=target.name,
            ok=True,
            detail="TLS handshake on the Windows client",
            transport="tls",
            cert_verified=True,
            certificate=certificate,
        )
        return self._identify(evidence)

    def _add(
        self,
        finished: float,
        target: str,
        address: str,
        ok: bool,
        error: str | None,
        detail: str,
        latency_ms: float,
        server: str | None,
    ) -> None:
        outcome = Outcome(
            finished=finished,
            target=target,
            ok=ok,
            error=None if ok else (error or "error"),
            detail=detail,
            latency_ms=latency_ms,
            server=server,
            address=address,
        )
        self._recorder.add(outcome, self._recorder.label_at(finished))
