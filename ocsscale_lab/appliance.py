"""The lab's packet-forwarding appliance (`lab up --lb appliance`).

lb01 forwards packets with the kernel's nftables NAT, as a WebMux in NAT+SNAT
mode or an F5 FastL4 virtual server does: no process accepts a connection on
a member's behalf, so a member's refusal reaches the client as a reset.
Three parts, all under lb01's directory in the lab:

- the configuration (config.json): what the operator entered at the appliance
  (appliance_operator.py writes it, from a checklist's data only), plus the
  appliance's own interfaces (`hardware`, written once by `lab up`);
- the firmware (appliance_firmware.py, a lab service of lb01): health-checks the
  members, applies the ruleset, the VIP and the idle timeout, and writes its view
  (view.json) with the configuration generation it has applied;
- the ruleset (`render_ruleset`): DNAT from the VIP's ports to the members in
  rotation, split by weight with a counter (`numgen inc`) per port, so weights
  2:1:1 give exactly 2:1:1 of a port's new connections; SNAT to the SNAT addresses; other forwarded
  traffic (routing) accepted or dropped.

The VIP is on the front interface only while a farm is entered: after the
farm's revert nothing answers for it, not even a reset.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from ocsscale.statefiles import write_atomic

from .hostsvc import PY_ENV, python_argv
from .services import Service
from .state import LabState
from .system import LabError
from .topology import LabHost, Topology

FIRMWARE_SERVICE = "appliance-firmware"
TABLE = "ocsscale_appliance"
#: what the lab's pool file names as the appliance (load_balancer.driver.vendor)
VENDOR = "webmux"
NFT = "/usr/sbin/nft"
ADMIN_STATES = ("ready", "drain", "maint")
#: bounds on what the appliance holds (the numgen map has one slot per weight unit)
MAX_MEMBERS = 64
MAX_WEIGHT = 100
MAX_PORTS = 64
MAX_JSON_BYTES = 256 * 1024
#: how long a configuration change may take to be applied by the firmware
APPLY_TIMEOUT = 15.0


def lb_host(topo: Topology) -> LabHost:
    return topo.by_role("lb")[0]


def paths(state: LabState, topo: Topology) -> dict[str, Path]:
    base = state.host_dir(lb_host(topo).name) / "appliance"
    return {
        "dir": base,
        "config": base / "config.json",
        "view": base / "view.json",
        "lock": base / "config.lock",
    }


def hardware(topo: Topology) -> dict[str, Any]:
    """The appliance's namespace and interfaces, as the firmware needs them."""
    host = lb_host(topo)
    return {
        "ns": topo.ns(host.name),
        "interfaces": [
            {"ifname": i.ifname, "address": i.address, "prefix": 24} for i in host.interfaces
        ],
    }


def initial_config(topo: Topology) -> dict[str, Any]:
    """No farm; routing as `lab up --lb-forwarding` asks (two-armed only)."""
    return {
        "generation": 0,
        "routing": lb_host(topo).forwarding,
        "farm": None,
        "admin": {},
        "hardware": hardware(topo),
    }


# -- files -------------------------------------------------------------------------


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from one of the appliance's files (LabError when unreadable)."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise LabError(f"appliance: cannot read {path.name}: {exc.strerror}") from None
    if len(raw) > MAX_JSON_BYTES:
        raise LabError(f"appliance: {path.name} is larger than {MAX_JSON_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError:
        raise LabError(f"appliance: {path.name} is not JSON") from None
    if not isinstance(data, dict):
        raise LabError(f"appliance: {path.name} is not a JSON object")
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n", private=True)


def wait_applied(view_path: Path, generation: int, timeout: float = APPLY_TIMEOUT) -> dict:
    """The firmware's view once it has applied configuration `generation`; LabError
    when it reports an error applying it or does not get there within `timeout`."""
    deadline = time.monotonic() + timeout
    last = "no view written"
    while time.monotonic() < deadline:
        try:
            view = read_json(view_path)
        except LabError as exc:
            last = exc.message
        else:
            if int(view.get("generation", -1)) >= generation:
                if view.get("error"):
                    raise LabError(f"the appliance did not apply the change: {view['error']}")
                return view
            last = f"applied generation {view.get('generation')}, not {generation}"
        time.sleep(0.05)
    raise LabError(
        f"the appliance's firmware did not apply the change within {timeout:g} s ({last})"
    )


# -- the ruleset ---------------------------------------------------------------------


def vip_interface(hw: dict[str, Any], vip: str) -> str | None:
    """The interface whose network holds the VIP (the farm's front interface)."""
    address = ipaddress.IPv4Address(vip)
    for iface in hw["interfaces"]:
        network = ipaddress.IPv4Interface(f"{iface['address']}/{iface['prefix']}").network
        if address in network:
            return str(iface["ifname"])
    return None


def in_rotation(
    farm: dict[str, Any], admin: dict[str, str], health: dict[str, bool]
) -> list[dict[str, Any]]:
    """Members that take new connections: admin state ready and both checks passing."""
    return [
        m
        for m in farm["members"]
        if admin.get(m["name"], "ready") == "ready" and health.get(m["name"], False)
    ]


def _split(members: list[dict[str, Any]]) -> str:
    """`numgen inc mod N map {...}`: one slot per weight unit, in member order."""
    total = sum(int(m["weight"]) for m in members)
    slots = []
    start = 0
    for m in members:
        end = start + int(m["weight"]) - 1
        key = str(start) if end == start else f"{start}-{end}"
        slots.append(f"{key} : {m['address']}")
        start = end + 1
    return f"numgen inc mod {total} map {{ {', '.join(slots)} }}"


def render_ruleset(config: dict[str, Any], health: dict[str, bool]) -> str:
    """The whole table, replacing the previous one in one transaction (`nft -f`)."""
    routing = bool(config.get("routing"))
    lines = [
        f"table ip {TABLE}",
        f"delete table ip {TABLE}",
        f"table ip {TABLE} {{",
        "\tchain routing {",
        f"\t\ttype filter hook forward priority filter; policy {'accept' if routing else 'drop'};",
    ]
    if not routing:
        # the farm's translated connections are forwarded whatever routing says
        lines.append("\t\tct status dnat accept")
    lines.append("\t}")
    farm = config.get("farm")
    if farm:
        members = in_rotation(farm, config.get("admin", {}), health)
        lines += [
            "\tchain vip_dnat {",
            "\t\ttype nat hook prerouting priority dstnat; policy accept;",
        ]
        if members:
            # one rule, so one rotation, per port, as an appliance keeps one per virtual
            # service: a client load that cycles through the ports still reaches every
            # member on every port (one rotation across the ports can alias with it)
            for port in sorted(farm["ports"]):
                target = members[0]["address"] if len(members) == 1 else _split(members)
                lines.append(f"\t\tip daddr {farm['vip']} tcp dport {port} dnat to {target}")
        lines.append("\t}")
        snat = farm["snat_addresses"] if farm.get("snat") else []
        lines += [
            "\tchain member_snat {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        ]
        if snat:
            source = (
                snat[0] if len(snat) == 1 else _split([{"address": a, "weight": 1} for a in snat])
            )
            lines.append(f"\t\tct status dnat snat to {source}")
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def nft_apply(ns: str, text: str) -> None:
    """Load a ruleset into namespace `ns` (one transaction: all of it or nothing)."""
    try:
        proc = subprocess.run(
            ["ip", "netns", "exec", ns, NFT, "-f", "-"],
            input=text,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"nft in {ns} failed: {exc}") from None
    if proc.returncode != 0:
        raise LabError(f"nft in {ns} refused the ruleset: {proc.stderr.strip()[:500]}")


def nft_list(ns: str) -> str:
    """The appliance's table as the kernel holds it ("" when there is none)."""
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, NFT, "list", "table", "ip", TABLE],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else ""


# -- the lab service -----------------------------------------------------------------


def firmware_service(state: LabState, topo: Topology) -> Service:
    p = paths(state, topo)
    argv = python_argv(
        "ocsscale_lab.appliance_firmware",
        "--config", str(p["config"]),
        "--view", str(p["view"]),
        "--lab-state", str(state.state_file),
    )  # fmt: skip
    # no port: it listens on nothing (it forwards packets); started with the lab
    return Service(
        lb_host(topo).name, FIRMWARE_SERVICE, topo.ns(lb_host(topo).name), argv, (), PY_ENV
    )


def install(state: LabState, topo: Topology) -> Service:
    """Write the empty configuration; the caller starts the firmware (recorded first)."""
    p = paths(state, topo)
    p["dir"].mkdir(mode=0o700, parents=True, exist_ok=True)
    write_json(p["config"], initial_config(topo))
    return firmware_service(state, topo)


def driver_lines(indent: str) -> list[str]:
    """The pool file's `driver:` block: the manual driver, the appliance's vendor."""
    return [f"{indent}driver:", f"{indent}  kind: manual", f"{indent}  vendor: {VENDOR}"]
