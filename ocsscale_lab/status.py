"""`ocsscale lab status`: what a lab consists of and whether its servers run."""

from __future__ import annotations

from typing import Any

from . import network, services, system
from .state import LabState


def describe(state: LabState) -> dict[str, Any]:
    """A JSON-ready description of one lab (no secrets: paths only)."""
    topo = state.topo()
    hosts = []
    for host in topo.hosts:
        ns = topo.ns(host.name)
        running = {}
        on_demand = []
        for name in services.names(state.directory, host.name):
            service = services.load(state.directory, host.name, name)
            running[name] = services.pid_of(state.directory, service)
            if service.on_demand:
                on_demand.append(name)
        hosts.append(
            {
                "name": host.name,
                "role": host.role,
                "os": host.os,
                "fqdn": host.fqdn,
                "namespace": ns,
                "namespace_present": system.netns_exists(ns),
                "addresses": [i.address for i in host.interfaces],
                "services": running,
                # started by a run, not by `lab up` (the LB before configure-lb)
                "on_demand": on_demand,
            }
        )
    all_running = all(
        pid for h in hosts for name, pid in h["services"].items() if name not in h["on_demand"]
    )
    return {
        "name": state.name,
        "topology": state.topology,
        "fes": state.fes,
        "complete": state.complete,
        "faults": list(state.faults),
        "healthy": state.complete and all_running and all(h["namespace_present"] for h in hosts),
        "directory": str(state.directory),
        "pool_file": str(state.pool_file) if state.pool_file.exists() else None,
        "blackhole_route": network.blackhole_present(),
        "switch_namespace": topo.switch_ns,
        "hosts": hosts,
    }


def render(info: dict[str, Any]) -> str:
    head = "up" if info["healthy"] else ("DEGRADED" if info["complete"] else "HALF-BUILT")
    lines = [
        f"lab {info['name']}: {head} ({info['topology']}, {info['fes']} new FEs)",
        f"  pool file:  {info['pool_file'] or '-'}",
        f"  faults:     {', '.join(info.get('faults') or []) or 'none'}",
        f"  blackhole route 198.18.0.0/15: {'present' if info['blackhole_route'] else 'MISSING'}",
        "",
        f"  {'host':<10} {'role':<15} {'addresses':<28} services",
    ]
    for h in info["hosts"]:
        svc = ", ".join(
            f"{name} {_state(pid, name in h.get('on_demand', []))}"
            for name, pid in h["services"].items()
        )
        if not h["namespace_present"]:
            svc = "namespace MISSING"
        addrs = ", ".join(h["addresses"])
        lines.append(f"  {h['name']:<10} {h['role']:<15} {addrs:<28} {svc}")
    return "\n".join(lines)


def _state(pid: int | None, on_demand: bool) -> str:
    if pid:
        return f"pid {pid}"
    return "stopped (until configure-lb)" if on_demand else "STOPPED"
