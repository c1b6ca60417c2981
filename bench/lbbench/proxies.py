"""The two proxies under test (the engine and HAProxy) and the nginx backend.

Both proxies get the same farm: VIP, ports, servers with weights, weighted least
connections, one SNAT address, the same timeouts and the same health-check timing
(the engine's defaults, copied into HAProxy's `default-server` line).
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from .procs import BenchError, Sandbox, wait_for_port

REPO = Path(__file__).resolve().parents[2]
PYTHON = str(REPO / ".venv" / "bin" / "python")
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(REPO / "bench" / "templates")),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)

# The engine's default health timing (ocsscale/engine/farm.py), mirrored for HAProxy.
ENGINE_HEALTH_DEFAULTS = {
    "inter": 0.25,
    "fastinter": 0.1,
    "downinter": 1.0,
    "fall": 2,
    "rise": 2,
    "timeout": 0.5,
}


# What the engine said about itself at its last start (its event loop), for the report.
ENGINE_SEEN: dict[str, str] = {}
# Extra environment for the engine (OCSSCALE_ENGINE_LOOP=asyncio from --engine-loop).
ENGINE_ENV: dict[str, str] = {}


@dataclass
class FarmSpec:
    name: str
    vips: list[str]
    ports: list[int]
    servers: list[dict[str, Any]]  # {name, address, weight}
    snat: list[str]
    check_port: int | None = None
    health: dict[str, float] = field(default_factory=dict)  # overrides only
    workers: int = 1
    # hard_stop_after 0: the benchmark stops a proxy between runs with SIGTERM, and a
    # stop must not wait out the engine's default 30 s grace for a straggler session.
    timeouts: dict[str, float] = field(
        default_factory=lambda: {"idle": 1800, "connect": 5, "half_close": 30, "hard_stop_after": 0}
    )


def engine_farm_yaml(spec: FarmSpec, admin_socket: Path) -> str:
    """The farm file in the engine's documented format (JSON is valid YAML)."""
    doc: dict[str, Any] = {
        "farm": spec.name,
        "vip": spec.vips,
        "ports": spec.ports,
        "balance": "wlc",
        "servers": [{**s, "state": "ready"} for s in spec.servers],
        "snat": {"addresses": spec.snat},
        "timeouts": spec.timeouts,
        "admin": {"socket": str(admin_socket)},
        "workers": spec.workers,
    }
    if spec.check_port is not None:
        doc["health"] = {"ports": [spec.check_port], "kind": "tcp", **spec.health}
    return json.dumps(doc, indent=2) + "\n"


def haproxy_cfg(spec: FarmSpec, maxconn: int) -> str:
    health = {**ENGINE_HEALTH_DEFAULTS, **spec.health, "port": spec.check_port}
    return TEMPLATES.get_template("haproxy.cfg.j2").render(
        farm=spec.name,
        threads=spec.workers,
        maxconn=maxconn,
        timeouts=spec.timeouts,
        health=health,
        vips=spec.vips,
        ports=spec.ports,
        servers=spec.servers,
        snat=spec.snat,
    )


# -- admin API over the Unix socket ----------------------------------------------------
# Above the engine's own 1 s wait for its workers' figures (status, metrics), with room
# for a master busy with a burst of connections.
def admin_get(sock_path: Path, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: engine\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return status, body


def _dechunk(body: bytes) -> bytes:
    out, rest = bytearray(), body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2 :]
    return bytes(out)


def admin_json(sock_path: Path, path: str) -> Any:
    status, body = admin_get(sock_path, path)
    if status != 200:
        raise BenchError(f"engine admin {path}: HTTP {status}: {body[:200]!r}")
    return json.loads(body)


def server_states(status: Any) -> dict[str, dict[str, Any]]:
    """Server name -> its record from /status, whether the engine lists or maps them."""
    servers = status.get("servers", status) if isinstance(status, dict) else status
    if isinstance(servers, dict):
        return {name: rec for name, rec in servers.items() if isinstance(rec, dict)}
    return {rec["name"]: rec for rec in servers if isinstance(rec, dict) and "name" in rec}


def is_up(record: dict[str, Any]) -> bool:
    """Whether the engine would send new connections to this server by health."""
    for key in ("healthy", "up"):
        if isinstance(record.get(key), bool):
            return bool(record[key])
    for key in ("health", "check_state"):
        value = record.get(key)
        if isinstance(value, str):
            return value.lower() in ("up", "ok", "healthy")
        if isinstance(value, dict) and "state" in value:
            return str(value["state"]).lower() in ("up", "ok", "healthy")
    raise BenchError(f"cannot tell health from the engine's /status record: {record}")


# -- starting them -----------------------------------------------------------------------
@dataclass
class Proxy:
    kind: str  # "engine" or "haproxy"
    proc: subprocess.Popen[bytes]
    admin_socket: Path | None

    @property
    def pid(self) -> int:
        return self.proc.pid


def start_engine(box: Sandbox, spec: FarmSpec, cpu: int | str | None, tag: str) -> Proxy:
    admin = box.tmp / f"{tag}.sock"
    farm = box.tmp / f"{tag}.farm.yaml"
    farm.write_text(engine_farm_yaml(spec, admin))
    proc = box.start(
        tag,
        [PYTHON, "-m", "ocsscale.engine", "serve", "--farm", str(farm)],
        cpu=cpu,
        cwd=str(REPO),
        env={**os.environ, **ENGINE_ENV},
    )
    proxy = Proxy("engine", proc, admin)
    try:
        wait_engine_ready(box, proxy, tag, spec)
    except BenchError as exc:
        raise BenchError(f"{exc}\nengine log ({tag}):\n{box.log_tail(tag)}") from None
    return proxy


def wait_engine_ready(box: Sandbox, proxy: Proxy, tag: str, spec: FarmSpec) -> None:
    assert proxy.admin_socket is not None
    deadline = time.monotonic() + 20
    last = "no answer"
    while time.monotonic() < deadline:
        if proxy.proc.poll() is not None:
            raise BenchError(f"engine exited with code {proxy.proc.returncode} at start")
        try:
            states = server_states(admin_json(proxy.admin_socket, "/status"))
            if spec.check_port is None or all(is_up(r) for r in states.values()):
                break
            last = json.dumps(states)[:300]
        except (OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.05)
    else:
        raise BenchError(f"engine not ready within 20 s ({last})")
    wait_for_port(spec.vips[0], spec.ports[0], 10, proxy.proc)
    ENGINE_SEEN["loop"] = str(admin_json(proxy.admin_socket, "/status").get("loop", "unknown"))


def start_haproxy(
    box: Sandbox, spec: FarmSpec, cpu: int | str | None, tag: str, maxconn: int
) -> Proxy:
    cfg = box.tmp / f"{tag}.cfg"
    cfg.write_text(haproxy_cfg(spec, maxconn))
    check = subprocess.run(["haproxy", "-c", "-q", "-f", str(cfg)], capture_output=True, text=True)
    if check.returncode != 0:
        raise BenchError(f"haproxy rejected {cfg}: {check.stderr.strip()}")
    proc = box.start(tag, ["haproxy", "-db", "-f", str(cfg)], cpu=cpu)
    try:
        wait_for_port(spec.vips[0], spec.ports[0], 10, proc)
    except BenchError as exc:
        raise BenchError(f"{exc}\nhaproxy log:\n{box.log_tail(tag)}") from None
    # Let the first round of checks finish so both proxies start with servers up.
    time.sleep(max(0.5, ENGINE_HEALTH_DEFAULTS["inter"] * 3))
    return Proxy("haproxy", proc, None)


def start_proxy(
    box: Sandbox,
    kind: str,
    spec: FarmSpec,
    cpu: int | str | None,
    tag: str,
    maxconn: int | None = None,
) -> Proxy:
    if kind == "engine":
        return start_engine(box, spec, cpu, tag)
    if maxconn is None:  # HAProxy refuses to start if maxconn needs more fds than allowed
        maxconn = (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1000) // 2
    return start_haproxy(box, spec, cpu, tag, maxconn)


def start_nginx(box: Sandbox, listen: list[str], cpu: int | None) -> subprocess.Popen[bytes]:
    conf = box.tmp / "nginx.conf"
    conf.write_text(TEMPLATES.get_template("nginx.conf.j2").render(tmp=box.tmp, listen=listen))
    proc = box.start(
        "nginx", ["nginx", "-c", str(conf), "-p", str(box.tmp), "-g", "daemon off;"], cpu=cpu
    )
    host, port = listen[0].rsplit(":", 1)
    wait_for_port(host, int(port), 10, proc)
    return proc
