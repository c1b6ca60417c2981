"""Faults a lab can be built with (`lab up --fault HOST:KIND`), to rehearse failures.

- `FE:bad-san`: the front end's certificate is issued with wrong SANs (its
  own FQDN is missing), so the configure-fe gate's `cert.san` rule fails.
- `FE:close:PORT`: the front end's pool member leaves PORT (a profile port)
  closed, as a stopped service would.
- `FE:tls10`: the front end speaks only TLS 1.0 with a SHA-1 signed
  certificate, as OCS 2007 R2 on Windows Server 2003/2008 does: its TLS probes
  fail unless the pool file sets `legacy_tls` for it.
- `FE:tls10-3des`: TLS 1.0 with DES-CBC3-SHA only and a SHA-1 signed (RSA)
  certificate, as Windows Server 2003 without the AES update offers: the same,
  and only `legacy_tls`'s 3DES path (probes/tls3des.py) can speak to it.
- `CLIENT:hosts-readonly`: the client's hosts file cannot be written. On a
  Linux host its sshd runs with /etc/hosts re-mounted read-only inside its own
  mount namespace, so every session it serves (and sftp) gets EROFS; on the
  Windows stand-in, writing the sandbox's hosts file is denied as Windows
  denies it when the file is locked.
- `DNS:no-replication` (`--dns ad` only): that DNS server (not dns01, where
  changes are made) never receives a change: the cutover's verify waits for it
  until dns.propagation_timeout and fails naming it.
- Windows hosts are client02 and, with `lab up --fe-os windows`, the front ends
  (ocsfe00 and the new ones); the three faults below apply to any of them.
- `WINDOWS:powershell-1.0`: the Windows stand-in reports PowerShell 1.0 (as
  Windows Server 2008 with its optional PowerShell 1.0 feature does) and runs
  no script but the version check, so preflight refuses the host by name.
- `WINDOWS:hosts-moved`: the registry's Tcpip DataBasePath names
  `%SystemDrive%\\NetConfig` (a hosts file moved by policy or an old migration):
  the resolver reads `C:\\NetConfig\\hosts`, the file in the usual place is
  ignored, and the tool must pin the one the registry names.
- `WINDOWS:locale-de`: the Windows stand-in answers as a German Windows does:
  netstat, ipconfig and cmd.exe print German texts in code page 850 (netstat's
  HERGESTELLT, ABHÖREN, ...). What the tool reads through .NET and WMI (its
  connection tables, service states) must not change.

Faults are part of the lab's state (state.json) and `lab status` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocsscale.config.profiles import load_profile
from ocsscale.errors import UsageError

from .topology import Topology

KINDS = (
    "bad-san",
    "close:PORT",
    "tls10",
    "tls10-3des",
    "hosts-readonly",
    "powershell-1.0",
    "hosts-moved",
    "locale-de",
    "no-replication",
)

_FE_KINDS = ("bad-san", "tls10", "tls10-3des")


@dataclass(frozen=True)
class Fault:
    host: str
    kind: str  # one of KINDS (close without its :PORT)
    port: int | None = None

    def __str__(self) -> str:
        return f"{self.host}:{self.kind}" + (f":{self.port}" if self.port is not None else "")


def parse(text: str, topo: Topology, profile_name: str) -> Fault:
    """`HOST:KIND` checked against the lab's hosts; a UsageError saying what is wrong."""
    host_name, sep, kind = text.strip().partition(":")
    if not sep or not kind:
        raise UsageError(f"--fault {text!r}: write HOST:KIND, KIND one of {', '.join(KINDS)}")
    host = topo.host(host_name)
    if kind in _FE_KINDS or kind.startswith("close:"):
        if not host.runs_poolmember:
            raise UsageError(f"--fault {text!r}: {host.name} runs no pool member (not a front end)")
        if kind in _FE_KINDS:
            return Fault(host.name, kind)
        port_text = kind.split(":", 1)[1]
        ports = load_profile(profile_name).ports
        if not (port_text.isascii() and port_text.isdigit()) or int(port_text) not in ports:
            raise UsageError(
                f"--fault {text!r}: the port must be one of the profile's ports "
                f"({', '.join(map(str, ports))})"
            )
        return Fault(host.name, "close", int(port_text))
    if kind == "hosts-readonly":
        if not (host.runs_sshd or host.os == "windows") or host.role == "admin":
            raise UsageError(f"--fault {text!r}: {host.name} is not a host the tool pins")
        return Fault(host.name, "hosts-readonly")
    if kind in ("powershell-1.0", "locale-de", "hosts-moved"):
        if host.os != "windows":
            raise UsageError(
                f"--fault {text!r}: {host.name} is not a Windows host "
                "(client02, or a front end with --fe-os windows)"
            )
        return Fault(host.name, kind)
    if kind == "no-replication":
        if host.role != "dns" or host == topo.by_role("dns")[0]:
            raise UsageError(
                f"--fault {text!r}: {host.name} is not a DNS server that receives "
                "replication (with --dns ad: dns02 and up)"
            )
        return Fault(host.name, "no-replication")
    raise UsageError(f"--fault {text!r}: unknown kind {kind!r} (kinds: {', '.join(KINDS)})")


def parse_all(texts: list[str], topo: Topology, profile_name: str) -> list[Fault]:
    faults = [parse(t, topo, profile_name) for t in texts]
    seen = [str(f) for f in faults]
    if len(set(seen)) != len(seen):
        raise UsageError("the same --fault is given twice")
    for host in {f.host for f in faults}:
        if has(faults, host, "tls10") and has(faults, host, "tls10-3des"):
            raise UsageError(f"--fault: {host} gets tls10 or tls10-3des, not both")
    return faults


def from_state(texts: list[str]) -> list[Fault]:
    """Faults as state.json records them (already checked at `lab up`)."""
    faults = []
    for text in texts:
        host, _, rest = text.partition(":")
        kind, _, port = rest.partition(":")
        faults.append(Fault(host, kind, int(port) if port else None))
    return faults


def of_host(faults: list[Fault], host: str) -> list[Fault]:
    return [f for f in faults if f.host == host]


def closed_ports(faults: list[Fault], host: str) -> list[int]:
    return [f.port for f in of_host(faults, host) if f.kind == "close" and f.port is not None]


def has(faults: list[Fault], host: str, kind: str) -> bool:
    return any(f.kind == kind for f in of_host(faults, host))
