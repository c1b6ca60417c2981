"""A continuous, bounded client load: new connections at a steady rate, in the background.

The failover drill and the cutover measure what users would notice: while they
change things, a :class:`LoadRunner` opens one new connection per request,
round robin over its targets, and records whether it was answered and by
which front end. Each request is a real probe from this package:

- ``sip-tls``: a SIP OPTIONS over TLS (:func:`sip_options_probe`), the pool
  name as SNI and Request-URI, the certificate verified;
- ``tls``: a TLS handshake (:func:`tls_probe`); the certificate tells which
  FE answered (its own FQDN is a SAN), so a check port like 444 is counted
  per FE even through a load balancer;
- ``tcp``: a TCP connect (:func:`tcp_probe`); with ``banner=True`` a banner
  must arrive too. A bare connect proves little through a full-proxy LB,
  which accepts the connection before it picks a member.

Each request is labelled (:meth:`LoadRunner.mark`) when it finishes, or, with
``label_at="start"``, when it started. With ``observe``, each request's
outcome is also handed over as it ends, with its number in sending order
(:attr:`LoadRunner.issued` is the next one's): the failover drill reads the
order behind an appliance whose own view cannot be read.

With ``resolve`` the target's address is a name, resolved again for every
request, so a load through the pool name follows a DNS cutover; without it
the address is used as is (the VIP).

Bounded in every direction: at most 200 requests per second, 4 at a time,
3600 seconds and ``max_requests``; it stops by itself at the first bound
reached, or when the caller calls :meth:`LoadRunner.stop`. Each request has
its own timeout, so stopping waits at most that long.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Literal

from ocsscale.errors import UsageError
from ocsscale.probes.basic import tcp_probe, tls_probe
from ocsscale.probes.evidence import ProbeEvidence
from ocsscale.probes.load_report import LoadRecorder, LoadReport, Outcome
from ocsscale.probes.sip import sip_options_probe
from ocsscale.probes.stream import Connector, socket_connector
from ocsscale.probes.tlsclient import TlsOptions

LoadKind = Literal["sip-tls", "tls", "tcp"]
LOAD_KINDS: tuple[LoadKind, ...] = ("sip-tls", "tls", "tcp")
MAX_RATE = 200.0  # requests per second
MAX_DURATION = 3600.0  # seconds
MAX_CONCURRENCY = 4
MAX_TIMEOUT = 30.0
BANNER_WAIT = 1.0

Identify = Callable[[ProbeEvidence], "str | None"]
Resolver = Callable[[str], list[str]]
#: told of every request when it ends: (its number in sending order, Outcome)
Observer = Callable[[int, Outcome], None]


@dataclass(frozen=True)
class LoadTarget:
    """Where requests go: ``address`` (an address, or a name when the runner
    resolves), ``port``, the kind of request, and ``name``, the pool FQDN
    presented as TLS SNI and SIP Request-URI."""

    address: str
    port: int
    kind: LoadKind
    name: str
    banner: bool = False  # tcp only: a banner line must arrive for the request to count

    @property
    def key(self) -> str:
        """How the report names this target."""
        return f"{self.kind} {self.address}:{self.port}"

    def describe(self) -> dict[str, object]:
        return {
            "target": self.key,
            "address": self.address,
            "port": self.port,
            "kind": self.kind,
            "name": self.name,
        }


def system_resolver(name: str) -> list[str]:
    """IPv4 addresses of ``name`` as this process's resolver sees them
    (hosts file, then DNS, per nsswitch), in the order it gives them."""
    infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class BackgroundLoad:
    """What every load source shares (LoadRunner here, a Windows client's bursts in
    load_windows.py): a LoadRecorder, one background thread running ``_run``, marks,
    a stop that waits for the work in flight (``_stop_wait`` seconds at most), and
    the report, so that their reports merge."""

    _thread_name = "ocsscale-load"

    def __init__(self, rate: float, targets: list[dict[str, object]]) -> None:
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped_by = "running"
        self._ended: float | None = None
        self._recorder = LoadRecorder(time.time(), rate, targets)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("this load was already started")
        self._recorder.begin(time.time())  # marks set before start() are kept
        self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        self._thread.start()

    def mark(self, label: str) -> None:
        """Label the requests from now on (a phase or step name)."""
        self._recorder.mark(label, time.time())

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the load has stopped by itself; True when it has."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def stop(self) -> LoadReport:
        """Stop issuing requests, wait for those in flight, and report."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._stop_wait())
        else:
            self._finish("caller")
        return self.snapshot()

    def snapshot(self) -> LoadReport:
        """The report so far (``stopped_by`` is ``running`` while it runs)."""
        ended = self._ended if self._ended is not None else time.time()
        return self._recorder.report(ended, self._stopped_by)

    def _finish(self, stopped_by: str) -> None:
        self._stopped_by = stopped_by
        self._ended = time.time()
        self._done.set()

    def _run(self) -> None:
        raise NotImplementedError

    def _stop_wait(self) -> float:
        raise NotImplementedError


class LoadRunner(BackgroundLoad):
    """Runs the load in a background thread; see the module's docstring."""

    def __init__(
        self,
        targets: list[LoadTarget],
        *,
        rate: float,
        duration: float,
        tls: TlsOptions,
        identify: Identify,
        connect: Connector = socket_connector,
        timeout: float = 2.0,
        max_requests: int | None = None,
        resolve: Resolver | None = None,
        concurrency: int = MAX_CONCURRENCY,
        label_at: Literal["finish", "start"] = "finish",
        observe: Observer | None = None,
    ) -> None:
        check_bounds(rate=rate, duration=duration, max_rate=MAX_RATE, max_duration=MAX_DURATION)
        if not targets:
            raise UsageError("a load needs at least one target")
        for target in targets:
            if target.kind not in LOAD_KINDS:
                raise UsageError(f"unknown load kind {target.kind!r} (one of {LOAD_KINDS})")
            if not 1 <= target.port <= 65535:
                raise UsageError(f"target port must be 1-65535, not {target.port}")
        if not 0 < timeout <= MAX_TIMEOUT:
            raise UsageError(f"request timeout must be more than 0 and at most {MAX_TIMEOUT:g} s")
        if max_requests is not None and max_requests < 1:
            raise UsageError("max_requests must be at least 1")
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise UsageError(f"concurrency must be 1-{MAX_CONCURRENCY}, not {concurrency}")
        if label_at not in ("finish", "start"):
            raise UsageError("label_at must be finish or start")
        self._label_at = label_at
        self._targets = list(targets)
        self._rate = float(rate)
        self._duration = float(duration)
        self._tls = tls
        self._identify = identify
        self._connect = connect
        self._timeout = float(timeout)
        self._max_requests = max_requests
        self._resolve = resolve
        self._concurrency = concurrency
        self._slots = threading.Semaphore(concurrency)
        self._observe = observe
        self._issued = 0
        super().__init__(self._rate, [t.describe() for t in targets])

    @property
    def issued(self) -> int:
        """Requests sent so far: the number the next one gets (see ``observe``)."""
        return self._issued

    def _stop_wait(self) -> float:
        return self._timeout + 10.0  # every request in flight ends within its own timeout

    # -- the background thread ---------------------------------------------------

    def _run(self) -> None:
        interval = 1.0 / self._rate
        started = time.monotonic()
        end = started + self._duration
        next_at = started
        issued = 0
        stopped_by = "caller"
        with ThreadPoolExecutor(self._concurrency, thread_name_prefix="ocsscale-load") as pool:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= end:
                    stopped_by = "duration"
                    break
                if self._max_requests is not None and issued >= self._max_requests:
                    stopped_by = "max_requests"
                    break
                if next_at > now:
                    self._stop.wait(min(next_at, end) - now)
                    continue
                # at most `concurrency` requests at once: a slow target slows the
                # load down rather than piling up connections
                if not self._slots.acquire(timeout=0.05):
                    continue
                target = self._targets[issued % len(self._targets)]
                label = self._recorder.label if self._label_at == "start" else None
                pool.submit(self._one, target, label, issued)
                issued += 1
                self._issued = issued
                # no burst to catch up after a stall: the rate is a ceiling
                next_at = max(next_at + interval, now)
        self._finish(stopped_by)

    def _one(self, target: LoadTarget, label: str | None, seq: int = 0) -> None:
        began = time.monotonic()
        address = target.address
        try:
            if self._resolve is not None:
                try:
                    addresses = self._resolve(target.address)
                except OSError as exc:
                    self._record(target, address, began, None, "resolve", f"{exc}", label, seq)
                    return
                if not addresses:
                    self._record(target, address, began, None, "resolve", "no address", label, seq)
                    return
                address = addresses[0]
            evidence = self._probe(target, address)
            if not evidence.ok:
                failure = evidence.failure or "error"
                self._record(target, address, began, None, failure, evidence.detail, label, seq)
            elif target.kind == "tcp" and target.banner and evidence.status is None:
                self._record(target, address, began, None, "no-banner", evidence.detail, label, seq)
            else:
                self._record(target, address, began, self._identify(evidence), None, "", label, seq)
        except Exception as exc:  # a worker must never die silently: count it
            self._record(target, address, began, None, "internal", type(exc).__name__, label, seq)
        finally:
            self._slots.release()

    def _probe(self, target: LoadTarget, address: str) -> ProbeEvidence:
        common = {"connect": self._connect, "timeout": self._timeout}
        if target.kind == "sip-tls":
            return sip_options_probe(
                address, target.port, target.name, transport="tls", tls=self._tls, **common
            )
        if target.kind == "tls":
            return tls_probe(address, target.port, target.name, tls=self._tls, **common)
        wait = min(BANNER_WAIT, self._timeout / 2) if target.banner else 0.0
        return tcp_probe(
            address, target.port, presented_name=target.name, banner_wait=wait, **common
        )

    def _record(
        self,
        target: LoadTarget,
        address: str,
        began: float,
        server: str | None,
        error: str | None,
        detail: str,
        label: str | None,
        seq: int = 0,
    ) -> None:
        outcome = Outcome(
            finished=time.time(),
            target=target.key,
            ok=error is None,
            error=error,
            detail=detail,
            latency_ms=(time.monotonic() - began) * 1000.0,
            server=server,
            address=address,
        )
        self._recorder.add(outcome, label)
        if self._observe is not None:
            # an observer's bug must not count the request twice: it only misses it
            with suppress(Exception):
                self._observe(seq, outcome)


def check_bounds(*, rate: float, duration: float, max_rate: float, max_duration: float) -> None:
    """Refuse a load outside its bounds, with a clear error (exit 2 in the CLI)."""
    if not rate > 0:
        raise UsageError("the load's rate must be more than 0 requests per second")
    if rate > max_rate:
        raise UsageError(f"a rate of {rate:g}/s is over the limit of {max_rate:g} per second")
    if not duration > 0:
        raise UsageError("the load's duration must be more than 0 seconds")
    if duration > max_duration:
        raise UsageError(f"a duration of {duration:g} s is over the limit of {max_duration:g} s")


def targets_for(name: str, profile: Any, address: str | None = None) -> list[LoadTarget]:
    """What a user's client does, per the profile: SIP OPTIONS over TLS on its SIP/TLS
    port, when it has one; a TLS handshake on every other check port that speaks TLS,
    a TCP connect on the others (generic-tls: a TLS handshake on 443, no SIP). Sent to
    `name` as resolved, or to `address` (the VIP) presenting `name`."""
    to = address or name
    sip_tls = profile.sip_ports.tls
    targets = [LoadTarget(to, sip_tls, "sip-tls", name)] if sip_tls is not None else []
    for port in profile.check_ports:
        if port != sip_tls:
            kind = "tls" if port in profile.tls_ports else "tcp"
            targets.append(LoadTarget(to, port, kind, name))
    return targets
