"""The stand-in's network facts: its adapters and IIS loopback settings, and netstat.

`<sandbox>/network.json` holds what Win32_NetworkAdapterConfiguration and the
Lsa registry key would answer:
    {"adapters": [{"addresses": ["198.18.0.41"], "dhcp": false}],
     "disable_loopback_check": null, "back_connection_host_names": []}
It is written at start from the options (`--address`, `--dhcp`,
`--disable-loopback-check`, `--back-connection-host-names`); tests may edit it.

`netstat -ano` is played from the kernel's own table of the namespace the
stand-in runs in (/proc/net/tcp): real connections, in Windows' format.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

# /proc/net/tcp state codes, as netstat on Windows names them
_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECEIVED",
    "04": "FIN_WAIT_1",
    "05": "FIN_WAIT_2",
    "06": "TIME_WAIT",
    "07": "CLOSED",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTENING",
    "0B": "CLOSING",
}


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


def _endpoint(hex_text: str) -> str:
    address, port = hex_text.split(":")
    octets = bytes.fromhex(address)[::-1]  # little-endian on x86
    return f"{socket.inet_ntoa(octets)}:{int(port, 16)}"


def netstat_lines(proc_file: Path = Path("/proc/net/tcp")) -> list[str]:
    """`netstat -ano -p TCP` lines for the IPv4 TCP sockets of this namespace (the
    process id column is 0: /proc/net/tcp has none)."""
    lines = []
    for row in proc_file.read_text().splitlines()[1:]:
        fields = row.split()
        if len(fields) < 4:
            continue
        local, remote = _endpoint(fields[1]), _endpoint(fields[2])
        state = _STATES.get(fields[3].upper(), "UNKNOWN")
        lines.append(f"TCP    {local:<22} {remote:<22} {state:<15} 0")
    return lines
