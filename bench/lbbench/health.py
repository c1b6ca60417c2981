"""Detection: how fast the engine, on its default health settings, takes a server out.

Topology: the servers live in a second namespace behind a veth pair, at 198.18.4.2
(s1, the victim) and 198.18.4.3 (s2); the engine runs in the benchmark's namespace,
reaching them from 198.18.4.1. Faults, none touching any firewall:
- refuse: the holder closes s1's check-port listener, so checks get a reset;
- blackhole: the engine's neighbour entry for s1 is pointed at a MAC nobody owns,
  so every packet to s1 silently vanishes (SYNs time out);
- one lost check: the blackhole is held only while exactly one check is in flight
  (seen as a SYN-SENT socket to s1's check port) and lifted as soon as it times out.
"""

from __future__ import annotations

import json
import random
import socket
import statistics
import time
from pathlib import Path
from typing import Any

from .conns import Holder
from .procs import BenchError, Sandbox, run_quiet
from .proxies import FarmSpec, Proxy, admin_json, is_up, server_states, start_proxy

VIP = "127.0.10.1"
CHECK_PORT, OTHER_PORT = 8080, 8081
ENGINE_SIDE, S1, S2 = "198.18.4.1", "198.18.4.2", "198.18.4.3"
NOBODY_MAC = "02:00:5e:00:53:99"
POLL = 0.01


def _setup_network(box: Sandbox) -> tuple[str, str]:
    srv = box.add_netns("srv")
    run_quiet(["ip", "link", "add", "ocsb0", "type", "veth", "peer", "name", "ocsb1", "netns", srv])
    run_quiet(["ip", "addr", "add", f"{ENGINE_SIDE}/24", "dev", "ocsb0"])
    run_quiet(["ip", "link", "set", "ocsb0", "up"])
    for addr in (S1, S2):
        run_quiet(["ip", "-n", srv, "addr", "add", f"{addr}/24", "dev", "ocsb1"])
    run_quiet(["ip", "-n", srv, "link", "set", "ocsb1", "up"])
    info = json.loads(run_quiet(["ip", "-n", srv, "-j", "link", "show", "ocsb1"]).stdout)
    mac = info[0]["address"]
    for addr in (S1, S2):
        _neigh(addr, mac)
    return srv, mac


def _neigh(addr: str, mac: str) -> None:
    run_quiet(["ip", "neigh", "replace", addr, "lladdr", mac, "dev", "ocsb0", "nud", "permanent"])


def _s1_up(proxy: Proxy) -> bool:
    assert proxy.admin_socket is not None
    return is_up(server_states(admin_json(proxy.admin_socket, "/status"))["s1"])


def _wait_s1(proxy: Proxy, up: bool, timeout: float) -> float | None:
    """Seconds until s1's health equals `up`, polled every 10 ms; None on timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if _s1_up(proxy) == up:
            return time.monotonic() - t0
        time.sleep(POLL)
    return None


def _all_to_s2(server: Holder, count: int = 4) -> bool:
    """New connections on the non-check port land on s2 only (s1 is out of every port)."""
    before = server.command("status")["accepted"]
    socks = []
    try:
        for _ in range(count):
            socks.append(socket.create_connection((VIP, OTHER_PORT), timeout=3))
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            after = server.command("status")["accepted"]
            got = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            if got.get(f"{S2}:{OTHER_PORT}", 0) >= count:
                return got.get(f"{S1}:{OTHER_PORT}", 0) == 0
            time.sleep(0.05)
        return False
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def _syn_sent_to_s1_check() -> set[int]:
    """Local ports of our namespace's sockets in SYN-SENT towards s1's check port."""
    want = f"{int.from_bytes(socket.inet_aton(S1), 'little'):08X}:{CHECK_PORT:04X}"
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if f[2] == want and f[3] == "02":
            ports.add(int(f[1].split(":")[1], 16))
    return ports


def run_detection(box: Sandbox, trials: int, lost_trials: int, log: Any) -> dict[str, Any]:
    srv, mac = _setup_network(box)
    listen = ",".join(f"{a}:{p}" for a in (S1, S2) for p in (CHECK_PORT, OTHER_PORT))
    server = Holder(box, "detect-server", ["server", "--listen", listen], netns=srv)
    server.read_event(10)
    spec = FarmSpec(
        name="detect",
        vips=[VIP],
        ports=[CHECK_PORT, OTHER_PORT],
        servers=[
            {"name": "s1", "address": S1, "weight": 1},
            {"name": "s2", "address": S2, "weight": 1},
        ],
        snat=[ENGINE_SIDE],
        check_port=CHECK_PORT,  # and nothing else: the engine's default timing
    )
    proxy = start_proxy(box, "engine", spec, None, "engine-detect")
    out: dict[str, Any] = {}
    try:
        out["refuse"] = _fault_trials(
            proxy,
            server,
            trials,
            1.0,
            inject=lambda: server.command(f"close {S1}:{CHECK_PORT}"),
            restore=lambda: server.command(f"open {S1}:{CHECK_PORT}"),
        )
        log(f"  refusing check port: p95 {out['refuse']['p95_s']:.3f} s over {trials} trials")
        out["blackhole"] = _fault_trials(
            proxy,
            server,
            trials,
            2.0,
            inject=lambda: _neigh(S1, NOBODY_MAC),
            restore=lambda: _neigh(S1, mac),
        )
        log(f"  blackholed server:  p95 {out['blackhole']['p95_s']:.3f} s over {trials} trials")
        out["one_lost_check"] = _lost_check_trials(proxy, mac, lost_trials)
        lc = out["one_lost_check"]
        log(
            f"  one lost check: {lc['trials_with_exactly_one_lost']} clean trials, "
            f"server taken out in {lc['false_downs']}"
        )
    finally:
        _neigh(S1, mac)
        box.stop(proxy.proc)
        server.stop()
    return out


def _fault_trials(
    proxy: Proxy, server: Holder, trials: int, target: float, inject: Any, restore: Any
) -> dict[str, Any]:
    delays: list[float] = []
    misses = 0
    out_everywhere = 0
    for _ in range(trials):
        if _wait_s1(proxy, True, 15) is None:
            raise BenchError("s1 did not come back up within 15 s between trials")
        time.sleep(random.uniform(0.3, 0.6))  # land the fault at a random point of a cycle
        t0 = time.monotonic()  # taken before the fault, so the figure errs on the slow side
        inject()
        if _wait_s1(proxy, False, 10) is None:
            misses += 1
        else:
            delays.append(time.monotonic() - t0)
            out_everywhere += _all_to_s2(server)
        restore()
    return _delay_summary(delays, misses, trials, target) | {
        "trials_out_of_every_port": out_everywhere,
    }


def _delay_summary(delays: list[float], misses: int, trials: int, target: float) -> dict[str, Any]:
    ordered = sorted(delays)
    p95 = ordered[max(0, -(-len(ordered) * 95 // 100) - 1)] if ordered else float("inf")
    if misses:
        p95 = float("inf")  # a server never taken out fails the target outright
    return {
        "trials": trials,
        "not_detected_within_10s": misses,
        "p95_s": round(p95, 3),
        "median_s": round(statistics.median(ordered), 3) if ordered else None,
        "max_s": round(max(ordered), 3) if ordered else None,
        "delays_s": [round(d, 3) for d in delays],
        "target_s": target,
        "met": p95 <= target,
    }


def _lost_check_trials(proxy: Proxy, mac: str, trials: int) -> dict[str, Any]:
    rows = []
    for _ in range(trials * 3):  # a trial where two checks got lost is not counted
        if len([r for r in rows if r["lost_checks"] == 1]) >= trials:
            break
        if _wait_s1(proxy, True, 15) is None:
            raise BenchError("s1 did not come back up within 15 s between trials")
        time.sleep(random.uniform(0.3, 0.6))
        rows.append(_one_lost_check(proxy, mac))
    clean = [r for r in rows if r["lost_checks"] == 1]
    return {
        "trials_with_exactly_one_lost": len(clean),
        "trials_discarded": len(rows) - len(clean),
        "false_downs": sum(r["went_down"] for r in clean),
        "met": bool(clean) and len(clean) >= trials and not any(r["went_down"] for r in clean),
        "rows": rows,
    }


def _one_lost_check(proxy: Proxy, mac: str) -> dict[str, Any]:
    seen: set[int] = set()
    went_down = False
    _neigh(S1, NOBODY_MAC)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # wait for one check to be caught in flight
            now = _syn_sent_to_s1_check()
            if now:
                seen |= now
                break
            time.sleep(0.002)
        while time.monotonic() < deadline:  # ... and for it to time out
            now = _syn_sent_to_s1_check()
            seen |= now
            if not now:
                break
            went_down = went_down or not _s1_up(proxy)
            time.sleep(0.002)
    finally:
        _neigh(S1, mac)
    t_end = time.monotonic() + 2.0  # then watch: the server must stay in
    while time.monotonic() < t_end:
        went_down = went_down or not _s1_up(proxy)
        time.sleep(POLL)
    return {"lost_checks": len(seen), "went_down": went_down}
