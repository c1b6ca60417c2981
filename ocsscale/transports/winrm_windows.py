"""What the WinRM transport reads from Windows beyond the Host interface.

A mixin of `WinRMHost`: the PowerShell and .NET versions (preflight), the
services found by name and display name with their dependencies, a restart
in dependency order, and the facts the front-end gate reads (static address,
IIS loopback check), the established TCP connections on some ports (through
.NET, the same in every language: connections.py), and a burst
of the client load run on the host itself (`load_burst`). Each is one script
of templates/powershell/; the judging is in windows_facts.py.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CommandFailed, TransportError
from .connections import Connection, check_ports, parse_dotnet
from .windows_facts import ServiceInfo, stop_order
from .winrm_scripts import ScriptOutputError, result_string_list

# Service names only: a wildcard would let a name match services nobody named.
SERVICE_NAME = re.compile(r"^[A-Za-z0-9_.$@ -]+\Z")
# A display-name pattern for PowerShell's -like: printable, one line.
_DISPLAY_PATTERN = re.compile(r"^[^\x00-\x1f]+\Z")
#: what cmd.exe answers when powershell.exe is not installed (exit code 9009)
_NO_POWERSHELL = "is not recognized as an internal or external command"
#: Win32_Service.StartMode -> Set-Service -StartupType (the modes Set-Service can set)
STARTUP_TYPES = {"Auto": "Automatic", "Manual": "Manual", "Disabled": "Disabled"}
#: where Windows keeps the hosts file unless Tcpip's DataBasePath says otherwise
DEFAULT_HOSTS_FILE = r"%SystemRoot%\System32\drivers\etc\hosts"
#: an expanded DataBasePath the tool uses: a drive, no variable left, no odd characters
_ABSOLUTE_PATH = re.compile(r'^[A-Za-z]:\\[^\x00-\x1f<>"|?*%]*$')
_MAX_PATH = 240
#: a DNS name (the pool FQDN) or an IPv4 address: what a load burst resolves
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
#: a burst's bounds, the script's own (load_burst.ps1.j2)
BURST_MAX_COUNT = 50
BURST_MAX_SECONDS = 10.0


class WindowsReads:
    """Mixed into WinRMHost, which provides `name`, `services_timeout` and `_operation`."""

    name: str
    services_timeout: float

    def _operation(
        self, operation: str, what: str, *, timeout: float = 120.0, **params: str
    ) -> dict[str, Any]:
        raise NotImplementedError

    def registry_hosts_file(self) -> str:
        """The hosts file Windows reads: `hosts` in the directory Tcpip's DataBasePath
        names (%SystemRoot% expanded by the host); the default when it is unset."""
        result = self._operation(
            "hosts_location", "read where the hosts file is (Tcpip DataBasePath)"
        )
        directory = result.get("database_path")
        if directory is None or directory == "":
            return DEFAULT_HOSTS_FILE
        if (
            not isinstance(directory, str)
            or len(directory) > _MAX_PATH
            or not _ABSOLUTE_PATH.match(directory)
        ):
            # the value itself is not repeated: it is the host's, not ours to echo
            raise TransportError(
                f"{self.name}: the registry's Tcpip DataBasePath is not an absolute local"
                " path the tool can use; set `hosts_file` for this host in the pool file"
            )
        return directory.rstrip("\\") + "\\hosts"

    def versions(self) -> dict[str, Any]:
        """{'powershell': '2.0', 'dotnet': ['2.0.50727.4927', '3.5.30729.4926', ...]}."""
        try:
            result = self._operation("versions", "read the PowerShell and .NET versions")
        except CommandFailed as exc:
            if exc.exit_status == 9009 or _NO_POWERSHELL in exc.message:
                return {"powershell": "", "dotnet": [], "powershell_missing": True}
            raise
        dotnet = result.get("dotnet") or []
        if isinstance(dotnet, str):
            dotnet = [dotnet]
        return {"powershell": str(result.get("powershell", "")), "dotnet": [str(v) for v in dotnet]}

    def services(
        self, names: Sequence[str] = (), display_names: Sequence[str] = ()
    ) -> list[ServiceInfo]:
        """The services called `names` (each must exist), those whose display name (or
        name) is like one of `display_names`, and every running service that depends on
        one of them."""
        for service in names:
            if not SERVICE_NAME.match(service):
                raise TransportError(f"{self.name}: {service!r} is not a plain service name")
        for pattern in display_names:
            if not _DISPLAY_PATTERN.match(pattern):
                raise TransportError(f"{self.name}: {pattern!r} is not a display-name pattern")
        result = self._operation(
            "services",
            "list services " + ", ".join([*names, *display_names]),
            Names="\n".join(names),
            DisplayNames="\n".join(display_names),
        )
        items = result.get("services") or []
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise TransportError(f"{self.name}: unreadable answer listing services")
        return [ServiceInfo.from_result(i) for i in items]

    def set_service(self, name: str, start_mode: str, running: bool) -> dict[str, str]:
        """Set-Service -StartupType (`start_mode` as Win32_Service says it: Auto, Manual,
        Disabled), then Start-Service, or Stop-Service -Force (which stops its running
        dependants first) before it. Returns {name, status, start_mode} read back, the
        start mode from WMI (the same words in every language)."""
        if not SERVICE_NAME.match(name):
            raise TransportError(f"{self.name}: {name!r} is not a plain service name")
        if start_mode not in STARTUP_TYPES:
            raise TransportError(f"{self.name}: no start mode {start_mode!r} to set")
        result = self._operation(
            "set_service",
            f"{'start' if running else 'stop'} {name} ({start_mode})",
            Name=name,
            StartupType=STARTUP_TYPES[start_mode],
            State="Running" if running else "Stopped",
            timeout=self.services_timeout * 2 + 60.0,
        )
        answer = {k: result.get(k) for k in ("name", "status", "start_mode")}
        if not all(isinstance(v, str) and v for v in answer.values()):
            raise TransportError(f"{self.name}: unreadable answer setting service {name}")
        return answer  # type: ignore[return-value]

    def restart_services(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """Stop `names` and the running services that depend on them, dependants first;
        start them in the reverse order; prove each runs. Returns what was restarted
        (name, display name, status), in stop order."""
        if not names:
            return []
        found = [s for s in self.services(names) if s.should_run]
        order = stop_order(found)
        result = self._operation(
            "restart_services",
            "restart " + ", ".join(order),
            Names="\n".join(order),
            TimeoutSeconds=str(self.services_timeout),
            timeout=self.services_timeout * 2 * len(order) + 60.0,
        )
        states = result.get("services")
        if isinstance(states, dict):  # a one-element list written as an object
            states = [states]
        running = {
            str(s.get("name", "")).lower()
            for s in states or []
            if isinstance(s, dict) and s.get("status") == "Running"
        }
        missing = [n for n in order if n.lower() not in running]
        if missing:
            raise TransportError(f"{self.name}: not running after restart: {', '.join(missing)}")
        by_name = {s.name.lower(): s for s in found}
        return [
            {"name": n, "display_name": by_name[n.lower()].display_name, "status": "Running"}
            for n in order
        ]

    def network_facts(self, address: str) -> dict[str, Any]:
        """DHCP of the adapter holding `address` (Win32_NetworkAdapterConfiguration) and
        the IIS loopback check settings (HKLM\\SYSTEM\\CurrentControlSet\\Control\\Lsa)."""
        result = self._operation("network_facts", "read adapters and Lsa", Address=address)
        names = result.get("back_connection_host_names") or []
        if isinstance(names, str):
            names = [names]
        disable = result.get("disable_loopback_check")
        return {
            "adapter_found": bool(result.get("adapter_found")),
            "dhcp_enabled": result.get("dhcp_enabled"),
            "disable_loopback_check": disable if isinstance(disable, int) else None,
            "back_connection_host_names": [str(n) for n in names],
        }

    def default_gateways(self) -> list[str]:
        """The IPv4 default gateways of every IP-enabled adapter (gateways.py judges)."""
        from .gateways import parse_windows

        result = self._operation("default_gateways", "read the default gateways")
        return parse_windows(self.name, result)

    def connections(self, ports: Sequence[int]) -> list[Connection]:
        """The established TCP connections on local `ports`: GetActiveTcpConnections()
        with TcpState by its name (connections.py); an unreadable answer raises."""
        wanted = check_ports(self.name, ports)
        result = self._operation(
            "tcp_connections",
            "list TCP connections on port(s) " + ", ".join(map(str, wanted)),
            Ports=",".join(map(str, wanted)),
        )
        return parse_dotnet(self.name, result, wanted)

    def tcp_hold(self, address: str, port: int, timeout: float, hold: float) -> dict[str, Any]:
        """Connect from this host and keep the connection open `hold` seconds (so the
        other end can list it); {'connected', 'reason', 'local': 'addr:port'}."""
        result = self._operation(
            "tcp_hold",
            f"TCP connection held to {address}:{port}",
            Address=address,
            Port=str(int(port)),
            TimeoutMs=str(max(1, int(timeout * 1000))),
            HoldMs=str(max(0, int(hold * 1000))),
            timeout=timeout + hold + 60.0,
        )
        if not isinstance(result.get("connected"), bool):
            raise TransportError(f"{self.name}: unreadable answer from the held TCP connection")
        return {
            "connected": result["connected"],
            "reason": str(result.get("reason", "")),
            "local": str(result.get("local", "")),
        }

    def load_burst(
        self,
        name: str,
        targets: Sequence[tuple[int, str]],
        *,
        count: int,
        interval: float,
        duration: float,
        timeout: float,
    ) -> LoadBurst:
        """A burst of the client load run on this host (load_burst.ps1.j2): `count`
        requests to `name` as this host resolves it, `interval` seconds apart, none
        started after `duration`; request i goes to targets[i % len]: (port, "tls")
        a TLS handshake verified by the host's trust store, (port, "tcp") a connect."""
        if not _HOST_NAME.match(name):
            raise TransportError(f"{self.name}: a load burst needs a host name, not {name!r}")
        if not targets or any(
            kind not in ("tls", "tcp") or not 1 <= int(port) <= 65535 for port, kind in targets
        ):
            raise TransportError(f"{self.name}: a load burst's targets are (port, 'tls'|'tcp')")
        if not 1 <= count <= BURST_MAX_COUNT:
            raise TransportError(f"{self.name}: a load burst has 1-{BURST_MAX_COUNT} requests")
        for what, seconds, low in (
            ("interval", interval, 0.0),
            ("duration", duration, 0.001),
            ("timeout", timeout, 0.001),
        ):
            if not low <= seconds <= BURST_MAX_SECONDS:
                raise TransportError(
                    f"{self.name}: a load burst's {what} is at most {BURST_MAX_SECONDS:g} s"
                )
        result = self._operation(
            "load_burst",
            f"load burst to {name}",
            Name=name,
            Targets=",".join(f"{int(port)}:{kind}" for port, kind in targets),
            Count=str(int(count)),
            IntervalMs=str(int(interval * 1000)),
            DurationMs=str(max(1, int(duration * 1000))),
            TimeoutMs=str(max(1, int(timeout * 1000))),
            timeout=duration + 2 * timeout + 60.0,
        )
        try:
            return _parse_burst(result, count, {int(port) for port, _ in targets})
        except (ValueError, TypeError, KeyError, binascii.Error, ScriptOutputError) as exc:
            raise TransportError(
                f"{self.name}: unreadable answer from the load burst ({exc})"
            ) from None


@dataclass(frozen=True)
class BurstRequest:
    """One request of a load burst; times in ms of the script's own stopwatch."""

    t_ms: int  # when it finished
    port: int
    address: str  # the address connected to ('' when the name did not resolve)
    ok: bool
    error: str  # the failure class ('' when ok): resolve, refused, timeout, cert-invalid, ...
    detail: str
    latency_ms: int
    certificate: bytes | None  # DER of the server's certificate (a TLS handshake that ended)


@dataclass(frozen=True)
class LoadBurst:
    elapsed_ms: int  # the script's run time, from its start to its answer
    requests: tuple[BurstRequest, ...]


def _integer(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError("a number out of range")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a text field is not text")
    return value


def _parse_burst(result: dict[str, Any], count: int, ports: set[int]) -> LoadBurst:
    """Strictly: every field of every request present and of its type, within bounds."""
    elapsed = _integer(result.get("elapsed"), 0, 10**9)
    certificates = [
        base64.b64decode(c, validate=True) for c in result_string_list(result, "certificates")
    ]
    items = result.get("results")
    if items is None:
        items = []
    if isinstance(items, dict):  # a one-element list written as an object
        items = [items]
    if not isinstance(items, list) or len(items) > count:
        raise ValueError("results is not a list of at most the requests sent")
    requests = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("a result is not an object")
        ok = item["ok"]
        if not isinstance(ok, bool):
            raise ValueError("ok is not true or false")
        error = _text(item["error"])
        if ok == bool(error):
            raise ValueError("ok and error disagree")
        port = _integer(item["port"], 1, 65535)
        if port not in ports:
            raise ValueError("a port that was not asked for")
        cert = _integer(item["cert"], -1, len(certificates) - 1)
        requests.append(
            BurstRequest(
                t_ms=_integer(item["t"], 0, elapsed),
                port=port,
                address=_text(item["address"]),
                ok=ok,
                error=error,
                detail=_text(item["detail"])[:200],
                latency_ms=_integer(item["latency"], 0, elapsed),
                certificate=certificates[cert] if cert >= 0 else None,
            )
        )
    return LoadBurst(elapsed, tuple(requests))
