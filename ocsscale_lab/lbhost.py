"""The lab's load balancer: installed on the LB host, unconfigured until configure-lb.

`lab up --lb engine` defines the bundled engine as a service of lb01 (not
started: there is no farm yet); `--lb haproxy` defines Debian's HAProxy in
master-worker mode the same way; `--lb none` installs nothing (the pool file
then names the manual driver); `--lb appliance` is a packet-forwarding appliance
driven by hand (appliance.py: its firmware runs from `lab up` on). The pool
file's driver settings point at these paths and at the lab's service runner, so
the real drivers drive the lab's LB over SSH exactly as they would drive a
production host.

`--lb-pair` defines the same service on lb01 and lb02 and, on each, keepalived
(Debian's) run inside the host's namespace with the configuration path the
driver writes and pid files of its own (never the machine's). The pool file's
driver paths then hold `{host}`: each host's files live in its own directory.
"""

from __future__ import annotations

import json
from pathlib import Path

from .hostsvc import PY_ENV, python_argv
from .services import Service
from .state import LabState
from .topology import LabHost, Topology

LB_KINDS = ("engine", "haproxy", "none", "appliance")
#: what `--lb-pair` pairs (the drivers that configure keepalived)
PAIR_KINDS = ("engine", "haproxy")
KEEPALIVED = "/usr/sbin/keepalived"
KEEPALIVED_SERVICE = "keepalived"
#: in a driver path, the LB host's name (a pair's two hosts share this filesystem)
HOST_PLACEHOLDER = "{host}"
ENGINE_SERVICE = "ocsscale-lb"
HAPROXY_SERVICE = "haproxy"
HAPROXY = "/usr/sbin/haproxy"


def lb_host(topo: Topology) -> LabHost:
    return topo.by_role("lb")[0]


def lb_hosts(topo: Topology) -> list[LabHost]:
    return topo.by_role("lb")


def paths(state: LabState, topo: Topology, host: str | None = None) -> dict[str, Path]:
    """The LB's files on `host` (default the first LB host; HOST_PLACEHOLDER: the
    pool file's paths for a pair)."""
    base = state.host_dir(host or lb_host(topo).name)
    return {
        "keepalived_conf": base / "etc" / "keepalived" / "keepalived.conf",
        "keepalived_track": base / "etc" / "keepalived" / "ocsscale-track.sh",
        "keepalived_pid": base / "run" / "keepalived.pid",
        "keepalived_vrrp_pid": base / "run" / "keepalived-vrrp.pid",
        "farm": base / "etc" / "ocsscale-lb" / "farm.yaml",
        "admin_socket": base / "run" / "lb.sock",
        "haproxy_cfg": base / "etc" / "haproxy" / "haproxy.cfg",
        "haproxy_socket": base / "run" / "haproxy.sock",
        "haproxy_state": base / "lib" / "haproxy" / "server-state",
        "haproxy_pid": base / "run" / "haproxy.pid",
        # the run lease (runner/lease.py): in this lab's own tree, as labs share a filesystem
        "leases": base / "lib" / "ocsscale" / "leases",
    }


def services(
    state: LabState, topo: Topology, kind: str, first_port: int, pair: bool = False
) -> list[Service]:
    """The LB services to define (not start) on every LB host; `first_port` is the
    farm port whose listening socket tells that it started. With `pair`, keepalived
    too on each, unconfigured (its file is written by configure-lb)."""
    defined = []
    for host in lb_hosts(topo) if pair else [lb_host(topo)]:
        defined += _host_services(state, topo, host, kind, first_port)
        if pair:
            defined.append(_keepalived(state, topo, host))
    return defined


def _host_services(
    state: LabState, topo: Topology, host: LabHost, kind: str, first_port: int
) -> list[Service]:
    p = paths(state, topo, host.name)
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


def _keepalived(state: LabState, topo: Topology, host: LabHost) -> Service:
    """keepalived in the host's namespace, VRRP only, in the foreground, logging to
    its console (the service's log), with this host's own pid files."""
    p = paths(state, topo, host.name)
    p["keepalived_conf"].parent.mkdir(parents=True, exist_ok=True)
    p["keepalived_pid"].parent.mkdir(parents=True, exist_ok=True)
    argv = (
        KEEPALIVED,
        "-n",
        "-l",
        "-G",
        "-P",
        "-f",
        str(p["keepalived_conf"]),
        "--pid",
        str(p["keepalived_pid"]),
        "--vrrp_pid",
        str(p["keepalived_vrrp_pid"]),
    )
    ns = topo.ns(host.name)
    return Service(host.name, KEEPALIVED_SERVICE, ns, argv, (), (), (), "HUP", True)


def driver_lines(
    state: LabState, topo: Topology, kind: str, indent: str, pair: bool = False
) -> list[str]:
    """The pool file's `driver:` block for the lab's LB (a pair's: paths by `{host}`)."""
    on = HOST_PLACEHOLDER if pair else lb_host(topo).name
    p = paths(state, topo, on)
    control = f"{state.bin_dir / 'lab-svc'} --host {on} {{action}} {{service}}"
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
    lines = [f"{indent}driver:"]
    for key, value in settings.items():
        lines.append(f"{indent}  {key}: {'null' if value is None else json.dumps(value)}")
    return lines


def pair_lines(state: LabState, topo: Topology, indent: str, preferred: str = "lb01") -> list[str]:
    """The pool file's `pair:` block: lb01 and lb02 with their own addresses, the
    lab's VRRP secret file, keepalived's paths on each host (by `{host}`)."""
    from .poolfile import host_lines  # the pool-file writer's host entry

    p = paths(state, topo, HOST_PLACEHOLDER)
    lines = [f"{indent}pair:", f"{indent}  hosts:"]
    for host in lb_hosts(topo):
        lines += host_lines(state, host, indent + "    ", item=True)
        own = ", ".join(f"{i.address}/24" for i in host.interfaces)
        lines.append(f"{indent}      addresses: [{own}]")
    control = f"{state.bin_dir / 'lab-svc'} --host {HOST_PLACEHOLDER} {{action}} {{service}}"
    link = state.bin_dir / "lab-link"
    lines += [
        f"{indent}  preferred: {preferred}",
        f"{indent}  preempt: true",
        f"{indent}  router_id: 51",
        f"{indent}  advert_interval: 1",
        f"{indent}  secret: {{file: {json.dumps(str(vrrp_secret_file(state)))}}}",
        # the LB drill pulls the active LB's cable at the lab's switch, as the FE drill does
        f"{indent}  link_down_command: {json.dumps(f'{link} --host {{name}} down')}",
        f"{indent}  link_up_command: {json.dumps(f'{link} --host {{name}} up')}",
        f"{indent}  keepalived:",
        f"{indent}    config_path: {json.dumps(str(p['keepalived_conf']))}",
        f"{indent}    track_script: {json.dumps(str(p['keepalived_track']))}",
        f"{indent}    service: {KEEPALIVED_SERVICE}",
        f"{indent}    service_control: {json.dumps(control)}",
    ]
    return lines


def vrrp_secret_file(state: LabState) -> Path:
    return state.secrets_dir / "vrrp-secret"


def write_vrrp_secret(state: LabState) -> None:
    import secrets

    path = vrrp_secret_file(state)
    path.write_text(secrets.token_hex(4) + "\n", encoding="utf-8")  # PASS auth: 8 characters
    path.chmod(0o600)
