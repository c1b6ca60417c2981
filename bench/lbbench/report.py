"""The machine the run happened on, the target table, and the JSON/Markdown outputs."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .loadtools import tool_version
from .proxies import PYTHON, REPO


def machine() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    uvloop = subprocess.run(
        [PYTHON, "-c", "import uvloop; print(uvloop.__version__)"], capture_output=True, text=True
    )
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "haproxy": tool_version(["haproxy", "-v"], r"version (\S+)"),
        "nginx": tool_version(["nginx", "-v"], r"nginx/(\S+)"),
        "wrk": tool_version(["wrk", "-v"], r"wrk (\S+)"),
        "iperf3": tool_version(["iperf3", "-v"], r"iperf (\S+)"),
        "python": platform.python_version(),
        "uvloop": uvloop.stdout.strip() or "not installed",
        "commit": commit.stdout.strip() or "unknown",
    }


def _ratio(engine: float | None, haproxy: float | None) -> float | None:
    if engine is None or haproxy in (None, 0):
        return None
    return round(engine / haproxy, 3)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target: metric, engine, HAProxy, ratio, target, met (None = not run)."""
    rows: list[dict[str, Any]] = []
    http = results.get("http")
    if http:
        for key, label, floor in (
            ("rr", "small request/response round trips /s", 1.0),
            ("newconn", "new connections /s", 0.6),
        ):
            e, h = http[key]["engine"]["median_per_s"], http[key]["haproxy"]["median_per_s"]
            r = _ratio(e, h)
            rows.append(
                {
                    "metric": label,
                    "engine": round(e),
                    "haproxy": round(h),
                    "ratio": r,
                    "target": f">= {floor}x",
                    "met": r is not None and r >= floor,
                }
            )
            ec = http[key]["engine"].get("per_proxy_cpu_s")
            hc = http[key]["haproxy"].get("per_proxy_cpu_s")
            eu = http[key]["engine"].get("proxy_cpu_util", 0)
            hu = http[key]["haproxy"].get("proxy_cpu_util", 0)
            rows.append(
                {
                    "metric": f"  the same per second of proxy CPU (info: proxy CPU busy "
                    f"{eu:.0%} engine, {hu:.0%} HAProxy)",
                    "engine": ec,
                    "haproxy": hc,
                    "ratio": _ratio(ec, hc),
                    "target": "-",
                    "met": None,
                }
            )
    bulk = results.get("bulk")
    if bulk:
        e, h = bulk["engine"]["median_cpu_s_per_gb"], bulk["haproxy"]["median_cpu_s_per_gb"]
        r = _ratio(e, h)
        rows.append(
            {
                "metric": "CPU seconds per GB of bulk transfer",
                "engine": e,
                "haproxy": h,
                "ratio": r,
                "target": "<= 1.0x",
                "met": r is not None and r <= 1.0,
            }
        )
    mem = results.get("memory")
    if mem:
        e, h = mem.get("engine", {}), mem.get("haproxy", {})
        eb, hb = e.get("bytes_per_conn"), h.get("bytes_per_conn")
        held = e.get("held", h.get("held", "?"))
        rows.append(
            {
                "metric": f"RSS per idle proxied connection, B (one process each, {held} conns)",
                "engine": round(eb) if eb is not None else None,
                "haproxy": round(hb) if hb is not None else None,
                "ratio": _ratio(eb, hb),
                "target": "engine <= 4096 B",
                "met": eb is not None and eb <= 4096,
            }
        )
        for key, big in mem.items():
            if key.startswith("engine_at_") and isinstance(big, dict):
                b = big.get("bytes_per_conn")
                rows.append(
                    {
                        "metric": f"engine RSS per idle proxied connection, B "
                        f"({big.get('held', key[10:])} conns, "
                        f"{big.get('workers')} workers)",
                        "engine": round(b) if b is not None else None,
                        "haproxy": None,
                        "ratio": None,
                        "target": "<= 4096 B",
                        "met": b is not None and b <= 4096,
                    }
                )
    scale = results.get("scale")
    if scale:
        one, two = scale["snat_1"], scale["snat_2"]
        rows.append(
            {
                "metric": "concurrent connections to one server port, 1 SNAT address",
                "engine": one["server_side_open"],
                "haproxy": None,
                "ratio": None,
                "target": f"refused beyond {scale['ports_per_snat_address']}",
                "met": one["refused"] > 0 and one["server_side_open"] < scale["connections_wanted"],
            }
        )
        rows.append(
            {
                "metric": "concurrent connections to one server port, 2 SNAT addresses",
                "engine": two["server_side_open"],
                "haproxy": None,
                "ratio": None,
                "target": f"all {scale['connections_wanted']} (> 65,000 in the full run)",
                "met": scale["met"],
            }
        )
    det = results.get("detection")
    if det:
        for key, label, worst in (
            ("refuse", "refusing check port out of every port, p95 s", 0.35),
            ("blackhole", "blackholed server out, p95 s", 1.35),
        ):
            d = det[key]
            rows.append(
                {
                    "metric": f"{label} ({d['trials']} trials)",
                    "engine": d["p95_s"],
                    "haproxy": None,
                    "ratio": None,
                    "target": f"<= {d['target_s']} s (engine's worst case by design {worst} s)",
                    "met": d["met"]
                    and (key != "refuse" or d["trials_out_of_every_port"] == d["trials"]),
                }
            )
        lc = det["one_lost_check"]
        rows.append(
            {
                "metric": f"server taken out by one lost check "
                f"({lc['trials_with_exactly_one_lost']} valid trials; "
                f"{lc.get('trials_invalid', 0)} invalid: not exactly one check lost)",
                "engine": lc["false_downs"],
                "haproxy": None,
                "ratio": None,
                "target": "never",
                "met": lc["met"],
            }
        )
    return rows


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:.3f}" if v < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        f"Benchmark run {doc['finished']} ({'quick smoke run' if doc['quick'] else 'full run'}), "
        f"commit {m['commit']}.",
        "",
        "| metric | engine | HAProxy | ratio | target | met? |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in doc["targets"]:
        cells = [
            row["metric"],
            row["engine"],
            row["haproxy"],
            row["ratio"],
            row["target"],
            row["met"],
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += [
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}; "
        f"HAProxy {m['haproxy']}, nginx {m['nginx']}, wrk {m['wrk']}, iperf3 {m['iperf3']}, "
        f"Python {m['python']}, uvloop {m['uvloop']} "
        f"(engine event loop: {m.get('engine_loop', '?')}). Load average at start "
        f"{' '.join(m.get('loadavg_at_start', ['?']))}, at end "
        f"{' '.join(m.get('loadavg_at_end', ['?']))}.",
        "Proxy pinned to CPU 0; wrk, nginx, iperf3 and the connection holders to CPU 1; "
        "HAProxy `nbthread` = engine `workers` = 1. Everything on loopback inside a private "
        "network namespace.",
    ]
    for note in doc.get("notes", []):
        lines.append(f"- {note}")
    for name, err in doc.get("errors", {}).items():
        lines.append(f"- not measured: {name}: {err.splitlines()[0]}")
    return "\n".join(lines) + "\n"


def write(results_dir: Path, doc: dict[str, Any]) -> tuple[Path, Path]:
    doc["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    doc["targets"] = targets(doc["results"])
    results_dir.mkdir(parents=True, exist_ok=True)
    js, md = results_dir / "latest.json", results_dir / "latest.md"
    js.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    md.write_text(markdown(doc))
    return js, md
