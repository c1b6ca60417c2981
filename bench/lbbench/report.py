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
    cpuinfo: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            break  # end of the first CPU's block
        cpuinfo.setdefault(key.strip(), value.strip())
    model = cpuinfo.get("model name", "unknown")
    # A bare "AMD EPYC" (as some hypervisors show it) says little: add family/model.
    model += f" (family {cpuinfo.get('cpu family', '?')} model {cpuinfo.get('model', '?')}"
    model += ", virtual machine)" if "hypervisor" in cpuinfo.get("flags", "").split() else ")"
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
    for n, pair in sorted((results.get("newconn") or {}).items()):
        rows += _newconn_rows(n, pair)
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
                "metric": f"concurrent connections to one server port, 1 SNAT address "
                f"({scale.get('engine_workers', '?')} workers)",
                "engine": one["server_side_open"],
                "haproxy": None,
                "ratio": None,
                "target": f"refused beyond the {scale['ports_per_snat_address']:,}-port range "
                "(less the benchmark's 7 reserved listen ports)",
                "met": one["refused"] > 0 and one["server_side_open"] < scale["connections_wanted"],
            }
        )
        rows.append(
            {
                "metric": f"concurrent connections to one server port, 2 SNAT addresses "
                f"({scale.get('engine_workers', '?')} workers)",
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
    rows += _detect_rows(results.get("detect"))
    return rows


_FAULT_WORDS = {
    "service-stop": "member out after its service stops (check port refuses), max s",
    "link-cut": "member out after its link is cut (check port silent), max s",
}


def _detect_rows(det: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Issue 20: both drivers as ocsscale configures them at the default checks."""
    if not det:
        return []
    c = det["checks"]
    rows = []
    for fault, by in det["faults"].items():
        e, h = by.get("engine", {}), by.get("haproxy", {})
        rows.append(
            {
                "metric": f"{_FAULT_WORDS.get(fault, fault)} (driver defaults: interval "
                f"{c['interval']} s, timeout {c['timeout']} s, fall {c['fall']}; "
                f"{e.get('trials', h.get('trials', '?'))} trials)",
                "engine": e.get("max_s"),
                "haproxy": h.get("max_s"),
                "ratio": None,
                "target": "<= 2.0 s on both",
                "met": bool(e.get("met")) and bool(h.get("met")),
            }
        )
    return rows


def _newconn_rows(n: str, pair: dict[str, Any]) -> list[dict[str, Any]]:
    """The new-connection scenario for one worker count (HAProxy with as many threads)."""
    e, h = pair["engine"], pair["haproxy"]
    who = "1 worker vs HAProxy nbthread 1" if n == "1" else f"{n} workers vs nbthread {n}"
    r = _ratio(e["median_per_s"], h["median_per_s"])
    runs = len(e.get("runs_per_s", []))
    return [
        {
            "metric": f"new connections /s, {who} (median of {runs})",
            "engine": round(e["median_per_s"]),
            "haproxy": round(h["median_per_s"]),
            "ratio": r,
            "target": ">= 0.6x",
            "met": r is not None and r >= 0.6,
        },
        {
            "metric": f"  the same per second of proxy CPU (info: proxy CPU busy "
            f"{e.get('proxy_cpu_util', 0):.0%} engine, {h.get('proxy_cpu_util', 0):.0%} HAProxy"
            f" of {n} core{'s' if n != '1' else ''})",
            "engine": e.get("per_proxy_cpu_s"),
            "haproxy": h.get("per_proxy_cpu_s"),
            "ratio": _ratio(e.get("per_proxy_cpu_s"), h.get("per_proxy_cpu_s")),
            "target": "-",
            "met": None,
        },
    ]


def findings(results: dict[str, Any]) -> list[str]:
    """Each missed target, named with the figures of this run that explain it."""
    out: list[str] = []
    http = results.get("http")
    if http:
        out += _http_findings(http)
    for n, pair in sorted((results.get("newconn") or {}).items()):
        e, h = pair["engine"], pair["haproxy"]
        r = _ratio(e["median_per_s"], h["median_per_s"])
        ec, hc = e.get("per_proxy_cpu_s"), h.get("per_proxy_cpu_s")
        if r is not None and r < 0.6 and ec and hc:
            out.append(
                f"**New connections, {n} worker(s) vs {n} thread(s) ({r:.2f}x, target >= 0.6x)."
                f"** Per connection (with its one request) the engine spends {1e6 / ec:.1f} us "
                f"of CPU, HAProxy {1e6 / hc:.1f} us; proxy CPU busy "
                f"{e.get('proxy_cpu_util', 0):.0%} and {h.get('proxy_cpu_util', 0):.0%} of "
                f"{n} core(s). Where the engine's time goes: bench/README.md, "
                '"New connections: where the time goes".'
            )
    bulk = results.get("bulk")
    if bulk:
        e, h = bulk["engine"]["median_cpu_s_per_gb"], bulk["haproxy"]["median_cpu_s_per_gb"]
        r = _ratio(e, h)
        if r is not None and r > 1.0:
            out.append(
                f"**Bulk CPU per GB ({r:.2f}x, target <= 1.0x).** The engine spent {e:.3f} "
                f"CPU s per GB, HAProxy {h:.3f}, at {bulk['engine']['median_gbit_per_s']:.1f} "
                f"and {bulk['haproxy']['median_gbit_per_s']:.1f} Gbit/s."
            )
    for key, rec in (results.get("memory") or {}).items():
        if key.startswith("engine") and isinstance(rec, dict):
            b = rec.get("bytes_per_conn")
            if b is not None and b > 4096:
                out.append(
                    f"**Engine RSS per idle connection ({b:,.0f} B at {rec.get('held')} "
                    f"connections, {rec.get('workers')} worker(s); target <= 4096 B).** RSS "
                    f"grew {rec['rss_before_mb']:.1f} -> {rec['rss_after_mb']:.1f} MB over "
                    f"the whole process tree."
                )
    scale = results.get("scale")
    if scale and not scale.get("met"):
        two = scale["snat_2"]
        out.append(
            f"**Scale.** With two SNAT addresses {two['server_side_open']:,} of "
            f"{scale['connections_wanted']:,} reached the server ({two['refused']:,} refused, "
            f"{two['still_connecting']:,} still connecting after {two['waited_s']} s)."
        )
    det = results.get("detection") or {}
    for key, label in (("refuse", "Refused check port"), ("blackhole", "Blackholed server")):
        if key in det and not det[key]["met"]:
            d = det[key]
            out.append(
                f"**{label} detection (p95 {d['p95_s']} s, target {d['target_s']} s).** "
                f"Delays: {d['delays_s']}; not detected within 10 s: "
                f"{d['not_detected_within_10s']}."
            )
    lc = det.get("one_lost_check")
    if lc and not lc["met"]:
        out.append(
            f"**One lost check.** {lc['false_downs']} of {lc['trials_with_exactly_one_lost']} "
            f"valid trials took the server out ({lc.get('trials_invalid', 0)} invalid trials "
            "not counted)."
        )
    return out


def _http_findings(http: dict[str, Any]) -> list[str]:
    out: list[str] = []
    cost: dict[str, dict[str, float]] = {}  # CPU microseconds per request / connection
    for key in ("rr", "newconn"):
        cost[key] = {}
        for kind in ("engine", "haproxy"):
            per_cpu_s = http[key][kind].get("per_proxy_cpu_s")
            if per_cpu_s:
                cost[key][kind] = 1e6 / per_cpu_s
    for key, label, unit, floor in (
        ("rr", "Round trips /s", "round trip", 1.0),
        ("newconn", "New connections /s", "new connection (with its one request)", 0.6),
    ):
        e, h = http[key]["engine"], http[key]["haproxy"]
        r = _ratio(e["median_per_s"], h["median_per_s"])
        if r is None or r >= floor:
            continue
        if len(cost[key]) < 2:
            out.append(
                f"**{label} ({r:.2f}x, target >= {floor}x).** Engine "
                f"{e['median_per_s']:,.0f}/s ({e.get('errors', 0)} wrk errors), HAProxy "
                f"{h['median_per_s']:,.0f}/s; no proxy CPU figure to compare costs."
            )
            continue
        eu, hu = e.get("proxy_cpu_util", 0), h.get("proxy_cpu_util", 0)
        cr = _ratio(e.get("per_proxy_cpu_s"), h.get("per_proxy_cpu_s"))
        text = (
            f"**{label} ({r:.2f}x, target >= {floor}x).** The engine's core was {eu:.0%} "
            f"busy, HAProxy's {hu:.0%}. Per {unit} the engine spends "
            f"{cost[key]['engine']:.1f} us of CPU, HAProxy {cost[key]['haproxy']:.1f} us: "
            f"per second of proxy CPU the ratio is {cr:.2f}x."
        )
        if eu >= 0.95:
            text += " The engine is CPU-bound on its one core: its CPU cost per unit sets its rate."
        idle = [n for n, u in (("the engine's", eu), ("HAProxy's", hu)) if u < 0.95]
        if idle:
            direct = http.get("nginx_direct_rr_per_s")
            ceiling = f" (wrk straight to nginx: {direct:,.0f} req/s)" if direct else ""
            cores = "cores" if len(idle) > 1 else "core"
            text += (
                f" {_upper_first(' and '.join(idle))} {cores} had idle time: wrk and nginx share "
                f"the other core{ceiling} and saturate first (load generator saturation), "
                "so raw rates partly measure the load side; the per-CPU-second ratio is the "
                "fairer comparison of what each proxy costs."
            )
        if key == "newconn" and len(cost["rr"]) == 2:
            se = cost["newconn"]["engine"] - cost["rr"]["engine"]
            sh = cost["newconn"]["haproxy"] - cost["rr"]["haproxy"]
            text += (
                f" Set-up and tear-down alone (new-connection cost minus round-trip cost: "
                f"accept, server connect from the SNAT address, both closes) cost the engine "
                f"{se:.1f} us and HAProxy {sh:.1f} us: the per-connection cost of the "
                f"engine's Python accept/connect/close path is the gap (where it goes: "
                f'bench/README.md, "New connections: where the time goes").'
            )
        out.append(text)
    return out


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


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
        f"commit {m['commit']}"
        + (
            f" (table and findings re-rendered from its JSON by commit {doc['rendered_by_commit']})"
            if doc.get("rendered_by_commit")
            else ""
        )
        + ".",
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
        "HAProxy `nbthread` = engine `workers` = 1, except in the rows that say otherwise "
        "(there the proxy may use both cores and shares CPU 1 with the load side). "
        "Everything on loopback inside a private network namespace.",
    ]
    for note in doc.get("notes", []):
        lines.append(f"- {note}")
    for name, err in doc.get("errors", {}).items():
        lines.append(f"- not measured: {name}: {err.splitlines()[0]}")
    scale = doc["results"].get("scale") or {}
    one = scale.get("snat_1") or {}
    if one.get("still_connecting"):
        lines.append(
            f"- scale, 1 SNAT address: {one['server_side_open']:,} carried, "
            f"{one['refused']:,} refused cleanly, {one['still_connecting']:,} clients still "
            f"waiting when the {one['waited_s']} s wait ended (once the range is full, every "
            "connect() walks it in the kernel before failing; see the README)"
        )
    found = findings(doc["results"])
    lines += ["", "## Missed targets and their measured causes", ""]
    lines += [f"- {f}" for f in found] if found else ["Every target measured here was met."]
    return "\n".join(lines) + "\n"


def write(results_dir: Path, doc: dict[str, Any], rerender: bool = False) -> tuple[Path, Path]:
    """Write latest.json and latest.md; `rerender` keeps the run's own finish time."""
    if not rerender:
        doc["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    else:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        doc["rendered_by_commit"] = commit.stdout.strip() or "unknown"
    doc["targets"] = targets(doc["results"])
    results_dir.mkdir(parents=True, exist_ok=True)
    js, md = results_dir / "latest.json", results_dir / "latest.md"
    js.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    md.write_text(markdown(doc))
    return js, md
