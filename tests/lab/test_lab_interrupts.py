"""Interrupted at the worst moment (issue 16), in the lab, through the real CLI.

One migration (a small playbook: the farm; validate-lb's isolate step, pins and
a drained restart; one service drill and one link drill; lower-ttl; the cutover
with its watch) on a lab of its own, cut short once inside every window where
the tool has broken something on purpose, by SIGKILL, SIGINT or SIGHUP (each
twice). Each window is seen from outside, in the journal (opened read-only)
and in the lab (a service stopped, a link down at the switch, a member's admin
state at the LB), and the signal is sent then. After each: `status` names what
is broken and the command that repairs it; a SIGKILL leaves the fault in place
(and a stale lock, cleared with `ocsscale unlock ID`), a SIGINT or SIGHUP leaves
it taken away; the next `run` resumes without redoing a finished step. Once the
last `run` has finished, one `rollback` puts back the state from before the
run: the pool record's value and TTL (dig, every DNS server), no farm and a
silent VIP, every service running, every link up, every hosts file
byte-identical (sha256).

A second test is the issue's first point: killed while the link drill holds
ocsfe01's link down, `rollback` (not `run`) brings the link up first, then
reaches ocsfe01 and reverts its pin.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ocsscale.probes import tcp_probe
from ocsscale.runner.status import status_report
from ocsscale_lab import lbhost, network, services, system
from ocsscale_lab.dns import CUTOVER_TTL, POOL_TTL
from ocsscale_lab.link import switch_ends

from .conftest import RUN_ID, RunningLab, bring_up
from .fe_support import (
    VIP_ADDRESS,
    dig,
    dns_is,
    edit_dns,
    hold_on_fe,
    hosts_files,
    lb_look,
    lb_untouched,
    output,
    pool_copy,
    tool,
)

pytestmark = pytest.mark.lab

#: seconds of the cutover's watch: long enough to see it armed and signal it
WATCH_WINDOW = 10
#: bounded waits: for a run to reach a window, for it to end after a signal
REACH_TIMEOUT = 300.0
END_TIMEOUT = 120.0
POLL = 0.02
#: as Popen reports each end: killed by the signal, or the tool's own 128+N
EXIT = {signal.SIGKILL: -signal.SIGKILL, signal.SIGINT: 130, signal.SIGHUP: 129}

REPAIR_RUN, REPAIR_ROLLBACK = "`ocsscale run`", "`ocsscale rollback`"

#: the shipped playbook's steps and arguments, fewer of them: one FE isolated and
#: restarted drained, one service drill and one link drill, the cutover whole but
#: for its inventory and pin checks
PLAYBOOK = """\
version: 1
phases:
  - id: configure-lb
    title: Configure the load balancer farm
    section: test
    steps:
      - id: farm
        action: lb.apply_farm
  - id: validate-lb
    title: Validate the load balancer
    section: test
    steps:
      - id: isolate
        action: lb.isolate
        args: {fe: ocsfe01}
      - id: pin-fe
        action: hosts.pin
        args: {host: ocsfe01, name: "{{ pool.fqdn }}", address: "{{ vip_address }}"}
      - id: pin
        action: hosts.pin
        args: {host: client01, name: "{{ pool.fqdn }}", address: "{{ vip_address }}"}
      - id: restart
        action: lb.drain_restart
        args: {fe: ocsfe01}
    cleanup:
      - id: unpin
        action: hosts.unpin
        args: {host: client01, name: "{{ pool.fqdn }}"}
      - id: unpin-fe
        action: hosts.unpin
        args: {host: ocsfe01, name: "{{ pool.fqdn }}"}
  - id: failover-test
    title: Simulate the failure of a front end
    section: test
    steps:
      - id: drill-service
        action: lb.failover_drill
        args: {fe: ocsfe02, mode: "service:5061"}
      - id: drill-link
        action: lb.failover_drill
        args: {fe: ocsfe01, mode: link}
  - id: lower-ttl
    title: Lower the pool record's TTL
    section: test
    steps:
      - id: lower
        action: dns.lower_ttl
        args: {name: "{{ pool.fqdn }}", ttl: "{{ dns.cutover_ttl }}"}
  - id: cutover
    title: Cut over the pool name to the VIP
    section: test
    steps:
      - id: replace
        action: dns.replace
        args:
          name: "{{ pool.fqdn }}"
          address: "{{ vip_address }}"
          expect: "{{ legacy_fe.address }}"
          ttl: "{{ dns.cutover_ttl }}"
      - id: verify
        action: dns.verify
        args: {name: "{{ pool.fqdn }}", address: "{{ vip_address }}"}
      - id: flush
        action: host.flush_dns
        foreach: "front_ends + test_clients"
        as: host
        args: {host: "{{ host.name }}"}
      - id: restart
        action: lb.drain_restart
        foreach: front_ends
        as: fe
        args: {fe: "{{ fe.name }}"}
      - id: probe
        action: probe.ports
        args: {from: client01, name: "{{ pool.fqdn }}", through: "{{ vip_address }}"}
      - id: watch
        action: cutover.watch
        args:
          name: "{{ pool.fqdn }}"
          address: "{{ vip_address }}"
          window: "{{ dns.watch_window }}"
          interval: "{{ dns.watch_interval }}"
          failures: "{{ dns.watch_failures }}"
      - id: raise-ttl
        action: dns.raise_ttl
        args: {name: "{{ pool.fqdn }}", address: "{{ vip_address }}", ttl: "{{ dns.ttl }}"}
"""

#: the issue's first point: a change on ocsfe01 the rollback must reach it for,
#: then the link drill on ocsfe01
LINK_PLAYBOOK = """\
version: 1
phases:
  - id: configure-lb
    title: Configure the load balancer farm
    section: test
    steps:
      - id: farm
        action: lb.apply_farm
  - id: validate-lb
    title: Pin the front end to the VIP
    section: test
    steps:
      - id: pin-fe
        action: hosts.pin
        args: {host: ocsfe01, name: "{{ pool.fqdn }}", address: "{{ vip_address }}"}
  - id: failover-test
    title: Pull the cable of a front end
    section: test
    steps:
      - id: drill-link
        action: lb.failover_drill
        args: {fe: ocsfe01, mode: link}
"""


@pytest.fixture(scope="module")
def interrupt_lab() -> Iterator[RunningLab]:
    """Its own lab: a test cut short here must not leave another module a
    half-migrated one."""
    yield from bring_up(f"tint{RUN_ID}", "one-armed", 2)


# -- the journal, read-only, as an operator's second terminal would -----------------
def _query(pool: Path, sql: str) -> list[dict[str, Any]]:
    path = pool.parent / ".ocsscale" / "journal.sqlite"
    if not path.exists():
        return []
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(sql)]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # the run has not created its journal yet
        raise
    finally:
        db.close()


def _faults(pool: Path) -> list[dict[str, Any]]:
    return _query(
        pool,
        "SELECT f.*, e.step_id AS step_id FROM faults f JOIN entries e ON e.seq = f.seq"
        " ORDER BY f.fault_id",
    )


def _open_fault(pool: Path, kind: str) -> dict[str, Any] | None:
    found = [f for f in _faults(pool) if f["kind"] == kind and f["cleared"] is None]
    return found[-1] if found else None


def _entries(pool: Path) -> list[dict[str, Any]]:
    return _query(pool, "SELECT seq, step_id, action, status FROM entries ORDER BY seq")


def _last(pool: Path, step_id: str) -> dict[str, Any] | None:
    found = [e for e in _entries(pool) if e["step_id"] == step_id]
    return found[-1] if found else None


def _done_counts(pool: Path) -> dict[str, int]:
    """Entries per step id, for every step that has finished."""
    rows = _entries(pool)
    done = {e["step_id"] for e in rows if e["status"] == "done"}
    return {s: sum(1 for e in rows if e["step_id"] == s) for s in done}


def _link_up(lab: RunningLab, host: str) -> bool:
    switch_ns, ends = switch_ends(lab.state.name, host)
    for end in ends:
        shown = system.ip("-o", "link", "show", "dev", end, ns=switch_ns)
        if "UP" not in shown.split("<", 1)[1].split(">", 1)[0].split(","):
            return False
    return True


def _running(lab: RunningLab, host: str, name: str) -> bool:
    service = services.load(lab.state.directory, host, name)
    return services.pid_of(lab.state.directory, service) is not None


def _fe_reachable(lab: RunningLab, fe: str) -> bool:
    """The FE's sshd (the tool's way in) answers from the admin host."""
    address = lab.address(fe)
    return lab.inside("admin", lambda: tcp_probe(address, 22, timeout=2.0)).ok


def _lab_state(lab: RunningLab) -> dict[str, Any]:
    """What the rollback must put back, read from outside the tool."""
    paths = lbhost.paths(lab.state, lab.topo)
    engine = services.load(lab.state.directory, "lb01", lbhost.ENGINE_SERVICE)
    vip = lab.inside("admin", lambda: tcp_probe(VIP_ADDRESS, 5061, timeout=1.0))
    return {
        "dns": dig(lab),
        "farm file": paths["farm"].exists(),
        "lb running": services.pid_of(lab.state.directory, engine) is not None,
        "vip answers": vip.ok,
        "services": {
            f"{h.name}/{name}": _running(lab, h.name, name)
            for h in lab.topo.hosts
            if h.role in ("fe", "legacy-fe")
            for name in services.names(lab.state.directory, h.name)
        },
        "links up": {h.name: _link_up(lab, h.name) for h in lab.topo.hosts},
        "hosts files": {
            name: hashlib.sha256(data).hexdigest() for name, data in hosts_files(lab).items()
        },
    }


def _admin_states(lab: RunningLab, pool: Path) -> dict[str, str]:
    """Each member's admin state, as `ocsscale lb status --json` on lb01 reports it."""
    return lb_look(lab, pool, lambda driver: {n: s.admin for n, s in driver.stats().items()})


# -- runs, cut short -------------------------------------------------------------------
class Runs:
    """`ocsscale run` of one playbook, started again and again on one pool file."""

    def __init__(self, lab: RunningLab, pool: Path, playbook: Path, logs: Path) -> None:
        self.lab, self.pool, self.playbook, self.logs = lab, pool, playbook, logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.count = 0

    def start(self) -> Path:
        assert network.blackhole_present(), "the 198.18.0.0/15 blackhole route is missing"
        self.count += 1
        log = self.logs / f"run-{self.count}.log"
        bin_dir = self.lab.state.bin_dir
        env = {
            **os.environ,
            "COLUMNS": "400",
            # written as it goes: a killed run's output is not lost in a buffer
            "PYTHONUNBUFFERED": "1",
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }
        argv = [
            "ip", "netns", "exec", self.lab.topo.ns("admin"), str(bin_dir / "ocsscale"),
            "-c", str(self.pool), "run", "--playbook", str(self.playbook),
            "--yes", "--no-hold", "--wait",
        ]  # fmt: skip
        with log.open("wb") as out:
            # `ip netns exec` and the wrapper exec: the pid is the run's own. Output to
            # a file: a pipe nobody reads while the run goes on could fill and block it
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env, start_new_session=True,
            )  # fmt: skip
        return log

    def wait_for(self, what: str, reached: Callable[[], bool], log: Path) -> None:
        """Until `reached()`, while the run goes on (bounded)."""
        assert self.proc is not None
        deadline = time.monotonic() + REACH_TIMEOUT
        while not reached():
            code = self.proc.poll()
            assert code is None, f"the run ended (exit {code}) before {what}:\n{_tail(log)}"
            assert time.monotonic() < deadline, f"no {what} within {REACH_TIMEOUT:.0f} s"
            time.sleep(POLL)

    def signal(self, signum: int, log: Path) -> tuple[float, str]:
        """Send `signum` to the run; when it was sent, and the run's output."""
        assert self.proc is not None and self.proc.poll() is None, _tail(log)
        sent = time.time()
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=END_TIMEOUT)
        except subprocess.TimeoutExpired:
            name = signal.Signals(signum).name
            raise AssertionError(f"the run did not end {END_TIMEOUT:.0f} s after {name}") from None
        finally:
            self.kill()
        text = log.read_text(errors="replace")
        assert code == EXIT[signum], f"exit {code} after {signal.Signals(signum).name}:\n{text}"
        assert "Traceback" not in text, text
        return sent, text

    def finish(self, log: Path) -> str:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=REACH_TIMEOUT)
        finally:
            self.kill()
        text = log.read_text(errors="replace")
        assert code == 0, text
        return text

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-25:])


def _status(lab: RunningLab, pool: Path) -> tuple[dict[str, Any], str]:
    as_json = tool(lab, pool, "status", "--json")
    assert as_json.returncode == 0, output(as_json)
    text = tool(lab, pool, "status")
    assert text.returncode == 0, output(text)
    return json.loads(as_json.stdout), text.stdout


def _lock(pool: Path) -> Path:
    return pool.parent / ".ocsscale" / "lock"


def _unlock(lab: RunningLab, pool: Path) -> None:
    """The documented step after a kill: the stale lock cleared by its id, the
    first command `status` names (then resuming the phase the kill cut short)."""
    lock_id = json.loads(_lock(pool).read_text())["lock_id"]
    report, _ = _status(lab, pool)
    unlock, resume = (step["command"] for step in report["next"][:2])
    assert unlock == shlex.join(["ocsscale", "-c", str(pool), "unlock", lock_id]), report["next"]
    assert resume.startswith(shlex.join(["ocsscale", "-c", str(pool), "run", "--phase"])), resume
    done = tool(lab, pool, *shlex.split(unlock)[3:])
    assert done.returncode == 0, output(done)


def _names_fault(lab: RunningLab, pool: Path, kind: str, target: str, step: str) -> None:
    """After a kill: `status` names the fault left in place, with its repair."""
    report, text = _status(lab, pool)
    [fault] = report["faults_in_place"]
    assert (fault["kind"], fault["target"], fault["step"]) == (kind, target, step), fault
    assert REPAIR_RUN in fault["repair"] and REPAIR_ROLLBACK in fault["repair"], fault
    assert f"left broken by the tool: {fault['summary']}" in text, text
    assert REPAIR_RUN in text and REPAIR_ROLLBACK in text, text


def _taken_away(lab: RunningLab, pool: Path, kind: str, sent: float) -> None:
    """After SIGINT/SIGHUP in a fault's window: the fault was in place (or being put
    there) when the signal was sent, and was taken away before the run ended."""
    rows = [f for f in _faults(pool) if f["kind"] == kind]
    assert rows and rows[-1]["cleared"] is not None, rows
    assert rows[-1]["placed"] < sent < rows[-1]["cleared"], (sent, rows[-1])
    report, text = _status(lab, pool)
    assert report["faults_in_place"] == [], report["faults_in_place"]
    assert "left broken by the tool" not in text, text
    assert not _lock(pool).exists(), "a Ctrl-C/SIGHUP left the lock"


def _cut_short(pool: Path) -> list[str]:
    """The steps a run left under way (their latest entry not finished)."""
    latest = {e["step_id"]: e["status"] for e in _entries(pool)}
    return [s for s, status in latest.items() if status in ("pending", "applying")]


class Resume:
    """What a resumed run must respect: the steps finished before it (not redone)
    and the steps the interruption left under way (finished by it)."""

    def __init__(self, pool: Path) -> None:
        self.pool = pool
        self.done = _done_counts(pool)
        # none when the signal came between two steps
        self.cut_short = _cut_short(pool)

    def check(self) -> None:
        now = _entries(self.pool)
        counts = {s: sum(e["step_id"] == s for e in now) for s in self.done}
        redone = {s: n for s, n in counts.items() if n != self.done[s]}
        assert not redone, f"finished steps run again: {redone}"
        finished = {e["step_id"] for e in now if e["status"] == "done"}
        assert set(self.cut_short) <= finished, (self.cut_short, finished)


def _put_right_first(text: str, summary_part: str) -> None:
    assert "left in place when the last run stopped" in text and summary_part in text, text
    assert "put right:" in text, text


def test_interrupted_in_every_window_then_resumed_and_rolled_back_to_before(
    interrupt_lab: RunningLab, tmp_path: Path
) -> None:
    lab = interrupt_lab
    pool = pool_copy(lab, tmp_path / "run", test_clients=["client01"])
    edit_dns(pool, watch_window=WATCH_WINDOW, watch_interval=1)
    playbook = tmp_path / "interrupts.yaml"
    playbook.write_text(PLAYBOOK)
    before = _lab_state(lab)
    legacy = lab.address("ocsfe00")
    # the lab as `lab up` left it, so that "as before" means whole
    assert before["services"] and all(before["services"].values()), before["services"]
    assert all(before["links up"].values()) and not before["farm file"], before
    dns_is(lab, legacy, POOL_TTL)
    runs = Runs(lab, pool, playbook, tmp_path)
    held: socket.socket | None = None
    try:
        # 1. the isolate step, ocsfe02 in maint: Ctrl-C puts it back under the shield
        log = runs.start()
        runs.wait_for("ocsfe02 in maint", lambda: bool(_open_fault(pool, "members-maint")), log)
        sent, _ = runs.signal(signal.SIGINT, log)
        _taken_away(lab, pool, "members-maint", sent)
        assert _admin_states(lab, pool) == {"ocsfe01": "ready", "ocsfe02": "ready"}
        assert _last(pool, "validate-lb/isolate")["status"] != "done"
        resume = Resume(pool)

        # 2. the drained restart, ocsfe01 drained while a session on it stays: killed
        held = hold_on_fe(lab)
        log = runs.start()
        runs.wait_for(
            "ocsfe01 drained",
            lambda: (
                bool(_open_fault(pool, "member-drained"))
                and _admin_states(lab, pool)["ocsfe01"] == "drain"
            ),
            log,
        )
        runs.signal(signal.SIGKILL, log)
        held.close()
        held = None
        resume.check()
        assert _admin_states(lab, pool)["ocsfe01"] == "drain"  # no shield against a kill
        _names_fault(lab, pool, "member-drained", "ocsfe01", "validate-lb/restart")
        _unlock(lab, pool)
        resume = Resume(pool)

        # 3. the service drill, ocs-poolmember stopped on ocsfe02: killed
        log = runs.start()
        runs.wait_for(
            "ocs-poolmember stopped on ocsfe02",
            lambda: (
                bool(_open_fault(pool, "service-stopped"))
                and not _running(lab, "ocsfe02", "ocs-poolmember")
            ),
            log,
        )
        _, text = runs.signal(signal.SIGKILL, log)
        _put_right_first(text, "ocsfe01 is drained")
        resume.check()
        assert _admin_states(lab, pool)["ocsfe01"] == "ready"
        assert not _running(lab, "ocsfe02", "ocs-poolmember")
        _names_fault(lab, pool, "service-stopped", "ocsfe02", "failover-test/drill-service")
        _unlock(lab, pool)
        resume = Resume(pool)

        # 4. the link drill, ocsfe01's link down at the switch: SIGHUP brings it up
        log = runs.start()
        runs.wait_for(
            "ocsfe01's link down",
            lambda: bool(_open_fault(pool, "link-down")) and not _link_up(lab, "ocsfe01"),
            log,
        )
        sent, text = runs.signal(signal.SIGHUP, log)
        _put_right_first(text, "stopped on ocsfe02")
        resume.check()
        _taken_away(lab, pool, "link-down", sent)
        assert _link_up(lab, "ocsfe01") and _running(lab, "ocsfe02", "ocs-poolmember")
        resume = Resume(pool)

        # 5. the cutover between its record change and its watch: SIGHUP
        log = runs.start()
        runs.wait_for(
            "the pool record changed",
            lambda: (_last(pool, "cutover/replace") or {}).get("status") == "done",
            log,
        )
        runs.signal(signal.SIGHUP, log)
        resume.check()
        assert _last(pool, "cutover/watch") is None, "the signal came after the watch began"
        dns_is(lab, VIP_ADDRESS, CUTOVER_TTL)
        report, text = _status(lab, pool)
        assert report["faults_in_place"] == [] and not _lock(pool).exists()
        watch = report["watch"]
        assert watch is not None and watch["armed"] is False, watch
        assert "ocsscale run --phase cutover" in watch["repair"], watch
        assert "ocsscale rollback --to cutover" in watch["repair"], watch
        assert "no watch is running" in text and watch["repair"] in text, text
        resume = Resume(pool)

        # 6. the watch itself: armed while it runs, then Ctrl-C
        log = runs.start()
        runs.wait_for(
            "the watch running",
            lambda: (_last(pool, "cutover/watch") or {}).get("status") in ("pending", "applying"),
            log,
        )
        # the report `status --json` prints, made here: a second interpreter's start
        # can outlast the watch on a loaded machine
        watch = status_report(pool.parent / ".ocsscale")["watch"]
        assert watch is not None and watch["armed"] is True and watch["repair"] is None, watch
        assert (_last(pool, "cutover/watch") or {}).get("status") != "done", "watch too short"
        runs.signal(signal.SIGINT, log)
        resume.check()
        assert _last(pool, "cutover/watch")["status"] != "done"
        dns_is(lab, VIP_ADDRESS, CUTOVER_TTL)
        report, text = _status(lab, pool)
        assert report["faults_in_place"] == [] and not _lock(pool).exists()
        watch = report["watch"]
        assert watch is not None and watch["armed"] is False and watch["repair"], watch
        assert "no watch is running" in text, text
        resume = Resume(pool)

        # the last run finishes: the watch again, the long TTL back
        log = runs.start()
        runs.finish(log)
        resume.check()
        dns_is(lab, VIP_ADDRESS, POOL_TTL)
        report, _ = _status(lab, pool)
        assert report["faults_in_place"] == [] and report["watch"] is None, report
        assert all(f["cleared"] is not None for f in _faults(pool))
    finally:
        runs.kill()
        if held is not None:
            held.close()
        if _lock(pool).exists():
            _unlock(lab, pool)
        rolled = tool(lab, pool, "rollback", "--yes", timeout=420)
    assert rolled.returncode == 0, output(rolled)
    dns_is(lab, legacy, POOL_TTL)
    after = _lab_state(lab)
    assert after == before, {k: (before[k], after[k]) for k in before if after[k] != before[k]}
    lb_untouched(lab)


def test_rollback_after_a_kill_in_the_link_drill_brings_the_link_up_first(
    interrupt_lab: RunningLab, tmp_path: Path
) -> None:
    """Issue 16, point 1: ocsfe01 was unreachable only because of the drill's own
    cut, which the rollback refused over; now it puts the link right first."""
    lab = interrupt_lab
    pool = pool_copy(lab, tmp_path / "run", test_clients=["client01"])
    playbook = tmp_path / "link.yaml"
    playbook.write_text(LINK_PLAYBOOK)
    before = _lab_state(lab)
    runs = Runs(lab, pool, playbook, tmp_path)
    try:
        log = runs.start()
        runs.wait_for(
            "ocsfe01's link down",
            lambda: bool(_open_fault(pool, "link-down")) and not _link_up(lab, "ocsfe01"),
            log,
        )
        runs.signal(signal.SIGKILL, log)
    finally:
        runs.kill()
    assert not _link_up(lab, "ocsfe01") and not _fe_reachable(lab, "ocsfe01")
    _names_fault(lab, pool, "link-down", "ocsfe01", "failover-test/drill-link")
    _unlock(lab, pool)
    rolled = tool(lab, pool, "rollback", "--yes", "-v", timeout=420)
    text = output(rolled)
    assert rolled.returncode == 0, text
    assert "put right first: the link of ocsfe01" in text, text
    # the link first, then the reverts: the pin on ocsfe01 among them
    assert text.index("put right:") < text.index("reverted validate-lb/pin-fe"), text
    # the drill's own revert is the link up the repair made: proven, not made again
    said = " ".join(text.split())
    assert "drill-link: already restored by the fault repair; verified" in said, text
    assert _link_up(lab, "ocsfe01") and _fe_reachable(lab, "ocsfe01")
    assert all(f["cleared"] is not None for f in _faults(pool))
    after = _lab_state(lab)
    assert after == before, {k: (before[k], after[k]) for k in before if after[k] != before[k]}
    lb_untouched(lab)
