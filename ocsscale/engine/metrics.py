"""Prometheus text exposition built from the status document."""

from __future__ import annotations

from typing import Any


def _esc(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(status: dict[str, Any]) -> str:
    farm = _esc(status["farm"])
    out: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            out.append(f'{name}{{farm="{farm}"{labels}}} {value}')

    servers = status["servers"]
    family(
        "ocsscale_lb_server_up",
        "gauge",
        "1 if the server takes new connections.",
        [(f',server="{_esc(s["name"])}"', 1 if s["state"] == "up" else 0) for s in servers],
    )
    family(
        "ocsscale_lb_server_admin_state",
        "gauge",
        "Admin state of each server (1 for the current one).",
        [
            (f',server="{_esc(s["name"])}",state="{st}"', 1 if s["admin"] == st else 0)
            for s in servers
            for st in ("ready", "drain", "maint")
        ],
    )
    family(
        "ocsscale_lb_server_weight",
        "gauge",
        "Configured weight.",
        [(f',server="{_esc(s["name"])}"', s["weight"]) for s in servers],
    )
    family(
        "ocsscale_lb_connections_active",
        "gauge",
        "Proxied connections open now, per server and listen port.",
        [
            (f',server="{_esc(s["name"])}",port="{p}"', n)
            for s in servers
            for p, n in s["per_port"].items()
        ],
    )
    family(
        "ocsscale_lb_server_connections_active",
        "gauge",
        "Proxied connections open now per server, all ports together (what WLC counts).",
        [(f',server="{_esc(s["name"])}"', s["active"]) for s in servers],
    )
    family(
        "ocsscale_lb_connections_total",
        "counter",
        "Connections sent to each server.",
        [(f',server="{_esc(s["name"])}"', s["served"]) for s in servers],
    )
    checks = []
    for key, count in sorted(status["check_results"].items()):
        name, _, result = key.rpartition(":")
        checks.append((f',server="{_esc(name)}",result="{_esc(result)}"', count))
    family(
        "ocsscale_lb_check_rounds_total",
        "counter",
        "Health check rounds per server by result (ok/fail).",
        checks,
    )
    family(
        "ocsscale_lb_events_total",
        "counter",
        "Events by kind (state changes included).",
        [(f',kind="{_esc(k)}"', n) for k, n in sorted(status["event_counts"].items())],
    )
    snat = status["snat"]
    family(
        "ocsscale_lb_snat_ports_in_use",
        "gauge",
        "Server-side connections (source ports) in use per SNAT address.",
        [(f',address="{_esc(a)}"', n) for a, n in sorted(snat["in_use"].items())],
    )
    family(
        "ocsscale_lb_snat_exhausted_total",
        "counter",
        "Client connections closed because no SNAT address had a free port.",
        [("", snat["exhausted"])],
    )
    family(
        "ocsscale_lb_buffered_bytes",
        "gauge",
        "Bytes held in the engine's write buffers (bounded by back-pressure).",
        [("", status["buffered_bytes"])],
    )
    family(
        "ocsscale_lb_idle_closed_total",
        "counter",
        "Sessions closed by the idle timeout.",
        [("", status["idle_closed"])],
    )
    family("ocsscale_lb_reloads_total", "counter", "Successful reloads.", [("", status["reloads"])])
    return "\n".join(out) + "\n"
