"""Third-party load tools (wrk, iperf3): run pinned, parse what they print."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass

from .procs import BenchError

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def require(tool: str) -> None:
    if shutil.which(tool) is None:
        raise BenchError(f"{tool} is not installed: apt-get install -y {tool}")


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class WrkResult:
    requests_per_s: float
    requests: int
    latency_ms: dict[str, float]  # p50, p75, p90, p99
    socket_errors: dict[str, int]
    non_2xx: int

    @property
    def error_count(self) -> int:
        return sum(self.socket_errors.values()) + self.non_2xx


def parse_wrk(out: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not rps or not total:
        raise BenchError(f"could not read wrk's output:\n{out[-800:]}")
    latency = {
        f"p{pct}": _ms(val) for pct, val in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)
    }
    errors: dict[str, int] = {}
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True)
        )
    non2 = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        requests=int(total.group(1)),
        latency_ms=latency,
        socket_errors=errors,
        non_2xx=int(non2.group(1)) if non2 else 0,
    )


def run_wrk(
    url: str, seconds: float, connections: int, cpu: int | None, close: bool = False
) -> WrkResult:
    """One wrk run; with close=True every request is a new TCP connection end to end."""
    require("wrk")
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(url)
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return parse_wrk(proc.stdout)


@dataclass
class IperfResult:
    bytes_received: int
    seconds: float
    gbit_per_s: float


def run_iperf3(host: str, port: int, seconds: float, cpu: int | None) -> IperfResult:
    require("iperf3")
    argv = ["iperf3", "-c", host, "-p", str(port), "-t", str(max(1, round(seconds))), "-J"]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise BenchError(f"iperf3 gave no JSON: {proc.stderr.strip()[-400:]}") from None
    if "error" in doc:
        raise BenchError(f"iperf3: {doc['error']}")
    recv = doc["end"]["sum_received"]
    return IperfResult(
        bytes_received=int(recv["bytes"]),
        seconds=float(recv["seconds"]),
        gbit_per_s=float(recv["bits_per_second"]) / 1e9,
    )


def tool_version(argv: list[str], pattern: str) -> str:
    exe = shutil.which(argv[0])
    if exe is None:
        return "not installed"
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    m = re.search(pattern, proc.stdout + proc.stderr)
    return m.group(1) if m else (proc.stdout + proc.stderr).strip().splitlines()[0]
