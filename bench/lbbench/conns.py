"""Connection-count scenarios: RSS per idle proxied connection, and the SNAT scale limit.

Idle connections are opened by holder.py (separate processes, so their memory is not
the proxy's), spread over several client source addresses in 127/8, and accepted by
holders on the server side, which witness that a connection went all the way.

One process can hold only RLIMIT_NOFILE sockets. Where the benchmark may not raise
that limit (a container without CAP_SYS_RESOURCE), holders are split into several
processes and the engine gets enough worker processes for the count.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .procs import BenchError, Sandbox, rss_bytes
from .proxies import PYTHON, FarmSpec, admin_json, start_proxy

HOLDER = str(Path(__file__).with_name("holder.py"))
LOAD_CPU = 1
PROXY_CPU = 0
VIP = "127.0.10.1"


@dataclass
class MemoryPlan:
    same_count: int  # engine and HAProxy side by side, one process each
    engine_count: int  # the engine alone (the 4 kB target is stated at 50,000)
    fd_limit: int


class Holder:
    """A holder.py process driven over stdin/stdout JSON lines."""

    def __init__(
        self,
        box: Sandbox,
        name: str,
        args: list[str],
        cpu: int | None = LOAD_CPU,
        netns: str | None = None,
    ) -> None:
        self.box, self.name = box, name
        self.proc = box.start(
            name,
            [PYTHON, HOLDER, *args],
            cpu=cpu,
            netns=netns,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        self._buf = b""

    def read_event(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(left):
                raise BenchError(f"{self.name}: no answer within {timeout:.0f} s")
            assert self.proc.stdout is not None
            chunk = self.proc.stdout.read1(65536)  # type: ignore[attr-defined]
            if not chunk:
                raise BenchError(f"{self.name} exited: {self.box.log_tail(self.name, 5)}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def command(self, cmd: str, timeout: float = 10.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd.encode() + b"\n")
        self.proc.stdin.flush()
        while True:
            event = self.read_event(timeout)
            if event.get("event") == "status":
                return event

    def stop(self) -> None:
        self.box.stop(self.proc)


class HolderGroup:
    """Several holders sharing one job: servers share their ports through SO_REUSEPORT,
    clients split the count ("{count}" in the arguments becomes each one's share)."""

    def __init__(
        self, box: Sandbox, name: str, args: list[str], count: int, per_process: int
    ) -> None:
        n = max(1, -(-count // per_process))
        self.members: list[Holder] = []
        for i in range(n):
            share = count // n + (1 if i < count % n else 0)
            member_args = [str(share) if a == "{count}" else a for a in args]
            self.members.append(Holder(box, f"{name}-{i}", member_args))

    def read_events(self, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        return [m.read_event(max(1.0, deadline - time.monotonic())) for m in self.members]

    def command(self, cmd: str) -> dict[str, Any]:
        """The members' status answers, summed."""
        total: dict[str, Any] = {"open": 0, "closed_by_peer": 0, "open_per": {}, "accepted": {}}
        for m in self.members:
            st = m.command(cmd)
            total["open"] += st.get("open", 0)
            total["closed_by_peer"] += st.get("closed_by_peer", 0)
            for key in ("open_per", "accepted"):
                for k, v in st.get(key, {}).items():
                    total[key][k] = total[key].get(k, 0) + v
        return total

    def stop(self) -> None:
        for m in self.members:
            m.stop()


def merge_connected(events: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "attempted": 0,
        "connected": 0,
        "open": 0,
        "closed_by_peer": 0,
        "errors": {},
        "seconds": 0.0,
    }
    for ev in events:
        for key in ("attempted", "connected", "open", "closed_by_peer"):
            out[key] += ev[key]
        out["seconds"] = max(out["seconds"], ev["seconds"])
        for k, v in ev["errors"].items():
            out["errors"][k] = out["errors"].get(k, 0) + v
    return out


def budget(fd_limit: int) -> tuple[int, int]:
    """(connections one holder process may hold, connections one engine worker may
    proxy), leaving room for SO_REUSEPORT's uneven spread and for checks."""
    return int(fd_limit * 0.7), int(fd_limit * 0.7) // 2


def workers_for(count: int, fd_limit: int) -> int:
    return max(1, -(-count // budget(fd_limit)[1]))


def _open_on(status: dict[str, Any], port: int) -> int:
    return sum(n for name, n in status["open_per"].items() if name.endswith(f":{port}"))


def _wait_stable(
    server: HolderGroup, port: int, want: int | None, timeout: float, quiet: float = 1.0
) -> int:
    """Server-side open count once it reaches `want` or has not changed for `quiet` s."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = _open_on(server.command("status"), port)
        if want is not None and now == want:
            return now
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
        time.sleep(0.5)
    return last


def run_memory(box: Sandbox, plan: MemoryPlan, log: Any) -> dict[str, Any]:
    """RSS per idle connection: engine and HAProxy side by side at a count one process
    can hold, and the engine alone at `plan.engine_count` (with more workers if needed)."""
    port, check = 9000, 9001
    addrs = [f"127.0.20.{i}" for i in range(1, 5)]
    listen = ",".join(f"{a}:{p}" for a in addrs for p in (port, check))
    biggest = max(plan.same_count, plan.engine_count)
    server = HolderGroup(
        box, "idle-server", ["server", "--listen", listen], biggest, budget(plan.fd_limit)[0]
    )
    server.read_events(10)
    results: dict[str, Any] = {"fd_limit_per_process": plan.fd_limit}
    try:
        runs = [("engine", plan.same_count, 1), ("haproxy", plan.same_count, 1)]
        if plan.engine_count != plan.same_count:
            workers = workers_for(plan.engine_count, plan.fd_limit)
            runs.append(("engine", plan.engine_count, workers))
        for kind, count, workers in runs:
            spec = FarmSpec(
                name="idle",
                vips=[VIP],
                ports=[port],
                servers=[
                    {"name": f"s{i}", "address": a, "weight": 1} for i, a in enumerate(addrs, 1)
                ],
                snat=["127.0.30.1"],
                check_port=check,
                workers=workers,
            )
            key = kind if count == plan.same_count else f"{kind}_at_{count}"
            try:
                r = _memory_one(box, kind, spec, server, count, port, plan.fd_limit)
            except BenchError as exc:
                results[key] = {"error": str(exc), "workers": workers}
                log(f"  {kind:7} ({workers} worker(s)) at {count}: could not run: {exc}")
                continue
            results[key] = r | {"connections_wanted": count, "workers": workers}
            log(
                f"  {kind:7} ({workers} worker(s)): {r['held']} idle connections, "
                f"{r['bytes_per_conn']:.0f} B RSS each "
                f"({r['rss_before_mb']:.1f} -> {r['rss_after_mb']:.1f} MB)"
            )
    finally:
        server.stop()
    return results


def _memory_one(
    box: Sandbox,
    kind: str,
    spec: FarmSpec,
    server: HolderGroup,
    count: int,
    port: int,
    fd_limit: int,
) -> dict[str, Any]:
    tag = f"{kind}-idle-{count}"
    proxy = start_proxy(box, kind, spec, PROXY_CPU, tag, maxconn=(fd_limit - 1000) // 2)
    client: HolderGroup | None = None
    try:
        time.sleep(1.0)
        rss0 = rss_bytes(proxy.pid)
        client = HolderGroup(
            box,
            f"{tag}-client",
            ["client", "--dest", f"{VIP}:{port}", "--sources", "127.0.40.1-4"]
            + ["--count", "{count}", "--timeout", "240"],
            count,
            budget(fd_limit)[0],
        )
        connected = merge_connected(client.read_events(300))
        held = _wait_stable(server, port, connected["open"], 60)
        time.sleep(1.0)  # let the proxy finish whatever it does per new connection
        rss1 = rss_bytes(proxy.pid)
        client_open = client.command("status")["open"]
        return {
            "client": connected,
            "held": held,
            "client_open": client_open,
            "rss_before_mb": round(rss0 / 2**20, 2),
            "rss_after_mb": round(rss1 / 2**20, 2),
            "bytes_per_conn": (rss1 - rss0) / held if held else float("inf"),
        }
    finally:
        if client is not None:
            client.stop()
        _wait_stable(server, port, 0, 60)
        box.stop(proxy.proc)


def run_scale(
    box: Sandbox, count: int, port_range: str, fd_limit: int, cap_s: float, log: Any
) -> dict[str, Any]:
    """One SNAT address must refuse beyond its port range; two must carry all `count`."""
    port, check = 9100, 9101
    range_file = Path("/proc/sys/net/ipv4/ip_local_port_range")
    saved = range_file.read_text()
    range_file.write_text(port_range)
    lo, hi = map(int, port_range.split())
    server = HolderGroup(
        box,
        "scale-server",
        ["server", "--listen", f"127.0.20.1:{port},127.0.20.1:{check}"],
        count,
        budget(fd_limit)[0],
    )
    workers = workers_for(count, fd_limit)
    results: dict[str, Any] = {
        "connections_wanted": count,
        "ports_per_snat_address": hi - lo + 1,
        "engine_workers": workers,
        "cap_s": cap_s,
    }
    try:
        server.read_events(10)
        # Two addresses first: it is the cheap one. With one address the kernel must
        # search an ever fuller port range on every connect (see README).
        for n in (2, 1):
            spec = FarmSpec(
                name="scale",
                vips=[VIP],
                ports=[port],
                servers=[{"name": "s1", "address": "127.0.20.1", "weight": 1}],
                snat=[f"127.0.30.{i}" for i in range(1, n + 1)],
                check_port=check,
                workers=workers,
            )
            row = _scale_one(box, spec, server, count, port, fd_limit, cap_s)
            results[f"snat_{n}"] = row
            log(
                f"  {n} SNAT address(es), {workers} worker(s): {row['server_side_open']} of "
                f"{count} reached the server, {row['refused']} refused, "
                f"engine RSS {row['engine_rss_mb']:.0f} MB"
            )
    finally:
        server.stop()
        range_file.write_text(saved)
    one, two = results["snat_1"], results["snat_2"]
    results["met"] = bool(
        one["server_side_open"] < count
        and one["refused"] > 0
        and two["server_side_open"] == count
        and count > results["ports_per_snat_address"]
    )
    return results


def _scale_one(
    box: Sandbox,
    spec: FarmSpec,
    server: HolderGroup,
    count: int,
    port: int,
    fd_limit: int,
    cap_s: float,
) -> dict[str, Any]:
    tag = f"engine-scale-{len(spec.snat)}"
    proxy = start_proxy(box, "engine", spec, PROXY_CPU, tag)
    client: HolderGroup | None = None
    try:
        client = HolderGroup(
            box,
            f"{tag}-client",
            ["client", "--dest", f"{VIP}:{port}", "--sources", "127.0.40.1-8"]
            + ["--count", "{count}", "--timeout", "300"],
            count,
            budget(fd_limit)[0],
        )
        connected = merge_connected(client.read_events(360))
        # Near a full port range the kernel's search for a free source port gets slow,
        # so the engine may still be connecting long after the clients got in: wait
        # until nothing has moved for 10 s, at most cap_s.
        t0 = time.monotonic()
        reached = _wait_stable(server, port, count, cap_s, quiet=10.0)
        waited = time.monotonic() - t0
        time.sleep(1.0)
        status = client.command("status")
        try:
            engine = admin_json(proxy.admin_socket, "/status") if proxy.admin_socket else {}
        except (OSError, BenchError, ValueError) as exc:  # a busy engine may not answer
            engine = {"snat": f"admin /status unanswered: {exc}"}
        return {
            "client": connected,
            "server_side_open": reached,
            "client_open": status["open"],
            # Refused = the engine accepted and then closed (a clean refusal), or the
            # client never got in at all; neither was carried.
            "refused": status["closed_by_peer"] + sum(connected["errors"].values()),
            "waited_s": round(waited, 1),
            "still_connecting": status["open"] - reached,
            "engine_snat": engine.get("snat"),
            "engine_rss_mb": round(rss_bytes(proxy.pid) / 2**20, 1),
            "engine_event_kinds": _event_kinds(proxy.admin_socket),
            "engine_alive": proxy.proc.poll() is None,
        }
    finally:
        if client is not None:
            client.stop()
        _wait_stable(server, port, 0, 90)
        box.stop(proxy.proc)


def _event_kinds(sock: Path | None) -> dict[str, Any]:
    if sock is None:
        return {}
    try:
        doc = admin_json(sock, "/events")
    except (OSError, BenchError, ValueError) as exc:
        return {"unreadable": str(exc)}
    events = doc.get("events", doc) if isinstance(doc, dict) else doc
    kinds: dict[str, Any] = {}
    for ev in events if isinstance(events, list) else []:
        key = str(ev.get("kind", "?"))
        kinds[key] = kinds.get(key, 0) + int(ev.get("count", 1) or 1)
    return kinds
