"""The lab's load balancer: installed on the LB host, unconfigured until configure-lb.

`lab up --lb engine` defines the bundled engine as a service of lb01 (not
started: there is no farm yet); `--lb haproxy` defines Debian's HAProxy in
master-worker mode the same way; `--lb none` installs nothing (the pool file
then names the manual driver); `--lb appliance` is a packet-forwarding appliance
driven by hand (appliance.py: its firmware runs from `lab up` on). The pool
file's driver settings point at these paths and at the lab's service runner, so
the real drivers drive the lab's LB over SSH exactly as they would drive a
production host.
"""

from __future__ import annotations

from pathlib import Path

from .hostsvc import PY_ENV, python_argv
from .services import Service
from .state import LabState
from .topology import LabHost, Topology

LB_KINDS = ("engine", "haproxy", "none", "appliance")
ENGINE_SERVICE = "ocsscale-lb"
HAPROXY_SERVICE = "haproxy"
HAPROXY = "/usr/sbin/haproxy"


def lb_host(topo: Topology) -> LabHost:
    return topo.by_role("lb")[0]


def paths(state: LabState, topo: Topology) -> dict[str, Path]:
    base = state.host_dir(lb_host(topo).name)
    return {
        "farm": base / "etc" / "ocsscale-lb" / "farm.yaml",
        "admin_socket": base / "run" / "lb.sock",
        "haproxy_cfg": base / "etc" / "haproxy" / "haproxy.cfg",
        "haproxy_socket": base / "run" / "haproxy.sock",
        "haproxy_state": base / "lib" / "haproxy" / "server-state",
        "haproxy_pid": base / "run" / "haproxy.pid",
        # the run lease (runner/lease.py): in this lab's own tree, as labs share a filesystem
        "leases": base / "lib" / "ocsscale" / "leases",
    }


def services(state: LabState, topo: Topology, kind: str, first_port: int) -> list[Service]:
    """The LB service to define (not start) on the LB host; `first_port` is the
    farm port whose listening socket tells that it started."""
    host = lb_host(topo)
    p = paths(state, topo)
    for key in ("farm", "admin_socket", "haproxy_cfg", "haproxy_state"):
        p[key].parent.mkdir(parents=True, exist_ok=True)
    ns = topo.ns(host.name)
    if kind == "engine":
        argv = python_argv("ocsscale.engine", "serve", "--farm", str(p["farm"]))
        return [
            Service(host.name, ENGINE_SERVICE, ns, argv, (first_port,), PY_ENV, (), "HUP", True)
        ]
    if kind == "haproxy":
        argv = (HAPROXY, "-W", "-db", "-f", str(p["haproxy_cfg"]), "-p", str(p["haproxy_pid"]))
        return [Service(host.name, HAPROXY_SERVICE, ns, argv, (first_port,), (), (), "USR2", True)]
    return []


def driver_lines(state: LabState, topo: Topology, kind: str, indent: str) -> list[str]:
    """The pool file's `driver:` block for the lab's LB."""
    p = paths(state, topo)
    control = f"{state.bin_dir / 'lab-svc'} --host {lb_host(topo).name} {{action}} {{service}}"
    if kind == "engine":
        settings = {
            "kind": "engine",
            "farm_path": str(p["farm"]),
            "service": ENGINE_SERVICE,
            "unit_path": None,
            "service_control": control,
            "command": str(state.bin_dir / "ocsscale"),
            "admin_socket": str(p["admin_socket"]),
        }
    elif kind == "haproxy":
        settings = {
            "kind": "haproxy",
            "config_path": str(p["haproxy_cfg"]),
            "service": HAPROXY_SERVICE,
            "service_control": control,
            "runtime_socket": str(p["haproxy_socket"]),
            "state_file": str(p["haproxy_state"]),
            "command": HAPROXY,
        }
    else:
        settings = {"kind": "manual", "vendor": "webmux"}
    import json

    lines = [f"{indent}driver:"]
    for key, value in settings.items():
        lines.append(f"{indent}  {key}: {'null' if value is None else json.dumps(value)}")
    return lines
