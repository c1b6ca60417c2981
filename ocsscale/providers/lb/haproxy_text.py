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

# at most 12 digits: a longer number is no duration (and would overflow a float)
_DURATION = re.compile(r"^(\d{1,12})(us|ms|s|m|h|d)?$")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1e-3}


def seconds(value: str) -> int | None:
    """An HAProxy duration (`1800s`, `30m`, `5000` = ms) in whole seconds."""
    m = _DURATION.match(value)
    return None if m is None else int(int(m.group(1)) * _UNITS[m.group(2)])


def duration(value: str) -> float | None:
    """An HAProxy duration (`400ms`, `2s`, `5000` = ms) in seconds, to the millisecond."""
    m = _DURATION.match(value)
    return None if m is None else round(float(int(m.group(1)) * _UNITS[m.group(2)]), 3)


def duration_text(seconds: float) -> str:
    """Seconds as an HAProxy duration in whole milliseconds (`400ms`)."""
    return f"{round(seconds * 1000)}ms"


#: what HAProxy uses for a server's check when the config does not say
#: (`inter` 2 s, `fall` 3, `rise` 2; without `timeout check` a check may take `inter`)
HAPROXY_CHECK_DEFAULTS: dict[str, Any] = {"interval": 2.0, "fall": 3, "rise": 2}


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


#: server keywords that take no value (the ones a farm's server line may carry)
_SERVER_FLAGS = frozenset(
    {"check", "no-check", "backup", "no-backup", "disabled", "enabled", "ssl", "no-ssl"}
)


def server_options(words: list[str]) -> dict[str, str]:
    """A `server NAME ADDRESS ...` line's keywords and their values ("" for a flag)."""
    opts: dict[str, str] = {}
    rest = words[3:]
    i = 0
    while i < len(rest):
        if rest[i] in _SERVER_FLAGS or i + 1 == len(rest):
            opts[rest[i]] = ""
            i += 1
        else:
            opts[rest[i]] = rest[i + 1]
            i += 2
    return opts


def _int_or_text(text: str) -> int | str:
    # a value that is not a number is shown as it is: it differs from any plan
    return int(text) if text.isdigit() and len(text) < 10 else text[:40]


def _duration_or_text(text: str) -> float | str:
    found = duration(text)
    return text[:40] if found is None else found


def _one(values: list[Any], default: Any) -> Any:
    """The members' common value, the default when none says, every value when they differ."""
    found = sorted(set(values), key=str)
    if not found:
        return default
    return found[0] if len(found) == 1 else found


def check_view(servers: list[dict[str, str]], timeouts: dict[str, float | None]) -> dict[str, Any]:
    """The health servers' checks in the pool file's terms (FarmSpec.checks' view);
    HAProxy's own default for what the config does not set."""
    d = HAPROXY_CHECK_DEFAULTS

    def each(key: str, parse: Any, default: Any) -> list[Any]:
        return [parse(o[key]) if key in o else default for o in servers]

    inter = _one(each("inter", _duration_or_text, d["interval"]), d["interval"])
    connect, check = timeouts.get("connect"), timeouts.get("check")
    timeout: Any
    if check is None:  # then a check may take `inter`, connect and all (HAProxy's manual)
        timeout = inter
    elif connect == check:
        timeout = check
    else:
        timeout = f"connect {connect} s, check {check} s"
    return {
        "interval": inter,
        "timeout": timeout,
        "fall": _one(each("fall", _int_or_text, d["fall"]), d["fall"]),
        "rise": _one(each("rise", _int_or_text, d["rise"]), d["rise"]),
    }


def config_view(text: str) -> dict[str, Any]:
    """The farm view as the config file states it (FarmSpec.view() shape)."""
    vips: set[str] = set()
    ports: set[int] = set()
    checks: list[int] = []
    balances: set[str] = set()
    snat: set[str] = set()
    timeouts: dict[str, int | None] = {}
    # `timeout connect` / `timeout check` of the defaults, then the health backend's own
    check_timeouts: dict[str, float | None] = {}
    health_timeouts: dict[str, float | None] = {}
    health_servers: list[dict[str, str]] = []
    members: dict[str, dict[str, Any]] = {}
    for keyword, name, lines in sections(text):
        for words in lines:
            if words[0] == "timeout" and len(words) == 3 and words[1] in ("client", "server"):
                timeouts[words[1]] = seconds(words[2])
            if words[0] == "timeout" and len(words) == 3 and words[1] in ("connect", "check"):
                if keyword == "defaults":
                    check_timeouts[words[1]] = duration(words[2])
                elif keyword == "backend" and name == HEALTH_BACKEND:
                    health_timeouts[words[1]] = duration(words[2])
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
                opts = server_options(words)
                if opts.get("source"):
                    snat.add(opts["source"])
                if name == HEALTH_BACKEND:
                    health_servers.append(opts)
                    members[words[1]] = {
                        "address": words[2].rpartition(":")[0],
                        "weight": _int_or_text(opts.get("weight", "1")),
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
        "checks": check_view(health_servers, {**check_timeouts, **health_timeouts}),
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


def state_and_stat(text: str) -> tuple[str, str]:
    """The two answers of `show servers state;show stat` in one request: `show stat`
    starts at its `# pxname,` header. ValueError when it is not there (never guessed)."""
    at = text.find("\n# pxname,")
    if at < 0:
        raise ValueError("no `show stat` header in the answer")
    return text[: at + 1], text[at + 1 :]


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
