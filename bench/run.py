"""Benchmark of the bundled load-balancer engine against HAProxy (see bench/README.md).

    .venv/bin/python bench/run.py            # full run, several minutes
    .venv/bin/python bench/run.py --quick    # smoke run, well under a minute or two
    .venv/bin/python bench/run.py --only http,detection
    .venv/bin/python bench/run.py --only newconn --repeats 5 --merge   # new connections only
    .venv/bin/python bench/run.py --only detect --merge   # members out, HAProxy and engine

Needs root (it makes its own network namespace) and haproxy, nginx, wrk, iperf3.
Writes bench/results/latest.json and latest.md. Measures; asserts nothing: the exit
code is 0 when every scenario ran, 1 when one could not run, whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lbbench import conns, detect, health, perf, report  # noqa: E402
from lbbench.procs import BenchError, Sandbox, raise_nofile  # noqa: E402
from lbbench.proxies import ENGINE_ENV, ENGINE_SEEN  # noqa: E402

SCENARIOS = ("http", "newconn", "bulk", "memory", "scale", "detection", "detect")
NEEDS = {
    "http": ("haproxy", "nginx", "wrk"),
    "newconn": ("haproxy", "nginx", "wrk"),
    "bulk": ("haproxy", "iperf3"),
    "memory": ("haproxy",),
    "scale": (),
    "detection": (),
    "detect": detect.NEEDS,
}
# Our own listen ports, kept out of the ephemeral range of the benchmark's namespace.
RESERVED_PORTS = "5201,8080-8081,9000-9001,9100-9101"


def plan(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "perf": perf.PerfPlan(seconds=2, repeats=1),
            "memory": 2000,
            "scale": 1500,
            "scale_range": "40000 40999",
            "scale_cap": 30,
            "trials": 3,
            "lost": 3,
            "detect": 3,
        }
    return {
        "perf": perf.PerfPlan(seconds=10, repeats=3),
        "memory": 50_000,
        "scale": 70_000,
        "scale_range": "1024 65535",
        "scale_cap": 300,
        "trials": 20,
        "lost": 5,
        "detect": 10,
    }


def log(msg: str) -> None:
    print(msg, flush=True)


def _on_sigterm(_sig: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(
        description="Engine vs HAProxy benchmark (measures, asserts nothing)"
    )
    ap.add_argument("--quick", action="store_true", help="short smoke run (seconds per scenario)")
    ap.add_argument("--only", default=",".join(SCENARIOS), help=f"subset of {','.join(SCENARIOS)}")
    ap.add_argument(
        "--workers",
        default="1,2",
        help="newconn: engine worker counts, each against HAProxy with as many threads",
    )
    ap.add_argument("--repeats", type=int, help="measurements per proxy (default 3, quick 1)")
    ap.add_argument("--seconds", type=float, help="length of each wrk/iperf3 measurement")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the other scenarios' figures of latest.json (for a partial --only run)",
    )
    ap.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--keep-logs", action="store_true", help="keep the proxies' logs and configs")
    ap.add_argument(
        "--engine-loop",
        choices=("default", "asyncio"),
        default="default",
        help="run the engine on plain asyncio instead of its default (uvloop when installed)",
    )
    ap.add_argument(
        "--render",
        action="store_true",
        help="only rewrite latest.md (and the targets in latest.json) from latest.json",
    )
    args = ap.parse_args()
    if args.render:
        return _render(args.results)
    if args.engine_loop == "asyncio":
        ENGINE_ENV["OCSSCALE_ENGINE_LOOP"] = "asyncio"
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        print(
            f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return 2
    if os.geteuid() != 0:
        print(
            "bench/run.py needs root: it creates a network namespace and sets sysctls in it",
            file=sys.stderr,
        )
        return 2
    if (os.cpu_count() or 1) < 2:
        print(
            "bench/run.py needs at least 2 CPUs (proxy and load generator on separate cores)",
            file=sys.stderr,
        )
        return 2
    for tool in ("ip", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (iproute2 / util-linux)", file=sys.stderr)
            return 2

    signal.signal(signal.SIGTERM, _on_sigterm)
    # Also when started in the background, where SIGINT arrives ignored: Ctrl-C or
    # `kill -INT` must still clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    p = plan(args.quick)
    try:
        workers = [int(w) for w in args.workers.split(",") if w.strip()]
    except ValueError:
        workers = []
    if not workers or min(workers) < 1 or max(workers) > (os.cpu_count() or 1):
        print(f"--workers: counts from 1 to {os.cpu_count()}, comma-separated", file=sys.stderr)
        return 2
    if args.repeats is not None:
        p["perf"].repeats = max(1, min(args.repeats, 15))
    if args.seconds is not None:
        p["perf"].seconds = max(1.0, min(args.seconds, 60.0))
    doc: dict[str, Any] = {
        "quick": args.quick,
        "machine": report.machine(),
        "results": {},
        "errors": {},
        "notes": [],
    }
    doc["machine"]["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    if float(doc["machine"]["loadavg_at_start"][0]) > 0.5:
        doc["notes"].append(
            f"the machine was shared with other work (load average "
            f"{doc['machine']['loadavg_at_start'][0]} at start): single runs vary, the "
            "medians of alternating runs are reported"
        )
    box = Sandbox("quick" if args.quick else "full")
    started = time.monotonic()
    try:
        fd_limit = raise_nofile(1_000_000)
        if fd_limit < 200_000:
            doc["notes"].append(
                f"RLIMIT_NOFILE is capped at {fd_limit} here (no CAP_SYS_RESOURCE): one process "
                "holds at most that many sockets, so HAProxy (one process) is compared at "
                "the count it can hold, and the engine's 50,000 and scale runs use several "
                "worker processes"
            )
        doc["fd_limit"] = fd_limit
        box.enter(
            {
                "net.ipv4.ip_local_port_range": "1024 65535",
                "net.ipv4.ip_local_reserved_ports": RESERVED_PORTS,
                "net.core.somaxconn": "65535",
                "net.ipv4.tcp_max_syn_backlog": "65535",
                "net.ipv4.tcp_tw_reuse": "1",
            }
        )
        nginx_proc = None
        for name in chosen:
            missing = [t for t in NEEDS[name] if shutil.which(t) is None]
            if missing:
                msg = f"{name}: not run, not installed: {', '.join(missing)}"
                doc["errors"][name] = msg
                log(msg)
                continue
            log(f"[{name}]")
            try:
                if name == "http":
                    nginx_proc = nginx_proc or _start_nginx(box)
                    doc["results"]["http"] = perf.run_http(box, p["perf"], log)
                elif name == "newconn":
                    nginx_proc = nginx_proc or _start_nginx(box)
                    doc["results"]["newconn"] = perf.run_newconn(box, p["perf"], workers, log)
                elif name == "bulk":
                    nginx_proc = nginx_proc or _start_nginx(box)  # the bulk farm's check port
                    doc["results"]["bulk"] = perf.run_bulk(box, p["perf"], log)
                elif name == "memory":
                    doc["results"]["memory"] = conns.run_memory(
                        box, _memory_plan(p["memory"], fd_limit), log
                    )
                elif name == "scale":
                    doc["results"]["scale"] = conns.run_scale(
                        box, p["scale"], p["scale_range"], fd_limit, p["scale_cap"], log
                    )
                elif name == "detection":
                    doc["results"]["detection"] = health.run_detection(
                        box, p["trials"], p["lost"], log
                    )
                elif name == "detect":
                    doc["results"]["detect"] = detect.run_detect(box, p["detect"], log)
            except BenchError as exc:
                doc["errors"][name] = str(exc)
                log(f"  {name} could not run: {exc}")
            except (OSError, ValueError, KeyError) as exc:  # unexpected: keep the other figures
                doc["errors"][name] = f"{type(exc).__name__}: {exc}"
                log(f"  {name} failed: {type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        doc["errors"]["interrupted"] = "the run was interrupted; figures are partial"
    except BenchError as exc:
        doc["errors"]["setup"] = str(exc)
        log(f"benchmark set-up failed: {exc}")
    finally:
        box.close(keep_logs=args.keep_logs)
        if args.keep_logs:
            log(f"logs, farm files and configs kept in {box.tmp}")
    doc["seconds"] = round(time.monotonic() - started, 1)
    doc["machine"]["engine_loop"] = ENGINE_SEEN.get("loop", "not started")
    # Other work on the machine skews every figure; say how busy it was.
    doc["machine"]["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    if args.quick:
        doc["notes"].append(
            "quick run: short measurements and small connection counts; the "
            "scale check uses a 1,000-port range instead of the full 64,512"
        )
    if args.merge:
        _merge_earlier(args.results, doc)
    js, md = report.write(args.results, doc)
    print()
    print(md.read_text())
    for name, err in doc["errors"].items():
        print(f"not measured: {name}: {err.splitlines()[0]}")
    print(f"written: {js} and {md}")
    return 1 if doc["errors"] else 0


def _render(results: Path) -> int:
    """Re-render the table and findings from the figures of an earlier run (no new runs)."""
    src = results / "latest.json"
    try:
        doc = json.loads(src.read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read {src}: {exc}", file=sys.stderr)
        return 2
    _js, md = report.write(results, doc, rerender=True)
    print(md.read_text())
    return 0


def _merge_earlier(results: Path, doc: dict[str, Any]) -> None:
    """Take the scenarios this run did not measure from the previous latest.json,
    with a note naming the run each comes from."""
    try:
        old = json.loads((results / "latest.json").read_text())
    except (OSError, ValueError):
        return
    own = {
        "finished": old.get("finished", "?"),
        "commit": old.get("machine", {}).get("commit", "?"),
        "quick": bool(old.get("quick")),
        "loadavg_at_start": (old.get("machine", {}).get("loadavg_at_start") or ["?"])[0],
    }
    sources = old.get("sources", {})
    for key, value in old.get("results", {}).items():
        if key in doc["results"]:
            continue
        doc["results"][key] = value
        origin = sources.get(key, own)
        doc.setdefault("sources", {})[key] = origin
        load = origin.get("loadavg_at_start", "?")
        doc["notes"].append(
            f"{key}: figures from the {'quick' if origin['quick'] else 'full'} run of "
            f"{origin['finished']} (commit {origin['commit']}, load average {load} at "
            "start), not measured in this run"
        )


def _memory_plan(engine_count: int, fd_limit: int) -> conns.MemoryPlan:
    # What one proxy process can hold with room to spare: both sides, checks, listeners.
    one_process = (fd_limit - 1000) // 2 - 500
    return conns.MemoryPlan(min(engine_count, one_process), engine_count, fd_limit)


def _start_nginx(box: Sandbox) -> Any:
    from lbbench.proxies import start_nginx

    return start_nginx(box, perf.NGINX_LISTEN, perf.LOAD_CPU)


if __name__ == "__main__":
    sys.exit(main())
