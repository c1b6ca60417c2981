"""Helpers for the front-end phase tests: the tool run from the admin host, the
hosts files of every lab host read from outside, the journal's evidence."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ocsscale.lab import network
from ocsscale.lab.hostsvc import windows_hosts_file
from ocsscale.lab.system import ETC_NETNS
from ocsscale.runner import session

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
