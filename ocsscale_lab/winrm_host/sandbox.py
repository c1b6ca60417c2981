"""The stand-in's Windows: a directory tree, a DNS client, a TCP client, services.

`C:\\` is the sandbox directory; `%SystemRoot%` is `C:\\Windows`, `%TEMP%` is
`C:\\Windows\\Temp`. Paths are matched case-insensitively, as on NTFS, and
cannot leave the sandbox. Name resolution follows the Windows DNS client:
the hosts file first (read on every lookup, as Windows notices edits at
once), then DNS through dnspython, answers cached for their TTL until a
flush. Services are in `services.json` (display name, state, start mode,
dependencies); each stop and start is recorded in `services.log`.

Unlike Windows, the stand-in talks only to loopback and lab addresses
(198.18.0.0/15): a TCP check or a DNS server anywhere else is refused without
a packet sent, whatever a request asks for and wherever the process runs.
"""

from __future__ import annotations

import codecs
import ipaddress
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dns.exception
import dns.resolver

from .winnet import initial_network
from .winservices import OCS_FRONT_END_SERVICES, ServiceTable, StandInError

SYSTEM_ROOT = "C:\\Windows"
ENVIRONMENT = {
    "SYSTEMDRIVE": "C:",
    "SYSTEMROOT": SYSTEM_ROOT,
    "WINDIR": SYSTEM_ROOT,
    "TEMP": SYSTEM_ROOT + "\\Temp",
    "TMP": SYSTEM_ROOT + "\\Temp",
    "PROGRAMDATA": "C:\\ProgramData",
}
HOSTS_FILE = SYSTEM_ROOT + "\\System32\\drivers\\etc\\hosts"
#: Tcpip's DataBasePath as Windows sets it: the directory of the hosts file
DEFAULT_DATABASE_PATH = "%SystemRoot%\\System32\\drivers\\etc"
DEFAULT_SERVICES = ("Dnscache", "WinRM")
#: Windows Server 2008 R2 with its .NET Framework 3.5.1 feature
DEFAULT_POWERSHELL = "2.0"
DEFAULT_DOTNET = ("2.0.50727.4927", "3.0.30729.4926", "3.5.30729.4926")


#: the only networks the stand-in ever sends a packet to
REACHABLE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128", "198.18.0.0/15")
)


def reachable(address: str) -> bool:
    """Whether `address` (an IP literal) is one the stand-in may contact."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in REACHABLE_NETWORKS if ip.version == net.version)


_SAMPLE_HOSTS = """\
# Copyright (c) 1993-2009 Microsoft Corp.
#
# This is a sample HOSTS file used by Microsoft TCP/IP for Windows.
#
# This file contains the mappings of IP addresses to host names. Each
# entry should be kept on an individual line. The IP address should
# be placed in the first column followed by the corresponding host name.
# The IP address and the host name should be separated by at least one
# space.
#
# Additionally, comments (such as these) may be inserted on individual
# lines or following the machine name denoted by a '#' symbol.
#
# For example:
#
#      102.54.94.97     rhino.acme.com          # source server
#       38.25.63.10     x.acme.com              # x client host

# localhost name resolution is handled within DNS itself.
#\t127.0.0.1       localhost
#\t::1             localhost
"""


@dataclass
class _Cached:
    expires: float
    addresses: list[str]


class Sandbox:
    def __init__(
        self,
        root: Path,
        *,
        services: tuple[str, ...] = DEFAULT_SERVICES,
        dns_server: tuple[str, int] | None = None,
        resolv_conf: str = "/etc/resolv.conf",
        read_only_hosts: bool = False,
        powershell: str = DEFAULT_POWERSHELL,
        dotnet: tuple[str, ...] = DEFAULT_DOTNET,
        ocs_front_end: bool = False,
        address: str | None = None,
        nat_source: str | None = None,
        network: dict[str, Any] | None = None,
        bound_services: Callable[[str, str], None] | None = None,
        database_path: str = DEFAULT_DATABASE_PATH,
    ) -> None:
        #: Windows services played by real processes (winservices.BoundServices)
        self._bound_services = bound_services
        self._ocs_front_end = ocs_front_end
        #: the host's own address (outgoing connections leave from it), and a NAT's
        self.address = address
        self.nat_source = nat_source
        self._network = network or initial_network(address)
        self.root = root.resolve()
        self.read_only_hosts = read_only_hosts
        #: HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters DataBasePath
        #: (REG_EXPAND_SZ): where its resolver reads the hosts file
        self.database_path = database_path
        #: the PowerShell version it reports ("" when powershell.exe is not installed)
        self.powershell = powershell
        self.dotnet = dotnet
        self._initial_services = services
        self._dns_server = dns_server
        self._resolv_conf = resolv_conf
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    @property
    def hosts_file(self) -> str:
        """The hosts file its resolver reads: `hosts` where DataBasePath says."""
        return self.expand(self.database_path).rstrip("\\") + "\\hosts"

    def initialise(self) -> None:
        (self.root / "Windows" / "Temp").mkdir(parents=True, exist_ok=True)
        # with DataBasePath moved, the file in the usual place stays, unread, as on a
        # real host: a tool that writes it pins nothing
        for path in dict.fromkeys((HOSTS_FILE, self.hosts_file)):
            try:
                hosts = self._make_parents(path)
            except StandInError:
                continue  # a DataBasePath off drive C: (a test of the tool's refusal)
            if not hosts.exists():
                hosts.write_bytes(_SAMPLE_HOSTS.replace("\n", "\r\n").encode("ascii"))
        state = self.root / "services.json"
        if not state.exists():
            services: dict[str, Any] = {name: "Running" for name in self._initial_services}
            if self._ocs_front_end:
                services.update(OCS_FRONT_END_SERVICES)
            state.write_text(json.dumps(services, indent=1))
        self.services = ServiceTable(
            state, lambda event: self._log("services.log", event), self._bound_services
        )
        self.network_file = self.root / "network.json"
        if not self.network_file.exists():
            self.network_file.write_text(json.dumps(self._network, indent=1))

    # -- paths ------------------------------------------------------------------

    def expand(self, text: str) -> str:
        """%VAR% expansion as [Environment]::ExpandEnvironmentVariables (unknown kept)."""
        return re.sub(r"%([^%]+)%", lambda m: ENVIRONMENT.get(m.group(1).upper(), m.group(0)), text)

    def _make_parents(self, windows_path: str) -> Path:
        match = re.fullmatch(r"[Cc]:[\\/](.*)", self.expand(windows_path))
        if not match:
            raise StandInError(f"The stand-in only has drive C: (path '{windows_path}').")
        parts = [p for p in re.split(r"[\\/]+", match.group(1)) if p not in ("", ".")]
        if ".." in parts:
            raise StandInError(f"Access to the path '{windows_path}' is denied.")
        (self.root.joinpath(*parts[:-1])).mkdir(parents=True, exist_ok=True)
        return self.to_local(windows_path)

    def to_local(self, windows_path: str) -> Path:
        path = self.expand(windows_path)
        match = re.fullmatch(r"[Cc]:[\\/](.*)", path)
        if not match:
            raise StandInError(f"The stand-in only has drive C: (path '{path}').")
        current = self.root
        for part in re.split(r"[\\/]+", match.group(1)):
            if part in ("", "."):
                continue
            if part == "..":
                raise StandInError(f"Access to the path '{path}' is denied.")
            current = current / _existing_case(current, part)
        return current

    def check_writable(self, windows_path: str) -> None:
        """Refuse a write the way Windows does when the hosts file is locked
        (an antivirus or a policy holds it): with `--read-only-hosts`."""
        if self.read_only_hosts and self.to_local(windows_path) == self.to_local(self.hosts_file):
            raise StandInError(f"Access to the path '{self.expand(windows_path)}' is denied.")

    # -- name resolution -----------------------------------------------------------

    def resolve(self, name: str) -> tuple[str, list[str]]:
        """(SocketErrorCode name, IPv4 addresses), as Dns.GetHostAddresses sees it."""
        try:
            return "Success", [str(ipaddress.IPv4Address(name))]
        except ValueError:
            pass
        key = name.rstrip(".").lower()
        pinned = self._hosts_file_lookup(key)
        if pinned:
            return "Success", pinned
        if key == "localhost":
            return "Success", ["127.0.0.1"]
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached.expires > time.monotonic():
                return "Success", list(cached.addresses)
        try:
            answer = self._resolver().resolve(key, "A", search="." not in key)
        except dns.resolver.NXDOMAIN:
            return "HostNotFound", []
        except dns.resolver.NoAnswer:
            return "NoData", []
        except (dns.resolver.NoNameservers, dns.exception.Timeout):
            return "TryAgain", []
        addresses = [record.address for record in answer]
        with self._lock:
            self._cache[key] = _Cached(time.monotonic() + answer.rrset.ttl, addresses)
        return "Success", addresses

    def flush_dns(self) -> None:
        with self._lock:
            self._cache.clear()
        self._log("dns.log", "flush")

    def _resolver(self) -> dns.resolver.Resolver:
        """A resolver for the configured DNS server; NoNameservers when it is not
        a loopback or lab address (then nothing is asked)."""
        if self._dns_server is None:
            resolver = dns.resolver.Resolver(filename=self._resolv_conf)
        else:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [self._dns_server[0]]
            resolver.port = self._dns_server[1]
            resolver.lifetime = 5.0
        allowed = [str(ns) for ns in resolver.nameservers if reachable(str(ns))]
        if not allowed:
            raise dns.resolver.NoNameservers
        resolver.nameservers = allowed
        return resolver

    def _hosts_file_lookup(self, name: str) -> list[str]:
        try:
            raw = self.to_local(self.hosts_file).read_bytes()
        except OSError:
            return []
        return hosts_file_lookup(raw, name)

    # -- TCP, services -------------------------------------------------------------

    def tcp_check(self, address: str, port: int, timeout: float) -> tuple[bool, str]:
        # Resolved as the stand-in resolves (hosts file, then its DNS server), never
        # through the machine's resolver; then only loopback and lab addresses.
        try:
            addresses = [str(ipaddress.ip_address(address.strip("[]")))]
        except ValueError:
            _, addresses = self.resolve(address)
        if not addresses:
            return False, f"No such host is known ({address})"
        target = addresses[0]
        if not reachable(target):
            return False, (
                f"the WinRM stand-in connects only to loopback and lab addresses "
                f"(198.18.0.0/15), not {target}"
            )
        try:
            with self.connect(target, port, timeout):
                return True, ""
        except TimeoutError:
            return False, "timed out"
        except ConnectionRefusedError:
            return False, (
                "No connection could be made because the target machine actively refused it"
                f" {address}:{port}"
            )
        except OSError as exc:
            return False, exc.strerror or str(exc)

    def connect(self, target: str, port: int, timeout: float) -> socket.socket:
        """A connection from the host's own address (or from `nat_source`: a NAT in the
        path rewrites it), as a host with that address makes one."""
        source = self.nat_source or self.address
        bind = None
        # only from an address on the same side of loopback as the target (a lab host
        # may still reach 127.0.0.1 of its namespace)
        if (
            source
            and ipaddress.ip_address(source).is_loopback == ipaddress.ip_address(target).is_loopback
        ):
            bind = (source, 0)
        return socket.create_connection((target, port), timeout=timeout, source_address=bind)

    def tcp_hold(self, address: str, port: int, timeout: float, hold: float) -> dict[str, Any]:
        """tcp_hold: connect, keep the connection `hold` seconds (at most 30), report this
        end as the host sees itself (its own address, even behind a NAT)."""
        connected, reason = self.tcp_check(address, port, timeout)
        if not connected:
            return {"connected": False, "reason": reason, "local": ""}
        try:
            target = str(ipaddress.ip_address(address.strip("[]")))
        except ValueError:
            target = self.resolve(address)[1][0]
        try:
            with self.connect(target, port, timeout) as conn:
                local_port = conn.getsockname()[1]
                time.sleep(min(max(hold, 0.0), 30.0))
        except OSError as exc:
            return {"connected": False, "reason": exc.strerror or str(exc), "local": ""}
        own = self.address or conn.getsockname()[0]
        return {"connected": True, "reason": "", "local": f"{own}:{local_port}"}

    def _log(self, file: str, event: str) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self._lock, open(self.root / file, "a", encoding="utf-8") as log:
            log.write(f"{stamp} {event}\n")


def hosts_file_lookup(raw: bytes, name: str) -> list[str]:
    """The IPv4 addresses a Windows hosts file (UTF-8 or UTF-16 with BOM, any line
    ends) gives `name`, in file order."""
    name = name.rstrip(".").lower()
    found = []
    for line in _decode_text(raw).splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or name not in (f.lower() for f in fields[1:]):
            continue
        try:
            address = str(ipaddress.IPv4Address(fields[0]))
        except ValueError:
            continue  # IPv6 entries do not answer an IPv4 lookup
        if address not in found:
            found.append(address)
    return found


def _existing_case(directory: Path, part: str) -> str:
    if (directory / part).exists():
        return part
    try:
        for entry in os.listdir(directory):
            if entry.lower() == part.lower():
                return entry
    except OSError:
        pass
    return part


def _decode_text(raw: bytes) -> str:
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if raw.startswith(bom):
            return raw.decode(encoding, errors="replace")
    return raw.decode("utf-8", errors="replace")
