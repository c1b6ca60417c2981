"""The stand-in's network facts: adapters, IIS loopback settings, TCP table, default gateways.

`<sandbox>/network.json` holds what Win32_NetworkAdapterConfiguration and the
Lsa registry key would answer:
    {"adapters": [{"addresses": ["198.18.0.41"], "dhcp": false}],
     "disable_loopback_check": null, "back_connection_host_names": []}
It is written at start from the options (`--address`, `--dhcp`,
`--disable-loopback-check`, `--back-connection-host-names`); tests may edit it.

The default gateways (DefaultIPGateway) are the default routes of the namespace
the stand-in runs in (/proc/net/route): the route its packets really take.
The TCP connections are the kernel's own table of the namespace the stand-in
runs in (/proc/net/tcp, tcp6): real connections, answered as .NET's
GetActiveTcpConnections() does (the tcp_connections script) and as `netstat
-ano -p TCP` prints them (in the stand-in's display language: winlocale.py).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path
from typing import Any

# /proc/net/tcp state codes: (the kernel's name, as netstat words it in English;
# System.Net.NetworkInformation.TcpState's name)
_STATES = {
    "01": ("ESTABLISHED", "Established"),
    "02": ("SYN_SENT", "SynSent"),
    "03": ("SYN_RECEIVED", "SynReceived"),
    "04": ("FIN_WAIT_1", "FinWait1"),
    "05": ("FIN_WAIT_2", "FinWait2"),
    "06": ("TIME_WAIT", "TimeWait"),
    "07": ("CLOSED", "Closed"),
    "08": ("CLOSE_WAIT", "CloseWait"),
    "09": ("LAST_ACK", "LastAck"),
    "0A": ("LISTENING", "Listen"),
    "0B": ("CLOSING", "Closing"),
    "0C": ("SYN_RECEIVED", "SynReceived"),  # NEW_SYN_RECV
}
_UNKNOWN = ("UNKNOWN", "Unknown")
PROC_TCP = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
PROC_ROUTE = Path("/proc/net/route")
_RTF_GATEWAY = 0x2


def initial_network(
    address: str | None,
    *,
    dhcp: bool = False,
    disable_loopback_check: int | None = None,
    back_connection_host_names: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "adapters": [{"addresses": [address] if address else [], "dhcp": dhcp}],
        "disable_loopback_check": disable_loopback_check,
        "back_connection_host_names": list(back_connection_host_names),
    }


def network_facts(path: Path, address: str) -> dict[str, Any]:
    """What the network_facts script answers, from network.json."""
    state = json.loads(path.read_text())
    found, dhcp = False, None
    for adapter in state.get("adapters", []):
        if address in adapter.get("addresses", []):
            found, dhcp = True, bool(adapter.get("dhcp"))
    disable = state.get("disable_loopback_check")
    return {
        "adapter_found": found,
        "dhcp_enabled": dhcp,
        "disable_loopback_check": disable if isinstance(disable, int) else None,
        "back_connection_host_names": [str(n) for n in state.get("back_connection_host_names", [])],
    }


def default_gateways(path: Path = PROC_ROUTE) -> dict[str, Any]:
    """What the default_gateways script answers: the gateways of the default routes
    of the stand-in's network namespace (the kernel's table, /proc/net/route), as
    DefaultIPGateway gives them (one adapter holds them; order kept)."""
    gateways: list[str] = []
    for row in path.read_text().splitlines()[1:]:
        fields = row.split()
        if len(fields) < 8:
            continue
        destination, gateway, flags, mask = fields[1], fields[2], int(fields[3], 16), fields[7]
        if destination != "00000000" or mask != "00000000" or not flags & _RTF_GATEWAY:
            continue
        # the address in the host's (little-endian, x86) byte order, as in /proc/net/tcp
        text = socket.inet_ntoa(bytes.fromhex(gateway)[::-1])
        if text not in gateways:
            gateways.append(text)
    return {"gateways": gateways}


def _endpoint(hex_text: str) -> tuple[str, int]:
    """An address:port of /proc/net/tcp{,6}: the address in 32-bit words, each in the
    host's (little-endian, x86) byte order."""
    address, port = hex_text.split(":")
    raw = bytes.fromhex(address)
    octets = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(octets) == 4:
        return socket.inet_ntoa(octets), int(port, 16)
    parsed = ipaddress.IPv6Address(octets)
    # .NET writes an IPv4-mapped address with its IPv4 part dotted
    text = f"::ffff:{parsed.ipv4_mapped}" if parsed.ipv4_mapped else str(parsed)
    return text, int(port, 16)


def tcp_table(files: tuple[Path, ...] = PROC_TCP) -> list[tuple[str, int, str, int, str]]:
    """(local, local port, remote, remote port, state code) of every TCP socket of this
    network namespace (a missing tcp6 file is no IPv6)."""
    rows = []
    for path in files:
        try:
            text = path.read_text()
        except FileNotFoundError:
            continue
        for row in text.splitlines()[1:]:
            fields = row.split()
            if len(fields) < 4:
                continue
            local, remote = _endpoint(fields[1]), _endpoint(fields[2])
            rows.append((*local, *remote, fields[3].upper()))
    return rows


def netstat_rows(files: tuple[Path, ...] = PROC_TCP[:1]) -> list[tuple[str, str, str]]:
    """`netstat -ano -p TCP`'s rows (IPv4 only): local and remote as ADDR:PORT, and the
    state as netstat names it in English (winlocale translates it)."""
    return [
        (f"{la}:{lp}", f"{ra}:{rp}", _STATES.get(code, _UNKNOWN)[0])
        for la, lp, ra, rp, code in tcp_table(files)
    ]


def tcp_connections(ports_text: str, files: tuple[Path, ...] = PROC_TCP) -> dict[str, Any]:
    """What the tcp_connections script answers: GetActiveTcpConnections() (IPv4 and
    IPv6, every state but Listen) on the local ports of `ports_text` ("5061,5060", each
    cast as [int] casts it), with TcpState by name, which no language changes."""
    wanted = {int(item) for item in ports_text.split(",")}
    rows = []
    for la, lp, ra, rp, code in tcp_table(files):
        state = _STATES.get(code, _UNKNOWN)[1]
        if state == "Listen" or lp not in wanted:
            continue
        rows.append(
            {"state": state, "local": la, "local_port": lp, "remote": ra, "remote_port": rp}
        )
    return {"connections": rows}
