"""Throughput scenarios: small request/response, new connections, bulk CPU per GB.

The proxy runs alone on PROXY_CPU; wrk, nginx and iperf3 share LOAD_CPU. Engine and
HAProxy alternate run by run (engine first, then HAProxy first...) so slow drift of
the machine hurts both alike; the median of the runs is reported.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from .loadtools import run_iperf3, run_wrk
from .procs import BenchError, Sandbox, cpu_seconds
from .proxies import FarmSpec, start_proxy

PROXY_CPU = 0
LOAD_CPU = 1
VIP = "127.0.10.1"
HTTP_PORT = 8080
BULK_PORT = 5201
NGINX_LISTEN = ["127.0.20.1:8080", "127.0.20.2:8080"]
KINDS = ("engine", "haproxy")


@dataclass
class PerfPlan:
    seconds: float  # each wrk / iperf3 measurement
    repeats: int
    connections: int = 50


def http_farm() -> FarmSpec:
    return FarmSpec(
        name="http",
        vips=[VIP],
        ports=[HTTP_PORT],
        servers=[
            {"name": "s1", "address": "127.0.20.1", "weight": 1},
            {"name": "s2", "address": "127.0.20.2", "weight": 2},
        ],
        snat=["127.0.30.1"],
        check_port=HTTP_PORT,
    )


def bulk_farm() -> FarmSpec:
    # One server: iperf3's control and data connections must reach the same iperf3.
    # The check goes to nginx's port on that host, since iperf3 takes every
    # connection to its own port as a new test.
    return FarmSpec(
        name="bulk",
        vips=[VIP],
        ports=[BULK_PORT],
        servers=[{"name": "s1", "address": "127.0.20.1", "weight": 1}],
        snat=["127.0.30.1"],
        check_port=HTTP_PORT,
    )


def _order(rep: int) -> tuple[str, ...]:
    return KINDS if rep % 2 == 0 else tuple(reversed(KINDS))


def _measure_wrk(pid: int, plan: PerfPlan, close: bool) -> dict[str, Any]:
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    res = run_wrk(f"http://{VIP}:{HTTP_PORT}/", plan.seconds, plan.connections, LOAD_CPU, close)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    return {
        "per_s": res.requests_per_s,
        "requests": res.requests,
        "latency_ms": res.latency_ms,
        "errors": res.error_count,
        "socket_errors": res.socket_errors,
        "proxy_cpu_util": round((cpu1 - cpu0) / (t1 - t0), 3),
    }


def run_http(box: Sandbox, plan: PerfPlan, log: Any) -> dict[str, Any]:
    """Keep-alive round trips per second and new connections per second."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {k: {"rr": [], "newconn": []} for k in KINDS}
    baseline = run_wrk(
        f"http://{NGINX_LISTEN[0]}/", min(plan.seconds, 3), plan.connections, LOAD_CPU
    )
    for rep in range(plan.repeats):
        for kind in _order(rep):
            proxy = start_proxy(box, kind, http_farm(), PROXY_CPU, f"{kind}-http-{rep}")
            try:
                run_wrk(f"http://{VIP}:{HTTP_PORT}/", 1, plan.connections, LOAD_CPU)  # warm-up
                rr = _measure_wrk(proxy.pid, plan, close=False)
                nc = _measure_wrk(proxy.pid, plan, close=True)
            finally:
                box.stop(proxy.proc)
            runs[kind]["rr"].append(rr)
            runs[kind]["newconn"].append(nc)
            log(
                f"  {kind:7} run {rep + 1}/{plan.repeats}: {rr['per_s']:9.0f} req/s "
                f"(p99 {rr['latency_ms'].get('p99', 0):.2f} ms, cpu {rr['proxy_cpu_util']:.0%}), "
                f"{nc['per_s']:8.0f} new conn/s (cpu {nc['proxy_cpu_util']:.0%})"
            )
    return {
        "nginx_direct_rr_per_s": baseline.requests_per_s,
        "rr": {k: _summary(runs[k]["rr"]) for k in KINDS},
        "newconn": {k: _summary(runs[k]["newconn"]) for k in KINDS},
    }


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["per_s"] for r in rows]
    best = sorted(rows, key=lambda r: r["per_s"])[len(rows) // 2]  # the median run
    return {
        "median_per_s": statistics.median(rates),
        "runs_per_s": rates,
        "latency_ms": best["latency_ms"],
        "proxy_cpu_util": best["proxy_cpu_util"],
        # The rate per second of proxy CPU: what the proxy costs, even where the load
        # generator (sharing one core with nginx) and not the proxy sets the pace.
        "per_proxy_cpu_s": round(best["per_s"] / best["proxy_cpu_util"])
        if best["proxy_cpu_util"]
        else None,
        "errors": sum(r["errors"] for r in rows),
    }


def run_bulk(box: Sandbox, plan: PerfPlan, log: Any) -> dict[str, Any]:
    """CPU seconds the proxy spends per GB carried (iperf3, one stream)."""
    server = box.start(
        "iperf3-server", ["iperf3", "-s", "-B", "127.0.20.1", "-p", str(BULK_PORT)], LOAD_CPU
    )
    try:
        # Not probed with a connection: iperf3 would take it for a test and complain.
        time.sleep(0.5)
        if server.poll() is not None:
            raise BenchError(f"iperf3 -s exited: {box.log_tail('iperf3-server', 5)}")
        return _bulk_runs(box, plan, log)
    finally:
        box.stop(server)


def _bulk_runs(box: Sandbox, plan: PerfPlan, log: Any) -> dict[str, Any]:
    out: dict[str, list[dict[str, float]]] = {k: [] for k in KINDS}
    for rep in range(plan.repeats):
        for kind in _order(rep):
            proxy = start_proxy(box, kind, bulk_farm(), PROXY_CPU, f"{kind}-bulk-{rep}")
            try:
                cpu0 = cpu_seconds(proxy.pid)
                res = run_iperf3(VIP, BULK_PORT, plan.seconds, LOAD_CPU)
                cpu = cpu_seconds(proxy.pid) - cpu0
            finally:
                box.stop(proxy.proc)
            gb = res.bytes_received / 1e9
            row = {
                "gbit_per_s": round(res.gbit_per_s, 3),
                "gb": round(gb, 3),
                "cpu_s": round(cpu, 3),
                "cpu_s_per_gb": round(cpu / gb, 4) if gb else float("inf"),
            }
            out[kind].append(row)
            log(
                f"  {kind:7} run {rep + 1}/{plan.repeats}: {row['gbit_per_s']:.2f} Gbit/s, "
                f"{row['cpu_s_per_gb']:.3f} CPU s/GB"
            )
    return {
        k: {
            "median_cpu_s_per_gb": statistics.median(r["cpu_s_per_gb"] for r in rows),
            "median_gbit_per_s": statistics.median(r["gbit_per_s"] for r in rows),
            "runs": rows,
        }
        for k, rows in out.items()
    }


def run_newconn(
    box: Sandbox, plan: PerfPlan, workers: list[int], log: Any
) -> dict[str, dict[str, Any]]:
    """New connections per second alone (wrk with `Connection: close`), for each count
    of engine workers against HAProxy with as many threads. One worker/thread: the
    proxy alone on PROXY_CPU; more: the proxy may use every core, and shares LOAD_CPU
    with wrk and nginx (a 2-core machine has no third core for the load side)."""
    out: dict[str, dict[str, Any]] = {}
    for n in workers:
        cpu: int | str = PROXY_CPU if n == 1 else f"0-{n - 1}"
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
        spec = http_farm()
        spec.workers = n
        for rep in range(plan.repeats):
            for kind in _order(rep):
                proxy = start_proxy(box, kind, spec, cpu, f"{kind}-newconn-{n}-{rep}")
                try:
                    run_wrk(f"http://{VIP}:{HTTP_PORT}/", 1, plan.connections, LOAD_CPU, True)
                    nc = _measure_wrk(proxy.pid, plan, close=True)
                finally:
                    box.stop(proxy.proc)
                runs[kind].append(nc)
                log(
                    f"  {kind:7} x{n} run {rep + 1}/{plan.repeats}: {nc['per_s']:8.0f} new conn/s"
                    f" (proxy cpu {nc['proxy_cpu_util']:.0%}, {nc['errors']} errors)"
                )
        out[str(n)] = {k: _summary(runs[k]) for k in KINDS} | {"proxy_cpus": str(cpu)}
    return out
