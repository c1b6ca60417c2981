"""Detect (issue 20): how long until a member is out of the farm, with HAProxy and the
engine configured exactly as ocsscale's drivers configure them at the pool file's
default `load_balancer.checks`, for the two faults of the failover drill.

The config and the farm file are the drivers' own renderings (HaproxyDriver.
render_config, EngineDriver.render_farm) of a farm with the R2 profile's check ports
(5061 and 444, a third port 5060 following them); nothing here restates the timing.

Topology: the members live in a second namespace behind a veth pair, s1 (the victim)
at 198.18.5.2 and s2 at 198.18.5.3; the proxy reaches them from 198.18.5.1 (its SNAT
address). Faults, as the failover drill makes them, none touching a firewall:
- service-stop: s1's listener on 5061 is closed (its checks get a reset), as when the
  service behind that port stops;
- link-cut: the proxy's neighbour entry for s1 is pointed at a MAC nobody owns, so
  every packet to s1 silently vanishes (checks time out), as when its cable is pulled.
Measured: from just before the fault (so the figure errs on the slow side) until the
proxy's own view shows s1 down (HAProxy's `show stat` on its stats socket, the
engine's /status), polled every 10 ms; then the time until it is back after the
fault is undone. Every wait is bounded (DOWN_LIMIT, UP_LIMIT); it asserts nothing.
"""

from __future__ import annotations

import json
import os
import random
import socket
import statistics
import time
from pathlib import Path
from typing import Any

from ocsscale.config.lb_settings import EngineSettings, HaproxySettings
from ocsscale.config.model import LbChecks
from ocsscale.providers.lb import haproxy_text as hx
from ocsscale.providers.lb.base import CheckTiming, FarmSpec, LbSite, Member
from ocsscale.providers.lb.engine import EngineDriver
from ocsscale.providers.lb.haproxy import HaproxyDriver
from ocsscale.providers.plugin import Ports

from .conns import Holder
from .procs import BenchError, Sandbox, run_quiet, wait_for_port
from .proxies import PYTHON, REPO, admin_json, is_up, server_states

VIP = "127.0.10.2"
CHECK_PORTS, OTHER_PORT = (5061, 444), 5060
PROXY_SIDE, S1, S2 = "198.18.5.1", "198.18.5.2", "198.18.5.3"
DEV, PEER = "ocsd0", "ocsd1"
NOBODY_MAC = "02:00:5e:00:53:98"
POLL = 0.01
DOWN_LIMIT = 10.0  # seconds a fault may take to show; beyond, the trial is a miss
UP_LIMIT = 15.0  # seconds a member may take to come back between trials
FAULTS = ("service-stop", "link-cut")
#: the bench's own procs for this scenario, for `bench/run.py --only detect`
NEEDS = ("haproxy",)


def _no_host(name: str) -> None:
    raise BenchError(f"rendering must not connect to {name}")


def _farm(checks: CheckTiming) -> FarmSpec:
    return FarmSpec(
        name="detect",
        vip=VIP,
        vip_prefix=32,
        ports=(*CHECK_PORTS, OTHER_PORT),
        check_ports=CHECK_PORTS,
        idle_timeout=1800,
        members=(Member("s1", S1, 1), Member("s2", S2, 1)),
        snat_addresses=(PROXY_SIDE,),
        checks=checks,
    )


def _setup_network(box: Sandbox) -> tuple[str, str]:
    srv = box.add_netns("dsrv")
    run_quiet(["ip", "link", "add", DEV, "type", "veth", "peer", "name", PEER, "netns", srv])
    run_quiet(["ip", "addr", "add", f"{PROXY_SIDE}/24", "dev", DEV])
    run_quiet(["ip", "link", "set", DEV, "up"])
    for addr in (S1, S2):
        run_quiet(["ip", "-n", srv, "addr", "add", f"{addr}/24", "dev", PEER])
    run_quiet(["ip", "-n", srv, "link", "set", PEER, "up"])
    run_quiet(["ip", "addr", "add", f"{VIP}/32", "dev", "lo"], check=False)
    mac = json.loads(run_quiet(["ip", "-n", srv, "-j", "link", "show", PEER]).stdout)[0]["address"]
    for addr in (S1, S2):
        _neigh(addr, mac)
    return srv, mac


def _neigh(addr: str, mac: str) -> None:
    run_quiet(["ip", "neigh", "replace", addr, "lladdr", mac, "dev", DEV, "nud", "permanent"])


class _Proxy:
    """One proxy as ocsscale's driver configures it, and its own view of s1."""

    def __init__(self, box: Sandbox, kind: str, farm: FarmSpec) -> None:
        self.box, self.kind = box, kind
        self.socket = box.tmp / f"detect-{kind}.sock"
        site = LbSite(fqdn="detect.bench.invalid", farm=farm)
        if kind == "haproxy":
            settings = HaproxySettings(
                kind="haproxy",
                config_path=str(box.tmp / "detect-haproxy.cfg"),
                runtime_socket=str(self.socket),
                state_file=str(box.tmp / "detect-haproxy.state"),
                user=None,
                group=None,
            )
            text = HaproxyDriver(settings, site, Ports(_no_host)).render_config(farm)
            path = Path(settings.config_path)
            path.write_text(text)
            self.proc = box.start("detect-haproxy", ["haproxy", "-db", "-f", str(path)])
        else:
            engine = EngineSettings(kind="engine", admin_socket=str(self.socket))
            text = EngineDriver(engine, site, Ports(_no_host)).render_farm(farm)
            path = box.tmp / "detect-engine.yaml"
            path.write_text(text)
            self.proc = box.start(
                "detect-engine",
                [PYTHON, "-m", "ocsscale.engine", "serve", "--farm", str(path)],
                cwd=str(REPO),
                env=dict(os.environ),
            )
        self.config = text
        try:
            wait_for_port(VIP, OTHER_PORT, 20, self.proc)
        except BenchError as exc:
            raise BenchError(f"{exc}\n{box.log_tail(f'detect-{kind}')}") from None

    def s1_up(self) -> bool | None:
        """s1's health in the proxy's own view (None: not known yet)."""
        if self.kind == "engine":
            return is_up(server_states(admin_json(self.socket, "/status"))["s1"])
        rows = hx.stat_rows(_haproxy_api(self.socket, "show stat"))
        for row in rows:
            if row.get("pxname") == hx.HEALTH_BACKEND and row.get("svname") == "s1":
                health = hx.port_health(row.get("status", ""))
                return None if health == "unknown" else health == "up"
        return None

    def wait_s1(self, up: bool, limit: float) -> float | None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            try:
                if self.s1_up() is up:
                    return time.monotonic() - t0
            except OSError:
                pass  # the socket is not there yet
            time.sleep(POLL)
        return None

    def stop(self) -> None:
        self.box.stop(self.proc)


def _haproxy_api(path: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(command.encode() + b"\n")
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def _summary(delays: list[float], backs: list[float], misses: int, bound: float) -> dict[str, Any]:
    ordered = sorted(delays)
    p95 = ordered[max(0, -(-len(ordered) * 95 // 100) - 1)] if ordered else None
    return {
        "trials": len(delays) + misses,
        "not_out_within_s": {"limit": DOWN_LIMIT, "count": misses},
        "median_s": round(statistics.median(ordered), 3) if ordered else None,
        "p95_s": None if p95 is None else round(p95, 3),
        "max_s": round(max(ordered), 3) if ordered else None,
        "delays_s": [round(d, 3) for d in delays],
        "back_median_s": round(statistics.median(backs), 3) if backs else None,
        "bound_s": bound,
        "target_s": 2.0,
        "met": not misses and bool(ordered) and max(ordered) <= 2.0,
    }


def run_detect(box: Sandbox, trials: int, log: Any) -> dict[str, Any]:
    defaults = LbChecks()
    checks = CheckTiming.from_checks(defaults)
    farm = _farm(checks)
    srv, mac = _setup_network(box)
    listen = ",".join(f"{a}:{p}" for a in (S1, S2) for p in farm.ports)
    server = Holder(box, "detect-server", ["server", "--listen", listen], cpu=None, netns=srv)
    server.read_event(10)
    faults = {
        "service-stop": (
            lambda: server.command(f"close {S1}:{CHECK_PORTS[0]}"),
            lambda: server.command(f"open {S1}:{CHECK_PORTS[0]}"),
            round(checks.fall * checks.interval, 3),
        ),
        "link-cut": (
            lambda: _neigh(S1, NOBODY_MAC),
            lambda: _neigh(S1, mac),
            defaults.out_within(),
        ),
    }
    out: dict[str, Any] = {"checks": checks.view(), "faults": {}}
    try:
        for kind in ("haproxy", "engine"):
            proxy = _Proxy(box, kind, farm)
            try:
                if proxy.wait_s1(True, UP_LIMIT) is None:
                    raise BenchError(f"{kind}: s1 was not up within {UP_LIMIT:.0f} s of the start")
                for fault, (inject, restore, bound) in faults.items():
                    delays, backs, misses = [], [], 0
                    for _ in range(trials):
                        time.sleep(random.uniform(0.3, 0.8))  # a random point of a check cycle
                        t0 = time.monotonic()
                        inject()
                        took = proxy.wait_s1(False, DOWN_LIMIT)
                        if took is None:
                            misses += 1
                        else:
                            delays.append(time.monotonic() - t0)
                        restore()
                        back = proxy.wait_s1(True, UP_LIMIT)
                        if back is None:
                            raise BenchError(f"{kind}: s1 not back within {UP_LIMIT:.0f} s")
                        backs.append(back)
                    row = _summary(delays, backs, misses, bound)
                    out["faults"].setdefault(fault, {})[kind] = row
                    log(
                        f"  {kind:8} {fault:13} median {row['median_s']} s, p95 {row['p95_s']} s, "
                        f"max {row['max_s']} s over {row['trials']} trials (bound by the "
                        f"checks {bound} s; not out within {DOWN_LIMIT:.0f} s: {misses})"
                    )
            finally:
                proxy.stop()
    finally:
        _neigh(S1, mac)
        server.stop()
    return out
