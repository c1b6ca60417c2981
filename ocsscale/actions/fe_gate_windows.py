"""What fe.gate reads on a Windows front end over WinRM (see fe_gate.py).

- `service.<NAME>`: every service of the profile on the FE (by name, and by
  display name like `Office Communications Server*`, with the running services
  that depend on them) and its state: one that Windows starts at boot (or that
  runs now) must be Running; a named service (W3SVC) must exist, and at least
  one service must match each display-name pattern (else OCS is not installed).

- `address.static`: Win32_NetworkAdapterConfiguration: the adapter holding the
  FE's address has DHCPEnabled false.
- `iis.loopback`: the walkthrough's "allow load balancer FQDN loopback": IIS
  on the FE accepts requests to itself under the pool FQDN (Lsa
  DisableLoopbackCheck = 1, or the name in MSV1_0 BackConnectionHostNames).
- `peer.<other FE>` between two Windows FEs: this FE holds a TCP connection
  open to the other while the other lists its established connections on that
  port (.NET GetActiveTcpConnections: the same in every language, where
  netstat's state words are translated); the source it saw must be this FE's
  own address, else NAT is in the path.

Each function returns findings (fe_gate.finding) and never raises for what
the host answers; a host that cannot be asked is a failed finding.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..errors import OcsscaleError
from ..transports.connections import Connection
from ..transports.windows_facts import loopback_allows

#: polls of the other FE's connection table while the connection is held (bounded)
MAX_TABLE_POLLS = 20


def _finding(check: str, ok: bool, message: str, proven: bool = True) -> dict[str, Any]:
    return {"check": check, "ok": ok, "proven": proven, "message": message}


def service_findings(ctx: Any, fe: Any) -> list[dict[str, Any]]:
    profile = ctx.profile.services
    patterns, names = list(profile.windows_display_names), list(profile.windows)
    if not patterns and not names:
        return []
    host = ctx.host(fe.name)
    try:
        # names as patterns too: a missing W3SVC is a finding, not an error of the script
        found = host.services([], [*patterns, *names])
    except OcsscaleError as exc:
        return [_finding("service", False, f"cannot list services: {exc.message}")]
    out = []
    for name in names:
        if not any(s.name.lower() == name.lower() for s in found):
            out.append(_finding(f"service.{name}", False, f"{name} is not installed"))
    for pattern in patterns:
        if not any(_like(s.display_name, pattern) for s in found):
            out.append(
                _finding(
                    "service.display",
                    False,
                    f"no service whose display name is like {pattern!r}: is OCS installed?",
                )
            )
    for s in found:
        label = f"{s.name} ({s.display_name})"
        if s.status == "Running":
            out.append(_finding(f"service.{s.name}", True, f"{label} is Running"))
        elif s.should_run:
            out.append(
                _finding(
                    f"service.{s.name}",
                    False,
                    f"{label} is {s.status}, but starts with Windows ({s.start_mode})",
                )
            )
        else:
            out.append(
                _finding(
                    f"service.{s.name}",
                    True,
                    f"{label} is {s.status} and does not start with Windows ({s.start_mode})",
                )
            )
    return out


def _like(text: str, pattern: str) -> bool:
    from fnmatch import fnmatchcase

    return fnmatchcase(text.lower(), pattern.lower())


def static_findings(ctx: Any, fe: Any) -> list[dict[str, Any]]:
    address = str(fe.address)
    try:
        facts = ctx.host(fe.name).network_facts(address)
    except OcsscaleError as exc:
        return [_finding("address.static", False, f"cannot read the adapters: {exc.message}")]
    if not facts["adapter_found"]:
        return [_finding("address.static", False, f"no network adapter holds {address}")]
    if facts["dhcp_enabled"]:
        return [_finding("address.static", False, f"{address} is configured by DHCP")]
    return [
        _finding(
            "address.static",
            True,
            f"{address} is configured statically (Win32_NetworkAdapterConfiguration:"
            " DHCPEnabled false)",
        )
    ]


def loopback_findings(ctx: Any, fe: Any) -> list[dict[str, Any]]:
    pool_fqdn = ctx.pool.pool.fqdn
    try:
        facts = ctx.host(fe.name).network_facts(str(fe.address))
    except OcsscaleError as exc:
        return [_finding("iis.loopback", False, f"cannot read the Lsa key: {exc.message}")]
    ok, why = loopback_allows(
        facts["disable_loopback_check"], facts["back_connection_host_names"], pool_fqdn
    )
    return [_finding("iis.loopback", ok, f"IIS loopback for {pool_fqdn}: {why}")]


def peer_finding(ctx: Any, fe: Any, other: Any, port: int, timeout: float) -> dict[str, Any]:
    """From Windows `fe` to Windows `other` on `port`, with the other's connection table."""
    check = f"peer.{other.name}"
    target = f"{other.name} ({other.address}:{port})"
    me, peer = ctx.host(fe.name), ctx.host(other.name)
    held: dict[str, Any] = {}
    failure: list[str] = []

    def hold() -> None:
        try:
            held.update(me.tcp_hold(str(other.address), port, timeout, hold=max(timeout, 2.0)))
        except OcsscaleError as exc:
            failure.append(exc.message)

    thread = threading.Thread(target=hold, name=f"hold-{fe.name}", daemon=True)
    thread.start()
    seen: list[Connection] = []
    try:
        for _ in range(MAX_TABLE_POLLS):
            if not thread.is_alive():
                break
            seen += peer.connections([port])
            time.sleep(0.2)
    except OcsscaleError as exc:
        thread.join()
        return _finding(check, False, f"cannot list {other.name}'s connections: {exc.message}")
    thread.join()
    if failure or not held.get("connected"):
        why = failure[0] if failure else held.get("reason") or "not connected"
        return _finding(check, False, f"cannot reach {target}: {why}")
    source, _, source_port = str(held.get("local", "")).rpartition(":")
    ours = [c for c in seen if c.local_port == port]
    if any(c.remote == source and str(c.remote_port) == source_port for c in ours):
        return _finding(
            check,
            True,
            f"reaches {target}, which saw it from {source} (its TCP connections): no NAT",
        )
    rewritten = sorted({c.remote for c in ours if str(c.remote_port) == source_port})
    if rewritten:
        return _finding(
            check,
            False,
            f"{other.name} saw the connection from {', '.join(rewritten)}, not from {source}:"
            " a NAT device is in the path",
        )
    return _finding(
        check,
        True,
        f"reaches {target}; {other.name}'s TCP connections did not list the one from"
        f" {source}:{source_port}: rule out NAT by hand",
        proven=False,
    )
