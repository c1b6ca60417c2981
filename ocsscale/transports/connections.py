"""A host's established TCP connections on some local ports, read the same in every language.

`netstat` prints its state words in the system's language (a German Windows
says HERGESTELLT, not ESTABLISHED), so a parser of its text would see no
connections on such a host: a drain would then stop a front end under live
users. Each transport reads the table where no word is translated instead:
- Windows (WinRM): .NET's IPGlobalProperties.GetActiveTcpConnections(), whose
  TcpState is an enum sent by its name (templates/powershell/tcp_connections);
- Linux (SSH, local): `ss -Htn state established '( sport = :P or ... )'`,
  whose numeric columns and fixed layout do not depend on the locale.

The parsers are strict and fail closed: any answer they cannot read whole is
an error naming the host, never an empty list.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import TransportError
from .commands import ShCommand

#: more rows than this is not a table the tool can judge (and an answer to distrust)
MAX_CONNECTIONS = 20000
#: ports asked in one read (the callers ask for a profile's SIP ports, or one port)
MAX_PORTS = 64
#: System.Net.NetworkInformation.TcpState, by name (.NET 2.0 on)
TCP_STATES = frozenset(
    {
        "Unknown", "Closed", "Listen", "SynSent", "SynReceived", "Established", "FinWait1",
        "FinWait2", "CloseWait", "Closing", "LastAck", "TimeWait", "DeleteTcb",
    }
)  # fmt: skip

# `ss -Htn state established`: Recv-Q Send-Q Local:Port Peer:Port (no state column when
# one state is asked, no process column without -p)
_SS_ROW = re.compile(r"^(\d+)\s+(\d+)\s+(\S+)\s+(\S+)$", re.ASCII)
_ENDPOINT = re.compile(
    r"^(?:\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|([0-9.]+)(?:%[\w.-]+)?):(\d{1,5})$", re.ASCII
)


@dataclass(frozen=True)
class Connection:
    """One established TCP connection; addresses in canonical text (IPv4 as such, an
    IPv4-mapped IPv6 address as its IPv4 address)."""

    local: str
    local_port: int
    remote: str
    remote_port: int


def check_ports(host: str, ports: Iterable[int]) -> tuple[int, ...]:
    """The ports to ask for, each a TCP port number, at least one, at most MAX_PORTS."""
    wanted: list[int] = []
    for port in ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise TransportError(f"{host}: connections are read on TCP ports 1-65535")
        if port not in wanted:
            wanted.append(port)
    if not 1 <= len(wanted) <= MAX_PORTS:
        raise TransportError(f"{host}: connections are read on 1-{MAX_PORTS} ports")
    return tuple(wanted)


def _address(text: str) -> str | None:
    """Canonical text of an address; a zone (`fe80::1%4`, `%eth0`) is dropped."""
    if not text.isascii():
        return None
    try:
        parsed = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(parsed)


def _port(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        return None
    return value


def _unreadable(host: str, how: str, where: str) -> TransportError:
    # the host's own text is not echoed: where it went wrong is enough to look
    return TransportError(
        f"{host}: unreadable list of TCP connections ({how}): {where}; "
        "no connection count is concluded from it"
    )


# -- Linux: ss ---------------------------------------------------------------------


def ss_command(ports: Sequence[int]) -> ShCommand:
    """`ss -Htn state established '( sport = :P1 or sport = :P2 )'` (one argv word each)."""
    words: list[str] = ["("]
    for i, port in enumerate(ports):
        words += (["or"] if i else []) + ["sport", "=", f":{int(port)}"]
    return ShCommand.of("ss", "-Htn", "state", "established", *words, ")")


def _ss_endpoint(text: str) -> tuple[str, int] | None:
    match = _ENDPOINT.match(text)
    if not match:
        return None
    address = _address(match.group(1) or match.group(2))
    port = _port(int(match.group(3)))
    return None if address is None or port is None else (address, port)


def parse_ss(host: str, stdout: str, ports: Sequence[int]) -> list[Connection]:
    """Every line of `ss_command`'s output, strictly: four fields, two endpoints, a local
    port that was asked for. An empty output is no connection; anything else unread fails."""
    found: list[Connection] = []
    for number, line in enumerate(stdout.splitlines(), 1):
        if not line.strip():
            continue
        match = _SS_ROW.match(line.strip())
        if not match:
            raise _unreadable(host, "ss", f"line {number} is not 'Recv-Q Send-Q local peer'")
        local, remote = _ss_endpoint(match.group(3)), _ss_endpoint(match.group(4))
        if local is None or remote is None:
            raise _unreadable(host, "ss", f"line {number} has an endpoint that is not ADDR:PORT")
        if local[1] not in ports:
            raise _unreadable(host, "ss", f"line {number} is on a port that was not asked for")
        found.append(Connection(local[0], local[1], remote[0], remote[1]))
        if len(found) > MAX_CONNECTIONS:
            raise _unreadable(host, "ss", f"more than {MAX_CONNECTIONS} connections")
    return found


# -- Windows: .NET GetActiveTcpConnections ------------------------------------------


def parse_dotnet(host: str, result: Mapping[str, Any], ports: Sequence[int]) -> list[Connection]:
    """The tcp_connections script's answer, strictly: every row has a TcpState name, two
    addresses and two ports; the established ones on the ports asked for are returned."""
    rows = result.get("connections")
    if rows is None:
        rows = []
    if isinstance(rows, dict):  # a one-element list written as an object
        rows = [rows]
    if not isinstance(rows, list):
        raise _unreadable(host, ".NET", "'connections' is not a list")
    if len(rows) > MAX_CONNECTIONS:
        raise _unreadable(host, ".NET", f"more than {MAX_CONNECTIONS} connections")
    found: list[Connection] = []
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise _unreadable(host, ".NET", f"row {number} is not an object")
        state = row.get("state")
        if not isinstance(state, str) or state not in TCP_STATES:
            raise _unreadable(host, ".NET", f"row {number} has no TcpState name")
        local = _address(row["local"]) if isinstance(row.get("local"), str) else None
        remote = _address(row["remote"]) if isinstance(row.get("remote"), str) else None
        local_port, remote_port = _port(row.get("local_port")), _port(row.get("remote_port"))
        if local is None or remote is None or local_port is None or remote_port is None:
            raise _unreadable(host, ".NET", f"row {number} has an unreadable address or port")
        if local_port not in ports:
            raise _unreadable(host, ".NET", f"row {number} is on a port that was not asked for")
        if state == "Established":
            found.append(Connection(local, local_port, remote, remote_port))
    return found
