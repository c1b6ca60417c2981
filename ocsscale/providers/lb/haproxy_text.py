"""What HAProxy says, as data: its configuration, `show stat`, `show servers state`,
`show events`. Pure functions (no host), used by haproxy.py.

Names: the rendered config (templates/haproxy.cfg.j2) has one backend `health`
whose servers are the members by name, and per farm port a frontend
`vip-PORT` and a backend `port-PORT` whose servers are MEMBER (one SNAT
address) or MEMBER-sN (the Nth SNAT address).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any

HEALTH_BACKEND = "health"
PORT_BACKEND = "port-"
RING = "ocsscale-events"

#: srv_admin_state bits (HAProxy's SRV_ADMF_*): forced, inherited, config,
#: resolution and hostname maintenance; forced and inherited drain
MAINT_BITS = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
DRAIN_BITS = 0x08 | 0x10

_DURATION = re.compile(r"^(\d+)(us|ms|s|m|h|d)?$")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1e-3}


def seconds(value: str) -> int | None:
    """An HAProxy duration (`1800s`, `30m`, `5000` = ms) in whole seconds."""
    m = _DURATION.match(value)
    return None if m is None else int(int(m.group(1)) * _UNITS[m.group(2)])


def sections(text: str) -> list[tuple[str, str, list[list[str]]]]:
    """(keyword, name, [words of each line]) for every section of a config."""
    found: list[tuple[str, str, list[list[str]]]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if not raw[:1].isspace():
            found.append((words[0], words[1] if len(words) > 1 else "", []))
        elif found:
            found[-1][2].append(words)
    return found


def member_of(server: str, members: set[str]) -> str | None:
    """The member a port backend's server line belongs to (MEMBER or MEMBER-sN)."""
    if server in members:
        return server
    m = re.match(r"^(.*)-s\d+$", server)
    return m.group(1) if m and m.group(1) in members else None


def config_view(text: str) -> dict[str, Any]:
    """The farm view as the config file states it (FarmSpec.view() shape)."""
    vips: set[str] = set()
    ports: set[int] = set()
    checks: list[int] = []
    balances: set[str] = set()
    snat: set[str] = set()
    timeouts: dict[str, int | None] = {}
    members: dict[str, dict[str, Any]] = {}
    for keyword, name, lines in sections(text):
        for words in lines:
            if words[0] == "timeout" and len(words) == 3 and words[1] in ("client", "server"):
                timeouts[words[1]] = seconds(words[2])
            if keyword == "frontend" and words[0] == "bind" and len(words) > 1:
                address, _, port = words[1].rpartition(":")
                vips.add(address)
                if port.isdigit():
                    ports.add(int(port))
            if keyword != "backend":
                continue
            if words[0] == "balance" and len(words) > 1:
                balances.add("wlc" if words[1] == "leastconn" else words[1])
            if name == HEALTH_BACKEND and words[:3] == ["tcp-check", "connect", "port"]:
                checks.append(int(words[3]))
            if words[0] == "server" and len(words) > 2:
                opts = dict(zip(words[3::2], words[4::2], strict=False))
                if "source" in opts:
                    snat.add(opts["source"])
                if name == HEALTH_BACKEND:
                    members[words[1]] = {
                        "address": words[2].rpartition(":")[0],
                        "weight": int(opts.get("weight", "1")),
                    }
    client, server = timeouts.get("client"), timeouts.get("server")
    return {
        "vip": ",".join(sorted(vips)),
        "ports": sorted(ports),
        "check_ports": sorted(checks),
        "idle_timeout": client if client == server else f"client {client} s, server {server} s",
        "balance": ",".join(sorted(balances)),
        "snat_addresses": sorted(snat),
        "members": members,
    }


def servers_state(text: str) -> list[dict[str, str]]:
    """`show servers state` rows as dicts keyed by its header's column names."""
    lines = text.splitlines()
    header: list[str] = []
    rows = []
    for line in lines[1:]:  # the first line is the format version
        if line.startswith("#"):
            header = line[1:].split()
        elif line.strip() and header:
            rows.append(dict(zip(header, line.split(), strict=False)))
    return rows


def runtime_members(rows: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Members, their addresses and weights from `show servers state`: every line of a
    member (the health check and each port) should agree; where they do not, the
    view shows every value, so the difference appears in the drift diff."""
    names = {r["srv_name"] for r in rows if r["be_name"] == HEALTH_BACKEND}
    seen: dict[str, dict[str, set[Any]]] = {n: {"address": set(), "weight": set()} for n in names}
    for r in rows:
        if r["be_name"] != HEALTH_BACKEND and not r["be_name"].startswith(PORT_BACKEND):
            continue
        member = member_of(r["srv_name"], names)
        if member is None:
            continue
        seen[member]["address"].add(r["srv_addr"])
        seen[member]["weight"].add(int(r["srv_uweight"]))
    view = {}
    for name, values in seen.items():
        addresses, weights = sorted(values["address"]), sorted(values["weight"])
        view[name] = {
            "address": addresses[0] if len(addresses) == 1 else ",".join(addresses),
            "weight": weights[0] if len(weights) == 1 else weights,
        }
    return view


def stat_rows(text: str) -> list[dict[str, str]]:
    """`show stat` CSV rows (header `# pxname,svname,...`)."""
    return list(csv.DictReader(io.StringIO(text.lstrip("# "))))


def port_health(status: str) -> str:
    """A server line's `show stat` status as the health of that port: up, down, or
    unknown (in maintenance HAProxy runs no checks; the admin state says maint)."""
    word = status.split(" ")[0]
    if word in ("UP", "DRAIN", "NOLB"):
        return "up"
    if word == "DOWN":
        return "down"
    return "unknown"


def admin_state(bits: int) -> str:
    if bits & MAINT_BITS:
        return "maint"
    if bits & DRAIN_BITS:
        return "drain"
    return "ready"


_EVENT = re.compile(r"^(\S+) Server ([^/\s]+)/(\S+) (.*)$")
_TAIL = re.compile(r"\.? \d+ active and \d+ backup servers.*$")


def _kind(message: str) -> tuple[str, str]:
    if "for maintenance" in message:
        return "admin-state", "maint"
    if "enters drain" in message:
        return "admin-state", "drain"
    if "leaving forced maintenance" in message or "leaving forced drain" in message:
        return "admin-state", "ready"
    if message.startswith("is DOWN"):
        return "server-down", message.partition("reason: ")[2] or message
    if message.startswith("is UP"):
        return "server-up", message.partition("reason: ")[2] or message
    return "other", message


def events(text: str, members: set[str] | None = None) -> list[dict[str, Any]]:
    """Member state changes from `show events RING` (format iso): the health
    backend's lines, which every port follows."""
    found = []
    for line in text.splitlines():
        m = _EVENT.match(line.strip())
        if m is None or m.group(2) != HEALTH_BACKEND:
            continue
        try:
            ts = datetime.fromisoformat(m.group(1)).timestamp()
        except ValueError:
            continue
        if members is not None and m.group(3) not in members:
            continue
        message = _TAIL.sub("", m.group(4))
        kind, reason = _kind(message)
        found.append({"ts": ts, "server": m.group(3), "kind": kind, "reason": reason})
    return found
