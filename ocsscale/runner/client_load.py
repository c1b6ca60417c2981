"""A continuous client load through the pool name for the whole of a run (`run --client-load`).

What users would notice is measured, not assumed: while the run changes things,
every source opens new connections to the pool name at a steady rate, resolving
it anew for each request as that source resolves it (hosts file and DNS), so
the load follows every pin and the cutover. Sources: the admin machine (the
tool's own, never pinned: it stands for the users) and every test client. A
Linux client carries the requests over SSH (the same probes as the admin's); a
Windows client runs them itself in short bursts over WinRM (load_windows.py:
TLS handshakes its own trust store must accept, TCP connects). Each source has
its own connection, so the load never waits behind a step; a client that cannot
be reached when the load starts is listed as not loaded, with the reason.

Every request is labelled with the step in progress (`phase/step`), so the
failures are counted per phase and per step; the report is journaled with the
run and shown at its end. Bounded: the rate per source is at most 20/s, and
each source's load stops by itself after an hour if the run never ends it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from ..actions.lb_validate import identify
from ..actions.probing import host_connector, legacy_tls_for, tls_options
from ..errors import OcsscaleError, UsageError
from ..probes.load import LoadRunner, LoadTarget, system_resolver, targets_for
from ..probes.load_report import merge_reports
from ..probes.load_windows import WindowsLoadRunner
from .events import Event

MAX_RATE = 20.0
LIMIT = 3600.0
#: the phase whose failures are expected (a front end is failed on purpose)
DRILL_PHASES = ("failover-test",)


def _targets(ctx: Any) -> list[LoadTarget]:
    return targets_for(ctx.pool.pool.fqdn, ctx.profile)


class ClientLoad:
    def __init__(self, loaded: Any, ctx: Any, rate: float) -> None:
        if not 0 < rate <= MAX_RATE:
            raise UsageError(f"--client-load takes 0 < RATE <= {MAX_RATE:g} requests/s per source")
        self.loaded = loaded
        self.ctx = ctx
        self.rate = rate
        self.runners: dict[str, LoadRunner | WindowsLoadRunner] = {}
        self.hosts: list[Any] = []
        self.not_loaded: dict[str, str] = {}

    def _tls(self) -> Any:
        """The pool name leads to the legacy FE, then to the VIP: TLS 1.0 is allowed
        when either is marked legacy_tls in the pool file."""
        pool = self.ctx.pool
        options = tls_options(self.ctx, str(pool.load_balancer.vip.ip))
        if legacy_tls_for(pool, str(pool.legacy_fe.address)):
            options = replace(options, legacy_tls=True)
        return options

    def _runner(self, **source: Any) -> LoadRunner:
        return LoadRunner(
            _targets(self.ctx),
            rate=self.rate,
            duration=LIMIT,
            tls=self._tls(),
            identify=lambda e: identify(e, self.ctx.pool),
            timeout=3.0,
            concurrency=2,
            **source,
        )

    def start(self) -> None:
        from ..transports.factory import connect

        self.runners["admin"] = self._runner(resolve=system_resolver)
        for spec in self.ctx.pool.test_clients:
            if spec.os not in ("linux", "windows"):
                self.not_loaded[spec.name] = f"no client load from a {spec.os} client"
                continue
            try:
                # a connection of the load's own: the run's steps never wait behind it
                host = connect(spec, self.loaded)
                host.resolve(self.ctx.pool.pool.fqdn)  # logs in now: fail here, not per request
            except OcsscaleError as exc:
                self.not_loaded[spec.name] = exc.message
                continue
            self.hosts.append(host)
            if spec.os == "windows":
                self.runners[spec.name] = WindowsLoadRunner(
                    host,
                    _targets(self.ctx),
                    rate=self.rate,
                    duration=LIMIT,
                    identify=lambda e: identify(e, self.ctx.pool),
                    timeout=3.0,
                )
                continue
            self.runners[spec.name] = self._runner(
                connect=host_connector(host), resolve=host.resolve
            )
        for runner in self.runners.values():
            runner.start()

    def mark(self, label: str) -> None:
        for runner in self.runners.values():
            runner.mark(label)

    def sink(self, inner: Any) -> Any:
        """An event sink that labels the load with the step in progress, then passes on."""

        def labelled(event: Event) -> None:
            if event.kind == "step_start" and event.phase and event.step:
                self.mark(event.step)
            elif event.kind == "phase_start" and event.phase:
                self.mark(event.phase)
            inner(event)

        return labelled

    def stop(self) -> dict[str, Any]:
        try:
            # side by side: each waits for its requests in flight (a Windows burst)
            with ThreadPoolExecutor(max_workers=max(1, len(self.runners))) as pool:
                stopped = pool.map(lambda runner: runner.stop(), self.runners.values())
                reports = dict(zip(self.runners, stopped, strict=True))
        finally:
            for host in self.hosts:
                host.close()
        merged = merge_reports(reports)
        merged["rate_per_source"] = self.rate
        merged["not_loaded"] = self.not_loaded
        merged["by_phase"] = by_phase(merged["clients"])
        return merged


def by_phase(clients: dict[str, Any]) -> dict[str, dict[str, dict[str, int]]]:
    """phase -> source -> {requests, failed}: the failures per phase, per source."""
    table: dict[str, dict[str, dict[str, int]]] = {}
    for source, report in clients.items():
        for label, tally in report.get("labels", {}).items():
            phase = label.split("/", 1)[0] or "(before the first step)"
            row = table.setdefault(phase, {}).setdefault(source, {"requests": 0, "failed": 0})
            row["requests"] += int(tally.get("requests", 0))
            row["failed"] += int(tally.get("failed", 0))
    # in the order the run went through them, whichever source saw a phase first
    began: dict[str, float] = {"(before the first step)": float("-inf")}
    for report in clients.values():
        for mark in report.get("marks", []):
            phase = str(mark.get("label", "")).split("/", 1)[0]
            began[phase] = min(began.get(phase, float("inf")), float(mark.get("t", 0.0)))
    order = sorted(table, key=lambda phase: began.get(phase, float("inf")))
    return {phase: table[phase] for phase in order}


def outside_drill(by_phase: dict[str, dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """source -> {requests, failed} over every phase but the failover drill's: the
    target is no failed request there, for every source."""
    totals: dict[str, dict[str, int]] = {}
    for phase, row in by_phase.items():
        if phase in DRILL_PHASES:
            continue
        for source, tally in row.items():
            into = totals.setdefault(source, {"requests": 0, "failed": 0})
            into["requests"] += int(tally.get("requests", 0))
            into["failed"] += int(tally.get("failed", 0))
    return totals
