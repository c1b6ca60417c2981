"""Waits that end inside a maintenance window, in the lab (issue 17, point 5).

The cutover's FE restart with a session held through the VIP (as Communicator
holds its TLS session): under `cutover.fe_restart: drained` the drain ends at
`cutover.drain_timeout`, the FE is restarted anyway, the cut session is
counted (journaled, shown) and the phase does not fail; under `flush-only`
nothing is drained or restarted. The pool file's values reach the action
through the playbook's templates, as in the shipped playbook.

Decommission's drain on the legacy FE (ocsfe00, read over SSH with its own
connection table): a connection from a pool FE and one from a configured
peer are not clients; a client held past `decommission.drain_timeout` is
recorded under `stop` and fails the step under `fail`.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from ocsscale.actions.base import Context
from ocsscale.actions.legacy import LegacyDrain
from ocsscale.config.loader import load_pool
from ocsscale.errors import CheckFailed
from ocsscale.runner.plugins import load_actions
from ocsscale.transports.factory import HostPool

from .conftest import RunningLab
from .fe_support import (
    DRAIN_FE,
    entries,
    fe_pid,
    hold_on_fe,
    lb_untouched,
    member_at_lb,
    nothing_to_undo,
    output,
    pool_copy,
    tool,
)

pytestmark = pytest.mark.lab

# the shipped playbook's cutover restart step, alone
PLAYBOOK = """\
version: 1
phases:
  - id: cutover
    title: Restart one front end as the cutover does
    section: test
    steps:
      - id: restart
        action: lb.drain_restart
        args:
          fe: "{{ front_ends[0].name }}"
          fe_restart: "{{ cutover.fe_restart }}"
          drain_timeout: "{{ cutover.drain_timeout }}"
          on_timeout: restart
"""

LEGACY = "ocsfe00"
SIP_TLS = 5061


def _set(pool: Path, section: str, values: dict[str, Any]) -> None:
    yaml = YAML()
    data = yaml.load(pool.read_text())
    data[section] = values
    with pool.open("w") as f:
        yaml.dump(data, f)


def _cut(sock: socket.socket) -> bool:
    """Whether the far end has closed the connection (read within a few seconds)."""
    sock.settimeout(5)
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_cutover_restart_cuts_held_sessions_or_only_flushes(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    pool = pool_copy(lab, tmp_path / "run")
    playbook = tmp_path / "cutover.yaml"
    playbook.write_text(PLAYBOOK)
    result = tool(lab, pool, "run", "--phase", "configure-lb", "--yes", "--no-hold")
    assert result.returncode == 0, output(result)
    try:
        # drained: a session held past the drain timeout is cut, counted, the phase done
        _set(pool, "cutover", {"fe_restart": "drained", "drain_timeout": 2})
        held = hold_on_fe(lab)
        pid = fe_pid(lab)
        try:
            started = time.monotonic()
            result = tool(
                lab, pool, "run", "--phase", "cutover", "--playbook", str(playbook), "--yes",
                "--no-hold",
            )  # fmt: skip
            took = time.monotonic() - started
            text = output(result)
            assert result.returncode == 0, text
            assert "1 still open, cut by the restart (5065: 1)" in text, text
            assert _cut(held), "the held session survived the restart"
        finally:
            held.close()
        assert took >= 2, took  # it did wait for the drain
        (step,) = [e for e in entries(pool) if e["step_id"] == "cutover/restart"]
        evidence = step["evidence"]
        assert step["status"] == "done", step
        assert evidence["sessions_at_drain"] == 1 and evidence["sessions_cut"] == 1, evidence
        assert evidence["sessions_cut_by_port"] == {"5065": 1}, evidence
        assert evidence["restart"]["restarted"] and evidence["admin_after"] == "ready"
        assert fe_pid(lab) not in (None, pid)  # restarted for real
        member = member_at_lb(lab, pool)
        assert member.admin == "ready" and member.up_everywhere()
        result = tool(lab, pool, "report", "--format", "md", "-o", str(tmp_path / "r.md"))
        assert result.returncode == 0, output(result)
        report = (tmp_path / "r.md").read_text()
        assert "Sessions cut" in report and "| cutover/restart | ocsfe01 | 1 |" in report, report

        # flush-only: no drain wait and no restart, the held session untouched
        result = tool(lab, pool, "rollback", "--to", "cutover", "--yes")
        assert result.returncode == 0, output(result)
        _set(pool, "cutover", {"fe_restart": "flush-only", "drain_timeout": 300})
        held = hold_on_fe(lab)
        pid = fe_pid(lab)
        try:
            started = time.monotonic()
            result = tool(
                lab, pool, "run", "--phase", "cutover", "--playbook", str(playbook), "--yes",
                "--no-hold",
            )  # fmt: skip
            took = time.monotonic() - started
            assert result.returncode == 0, output(result)
            assert "not restarted (fe_restart: flush-only)" in output(result)
            assert not _cut(held), "flush-only cut the held session"
        finally:
            held.close()
        assert took < 60, took
        assert fe_pid(lab) == pid
        step = [e for e in entries(pool) if e["step_id"] == "cutover/restart"][-1]
        assert step["status"] == "done" and step["evidence"]["unchanged"] is True, step
        assert member_at_lb(lab, pool).admin == "ready"
    finally:
        result = tool(lab, pool, "rollback", "--yes")
    assert result.returncode == 0, output(result)
    assert nothing_to_undo(pool)
    lb_untouched(lab)


def _hold(lab: RunningLab, source: str) -> socket.socket:
    """A TCP connection from `source`'s namespace to the legacy FE's SIP TLS port."""
    target = lab.address(LEGACY)
    return lab.inside(source, lambda: socket.create_connection((target, SIP_TLS), timeout=5))


def _drain(lab: RunningLab, pool: Path, args: dict[str, Any]) -> tuple[Any, list[Any]]:
    """legacy.drain's apply from the admin host, over SSH to the legacy FE; no journal,
    so the cutover's TTL is not in the way. Returns its evidence and what it emitted."""
    events: list[Any] = []

    def go() -> Any:
        load_actions()
        loaded = load_pool(pool)
        with HostPool(loaded) as hosts:
            ctx = Context(
                pool=loaded.pool,
                profile=loaded.profile,
                host=hosts,
                emit=lambda kind, data: events.append((kind, dict(data))),
            )
            action = LegacyDrain(ctx, {"legacy": LEGACY, **args})
            return action.apply(action.read())

    return lab.inside("admin", go), events


def test_decommission_drain_tells_peers_from_clients(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    pool = pool_copy(lab, tmp_path / "run")
    client, peer = lab.address("client01"), lab.address("client02")
    _set(pool, "decommission", {"drain_timeout": 1, "on_timeout": "stop", "peers": ["client02"]})
    held = [_hold(lab, DRAIN_FE), _hold(lab, "client02")]  # a pool FE, a configured peer
    try:
        # only peers connected: done at once, nothing cut
        evidence, _ = _drain(lab, pool, {})
        assert "timed_out" not in evidence, evidence
        assert evidence["seen"][-1] == {**evidence["seen"][-1], "clients": 0, "peers": 2}
        assert lab.address(DRAIN_FE) in evidence["peers_known"] and peer in evidence["peers_known"]

        # a client held past the timeout: stop records it, fail fails
        held.append(_hold(lab, "client01"))
        evidence, events = _drain(lab, pool, {})
        assert evidence["timed_out"] is True and evidence["clients_cut"] == 1, evidence
        assert evidence["client_addresses"] == [client], evidence
        assert evidence["seen"][-1]["peers"] == 2, evidence
        lines = [d["line"] for kind, d in events if kind == "waiting"]
        assert lines and "1 client session(s)" in lines[0] and "2 peer session(s)" in lines[0]
        (finding,) = [d for kind, d in events if kind == "findings"]
        assert f"from {client}" in finding["findings"][0]["message"], finding
        with pytest.raises(CheckFailed, match=rf"1 client connection\(s\) still open.*{client}"):
            _drain(lab, pool, {"on_timeout": "fail"})

        # without the peer configured, client02 is a client like any other
        _set(pool, "decommission", {"drain_timeout": 1, "on_timeout": "stop"})
        evidence, _ = _drain(lab, pool, {})
        assert evidence["client_addresses"] == sorted([client, peer]), evidence
    finally:
        for sock in held:
            sock.close()
