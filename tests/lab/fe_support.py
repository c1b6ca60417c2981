"""Helpers for the lab's phase tests: the tool run from the admin host, the hosts
files of every lab host read from outside, the journal's evidence, and what the
lab's DNS servers, LB and front ends answer (one place, so that no test module
imports another)."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.message
import dns.query
from ruamel.yaml import YAML

from ocsscale.actions.base import Context
from ocsscale.actions.legacy import LegacyDrain
from ocsscale.config.loader import load_pool
from ocsscale.errors import CheckFailed
from ocsscale.probes import tcp_probe
from ocsscale.providers.lb import open_driver
from ocsscale.providers.lb.base import LbSite
from ocsscale.providers.plugin import Ports
from ocsscale.runner import answers, session
from ocsscale.runner.plugins import load_actions
from ocsscale.transports.factory import HostPool
from ocsscale_lab import hostsvc, lbhost, network, services
from ocsscale_lab.hostsvc import windows_hosts_file
from ocsscale_lab.system import ETC_NETNS
from ocsscale_lab.topology import POOL_FQDN, VIP

from .conftest import RunningLab, ocsscale_cli

TOOL_MARK = b"ocsscale"


def pool_copy(
    lab: RunningLab,
    directory: Path,
    *,
    front_ends: list[str] | None = None,
    test_clients: list[str] | None = None,
    ports: dict[int, str] | None = None,
    on_fe: dict[str, object] | None = None,
) -> Path:
    """The lab's pool file in `directory` (its own journal and lock), optionally
    listing only some front ends or test clients, with `on_fe` set on each front
    end's entry and `ports` as `pool.ports` (every path in it is absolute)."""
    yaml = YAML()
    data = yaml.load(lab.state.pool_file.read_text())
    for key, keep in (("front_ends", front_ends), ("test_clients", test_clients)):
        if keep is not None:
            data[key] = [h for h in data[key] if h["name"] in keep]
            assert len(data[key]) == len(set(keep)), (key, keep)  # a name the lab lacks
    for fe in data["front_ends"]:
        fe.update(on_fe or {})
    if ports:
        data["pool"]["ports"] = ports
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pool.yaml"
    with path.open("w") as f:
        yaml.dump(data, f)
    return path


def tool_argv(lab: RunningLab, pool: Path, *args: str) -> list[str]:
    """`ocsscale lab exec admin -- ocsscale -c POOL ARGS` as argv for ocsscale_cli."""
    return [
        "lab",
        "exec",
        "admin",
        "--name",
        lab.state.name,
        "--",
        "ocsscale",
        "-c",
        str(pool),
        *args,
    ]


def tool(
    lab: RunningLab, pool: Path, *args: str, lab_exec: bool = False, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The real CLI, run on the lab's admin host (wide output: messages on one line).

    With `lab_exec` it goes through `ocsscale lab exec admin --`, as the README
    shows; otherwise straight through `ip netns exec` and the lab's `ocsscale`
    wrapper, which is what `lab exec` runs, without a second interpreter start.
    """
    # the run sends lab traffic (from the admin namespace): no lab packet may leave
    assert network.blackhole_present(), "the 198.18.0.0/15 blackhole route is missing"
    wide = {"COLUMNS": "400"}
    if lab_exec:
        return ocsscale_cli(*tool_argv(lab, pool, *args), env=wide, timeout=timeout)
    bin_dir = lab.state.bin_dir
    env = {**os.environ, **wide, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    argv = ["ip", "netns", "exec", lab.topo.ns("admin"), str(bin_dir / "ocsscale")]
    return subprocess.run(
        [*argv, "-c", str(pool), *args],
        stdin=subprocess.DEVNULL,  # no terminal: a step that needs a person is refused
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def fe_pool(
    lab: RunningLab, directory: Path, fe: str, ports: dict[int, str] | None = None, **on_fe: object
) -> Path:
    """The lab's pool file listing only the front end `fe` (with `on_fe` set on its
    entry and `ports` as `pool.ports`)."""
    return pool_copy(lab, directory, front_ends=[fe], ports=ports, on_fe=on_fe)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def error_line(text: str) -> str:
    """The run's `error:` line (the one that says why it stopped)."""
    return next(line for line in text.splitlines() if line.startswith("error:"))


def hosts_files(lab: RunningLab) -> dict[str, bytes]:
    """Every pinned host's hosts file, as it is inside the lab (read from outside)."""
    files = {}
    for host in lab.topo.hosts:
        if host.os == "windows" and host.role in ("windows-client", "fe", "legacy-fe"):
            files[host.name] = windows_hosts_file(lab.state, host).read_bytes()
        elif host.role in ("fe", "legacy-fe", "client"):
            files[host.name] = (ETC_NETNS / lab.topo.ns(host.name) / "hosts").read_bytes()
    return files


def assert_untouched(lab: RunningLab, before: dict[str, bytes]) -> None:
    after = hosts_files(lab)
    assert after == before, {h: after[h] for h in after if after[h] != before.get(h)}
    assert not [h for h, data in after.items() if TOOL_MARK in data.lower()]


def entries(pool: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(pool.parent / ".ocsscale" / "journal.sqlite", timeout=30)
    db.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in db.execute("SELECT * FROM entries ORDER BY seq")]
    finally:
        db.close()
    for row in rows:
        row["evidence"] = json.loads(row["evidence"]) if row["evidence"] else None
    return rows


def journaled_answers(pool: Path, *, go_ahead: bool = False) -> list[dict[str, Any]]:
    """Every answer the runs journaled (who, how, what), oldest first: the answers to
    questions the run asked; with `go_ahead`, also the go-ahead `--yes` gave."""
    db = sqlite3.connect(pool.parent / ".ocsscale" / "journal.sqlite", timeout=30)
    db.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in db.execute("SELECT * FROM answers ORDER BY answer_id")]
    finally:
        db.close()
    return [r for r in rows if go_ahead or r["via"] != answers.FLAG]


def nothing_to_undo(pool: Path) -> bool:
    """What `rollback` would still undo, read from the journal in this process."""
    return session.pending_rollback(pool.parent / ".ocsscale") == []


def rollback_leaves_nothing(lab: RunningLab, pool: Path, before: dict[str, bytes]) -> None:
    """`rollback` succeeds, every hosts file is as `before`, nothing is left to undo."""
    rolled = tool(lab, pool, "rollback", "--yes")
    assert rolled.returncode == 0, output(rolled)
    assert_untouched(lab, before)
    assert nothing_to_undo(pool)


def status(lab: RunningLab, pool: Path) -> dict[str, Any]:
    result = tool(lab, pool, "status", "--json")
    assert result.returncode == 0, output(result)
    return json.loads(result.stdout)


# What the lab answers from outside the tool: DNS, the LB, the front ends' ports.

VIP_ADDRESS = VIP.split("/", 1)[0]
#: the front end the drain tests hold a session on and restart
DRAIN_FE = "ocsfe01"
#: the pool member stand-in names itself in the banner on this port
BANNER_PORT = 5065
#: the legacy FE and the new ones of a two-FE lab
FE_HOSTS = ("ocsfe00", "ocsfe01", "ocsfe02")
#: the profile's required ports that the pool member serves (every FE port answers)
SOME_PORTS = (5061, 444, 443, 135)
#: how long the Windows client holds its connection while the drain looks
HELD_SECONDS = 8.0


def first_dns(lab: RunningLab) -> str:
    return lab.topo.by_role("dns")[0].address


def dns_record(lab: RunningLab, name: str = POOL_FQDN, rdtype: str = "A") -> tuple[set[str], int]:
    """What the lab's DNS server answers for the record (as dig would ask it)."""
    server = first_dns(lab)
    query = dns.message.make_query(name, rdtype)
    response = lab.inside("admin", lambda: dns.query.tcp(query, server, timeout=5))
    rrset = response.answer[0]
    return {r.to_text() for r in rrset}, rrset.ttl


def edit_dns(pool: Path, **values: object) -> None:
    yaml = YAML()
    data = yaml.load(pool.read_text())
    data["dns"].update(values)
    with pool.open("w") as f:
        yaml.dump(data, f)


def wait_ready(pool: Path) -> None:
    """Every lowered record's old TTL (the pool name, sip.<domain>, the SRV record),
    waited out for real."""
    lowered = [e for e in entries(pool) if e["action"] == "dns.lower_ttl"]
    ready = max((e["evidence"] or {}).get("ready_at", 0) for e in lowered)
    while time.time() < ready:
        time.sleep(0.5)


def dig(lab: RunningLab) -> dict[str, tuple[tuple[str, ...], set[int]]]:
    """The pool name's A record (values, TTLs) as every lab DNS server answers it."""
    assert network.blackhole_present(), "the 198.18.0.0/15 blackhole route is missing"
    answers = {}
    for server in lab.topo.by_role("dns"):
        done = subprocess.run(
            ["ip", "netns", "exec", lab.topo.ns("admin"), "dig", "+noall", "+answer",
             "+time=2", "+tries=3", POOL_FQDN, "A", f"@{server.address}"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        rows = [line.split() for line in done.stdout.splitlines() if line.strip()]
        assert done.returncode == 0 and rows, f"dig @{server.address}: {done.stdout}{done.stderr}"
        answers[server.name] = (tuple(sorted(r[4] for r in rows)), {int(r[1]) for r in rows})
    return answers


def dns_is(lab: RunningLab, address: str, ttl: int) -> None:
    expected = ((address,), {ttl})
    answers = dig(lab)
    assert all(a == expected for a in answers.values()), answers


def lb_untouched(lab: RunningLab) -> None:
    """The LB host as `lab up` left it: the LB stopped, no config file, no VIP."""
    paths = lbhost.paths(lab.state, lab.topo)
    engine = lab.state.lb == "engine"
    config = paths["farm"] if engine else paths["haproxy_cfg"]
    assert not config.exists()
    assert not list(config.parent.glob("*.ocsscale*")), "a backup or staged file is left"
    name = lbhost.ENGINE_SERVICE if engine else lbhost.HAPROXY_SERVICE
    service = services.load(lab.state.directory, "lb01", name)
    assert services.pid_of(lab.state.directory, service) is None, "the LB still runs"
    silent = lab.inside("admin", lambda: tcp_probe(VIP_ADDRESS, 5061, timeout=1.0))
    assert not silent.ok, "the VIP still answers"


def lb_look(lab: RunningLab, pool: Path, look: Callable[[Any], Any]) -> Any:
    """`look(driver)` with the pool file's LB driver, from the admin host."""
    loaded = load_pool(pool)

    def go() -> Any:
        with HostPool(loaded) as hosts:
            site = LbSite.from_pool(loaded.pool, loaded.profile)
            return look(open_driver(loaded.pool.load_balancer.driver, site, Ports(host=hosts)))

    return lab.inside("admin", go)


def member_at_lb(lab: RunningLab, pool: Path) -> Any:
    return lb_look(lab, pool, lambda driver: driver.stats()[DRAIN_FE])


def connect_through_vip(lab: RunningLab) -> tuple[socket.socket, str]:
    """A connection through the VIP to the banner port, and the FE that answered it."""

    def go() -> tuple[socket.socket, bytes]:
        sock = socket.create_connection((VIP_ADDRESS, BANNER_PORT), timeout=5)
        data = b""
        while b"\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return sock, data

    sock, banner = lab.inside("admin", go)
    found = re.search(rb"server=(\S+)", banner)
    assert found, banner
    return sock, found.group(1).decode()


def hold_on_fe(lab: RunningLab) -> socket.socket:
    """A session the LB gave to DRAIN_FE (weighted least connections: within a few tries)."""
    others = []
    try:
        for _ in range(8):
            sock, server = connect_through_vip(lab)
            if server == DRAIN_FE:
                return sock
            others.append(sock)
    finally:
        for sock in others:
            sock.close()
    raise AssertionError(f"no connection through the VIP landed on {DRAIN_FE}")


def fe_pid(lab: RunningLab) -> int | None:
    service = services.load(lab.state.directory, DRAIN_FE, hostsvc.POOLMEMBER)
    return services.pid_of(lab.state.directory, service)


def windows_services(lab: RunningLab, host: str) -> dict[str, tuple[str, str]]:
    """(status, start mode) of each service, as the FE's stand-in keeps them."""
    path = lab.state.host_dir(host) / "sandbox" / "services.json"
    raw = json.loads(path.read_text())
    return {
        name: ("Running", "Auto")
        if isinstance(value, str)
        else (value["status"], value["start_mode"])
        for name, value in raw.items()
    }


def port_answers(lab: RunningLab, host: str, port: int) -> bool:
    address = lab.address(host)
    return lab.inside("admin", lambda: tcp_probe(address, port, timeout=2.0)).ok


def evidence_of(pool: Path, action: str) -> list[dict[str, Any]]:
    return [e["evidence"] for e in entries(pool) if e["action"] == action and e["evidence"]]


def drain_sees_a_held_client(
    lab: RunningLab, pool: Path, legacy_name: str = "ocsfe00", holder: str = "client02"
) -> dict[str, Any]:
    """Decommission's drain on `legacy_name`, in the admin namespace, while the Windows
    host `holder` holds a connection to its first SIP port: what the holder saw, the
    drain's failure (None: it never listed the connection), the drain once the
    connection is gone, and the WinRM peers in the holder's own table."""
    legacy = lab.address(legacy_name)

    def go() -> dict[str, Any]:
        load_actions()
        loaded = load_pool(pool)
        with HostPool(loaded) as hosts:
            ctx = Context(pool=loaded.pool, profile=loaded.profile, host=hosts)
            drain = LegacyDrain(
                ctx, {"legacy": legacy_name, "drain_timeout": 1, "on_timeout": "fail"}
            )
            client = ctx.host(holder)
            held: dict[str, Any] = {}
            port = drain.ports[0]
            thread = threading.Thread(
                target=lambda: held.update(client.tcp_hold(legacy, port, 5.0, hold=HELD_SECONDS))
            )
            thread.start()
            failed = None
            try:
                for _ in range(int(HELD_SECONDS * 2)):  # until the held connection is listed
                    try:
                        drain.apply({})
                    except CheckFailed as exc:
                        failed = exc.message
                        break
                    threading.Event().wait(0.5)
            finally:
                thread.join()
            drained = drain.apply({})
            winrm = [c.remote for c in client.connections([5986])]
            return {"held": held, "failed": failed, "drained": drained, "winrm": winrm}

    return lab.inside("admin", go)
