"""A journal made the real way, for the report: the real CLI runs a playbook
of real actions on the local transport (hosts files in the test's directory,
nothing contacted), then steps with the evidence shapes of lb.distribution,
lb.failover_drill, dns.* and a migration-wide client load are written
through the journal's public methods, so every chart has data to draw."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ocsscale.runner.journal import Journal

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
if not PYTHON.exists():  # an installed checkout without the Makefile's venv
    PYTHON = Path(sys.executable)

POOL_NAME = "ocspool.report.test"
HOSTILE = "<script>alert('pwned')</script> & <img src=x onerror=alert(1)>"

POOL_YAML = """\
version: 1
pool: {{fqdn: ocspool.report.test, sip_domain: report.test}}
profile: ocs2007r2
legacy_fe:
  name: fe00
  fqdn: fe00.report.test
  address: 198.18.0.30
  transport: {{kind: local, hosts_file: {d}/hosts-fe00, service_command: "true {{service}}"}}
front_ends:
  - name: fe01
    fqdn: fe01.report.test
    address: 198.18.0.41
    weight: 2
    transport: {{kind: local, hosts_file: {d}/hosts-fe01, service_command: "true {{service}}"}}
  - name: fe02
    fqdn: fe02.report.test
    address: 198.18.0.42
    transport: {{kind: local, hosts_file: {d}/hosts-fe02, service_command: "true {{service}}"}}
test_clients:
  - name: client01
    address: 198.18.0.101
    transport: {{kind: local, hosts_file: {d}/hosts-client01}}
  - name: client02
    address: 198.18.0.102
    transport: {{kind: local, hosts_file: {d}/hosts-client02}}
directory: {{name: dc01, address: 198.18.0.10}}
load_balancer:
  driver: manual
  topology: one-armed
  vip: 198.18.0.40/24
  snat_addresses: [198.18.0.40]
  expected_peak_connections: 1000
dns: {{provider: manual, zone: report.test, servers: [198.18.0.53]}}
"""

# real actions only (hosts.pin/unpin, host.flush_dns): validate-fe pins and
# unpins; cutover leaves a pin in place, so rollback has something to undo
PLAYBOOK = """\
version: 1
phases:
  - id: validate-fe
    title: Validating new front ends
    section: test
    steps:
      - id: pin
        action: hosts.pin
        foreach: test_clients
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}", address: 198.18.0.41}
      - id: flush
        action: host.flush_dns
        foreach: test_clients
        as: host
        args: {host: "{{ host.name }}"}
    cleanup:
      - id: unpin
        action: hosts.unpin
        foreach: test_clients
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}"}
  - id: cutover
    title: Cutting over
    section: test
    steps:
      - id: pin-vip
        action: hosts.pin
        args: {host: client01, name: "{{ pool.fqdn }}", address: 198.18.0.40}
"""

HOSTS = ("fe00", "fe01", "fe02", "client01", "client02")


def cli(pool: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("OCSSCALE_POOL", None)
    env["COLUMNS"] = "250"
    result = subprocess.run(
        [str(PYTHON), "-m", "ocsscale", "-c", str(pool), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@dataclass
class Migrated:
    dir: Path
    pool: Path

    @property
    def state_dir(self) -> Path:
        return self.dir / ".ocsscale"

    @property
    def journal(self) -> Path:
        return self.state_dir / "journal.sqlite"


def _step(
    journal: Journal,
    cycle: Any,
    run_id: str,
    step_id: str,
    action: str,
    args: dict[str, Any],
    *,
    evidence: Any = None,
    undo: Any = None,
    summary: str = "",
    error: str | None = None,
) -> None:
    seq = journal.begin_step(cycle, run_id, step_id, action, args, False)
    changes = [{"kind": "check", "target": "test clients", "summary": summary or action}]
    journal.record_undo(seq, changes, undo)
    if error is not None:
        journal.fail_step(seq, error)
    else:
        journal.finish_step(seq, evidence, None)


def _buckets(t0: int, labels: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    return [
        {"t": t0 + i, "label": label, "ok": ok, "failed": failed, "by_server": {"fe01": ok}}
        for i, (label, ok, failed) in enumerate(labels)
    ]


def add_findings(journal_dir: Path, *, big: bool = True) -> None:
    """Steps with the evidence shapes the report draws, written as a run would."""
    journal = Journal.open(journal_dir)
    run_id = "crafted-run"
    try:
        journal.start_run(run_id, "run", "ops", "admin", 4242, {"pool": POOL_NAME, "phases": []})
        cycle = journal.open_cycle("validate-lb", 5, run_id)
        _step(
            journal,
            cycle,
            run_id,
            "validate-lb/distribution",
            "lb.distribution",
            {"connections": 9},
            summary="9 connections held open to 198.18.0.40:5061",
            evidence={
                "vip": "198.18.0.40",
                "port": 5061,
                "connections": 9,
                "counts": {"fe01": 6, "fe02": 3},
                "ideal": {"fe01": 6.0, "fe02": 3.0},
                "weights": {"fe01": 2, "fe02": 1},
                "landed": [{"from": "client01", "fe": "fe01"}],
                "nat": {
                    "fe01": {"proven": True, "from_snat": 6, "from_clients": [], "peers": []},
                    "fe02": {"proven": True, "from_snat": 3, "from_clients": [], "peers": []},
                },
            },
        )
        # an appliance passes an FE's refusal on: an optional port refused is information
        _step(
            journal,
            cycle,
            run_id,
            "validate-lb/reach[client01]",
            "lb.reach",
            {"from": "client01"},
            summary="TCP to the VIP 198.18.0.40",
            evidence={
                "from": "client01",
                "vip": "198.18.0.40",
                "required": [5061, 444],
                "optional": [5060, 80],
                "optional_answering": [80],
                "optional_not_answering": [5060],
                "ports": [
                    {"port": 5061, "requirement": "required", "ok": True, "detail": ""},
                    {"port": 444, "requirement": "required", "ok": True, "detail": ""},
                    {"port": 5060, "requirement": "optional", "ok": False, "detail": "reset"},
                    {"port": 80, "requirement": "optional", "ok": True, "detail": ""},
                ],
            },
        )
        journal.close_cycle(cycle.cycle_id, "done")

        cycle = journal.open_cycle("failover-test", 6, run_id)
        t0 = int(cycle.started)
        _step(
            journal,
            cycle,
            run_id,
            "failover-test/drill[fe01-service]",
            "lb.failover_drill",
            {"fe": "fe01", "mode": "service:5061"},
            undo={"fe": "fe01", "mode": "service", "services": ["RTCSRV"]},
            summary="stop RTCSRV on fe01 under a client load",
            evidence={
                "fe": "fe01",
                "mode": "service:5061",
                "detect_s": 2.345,
                "back_s": 1.5,
                "requests": 180,
                "failed_before_fault": 0,
                "failed_until_detection": 4,
                "failed_after_detection": 0,
                "held_survived": {"fe02": 2},
                "held_lost": {},
                # behind an appliance: measured on the load, and the operator's answer
                "detected_by": {"by": "outside", "run": 20, "in_a_row": 20, "restarts": 3},
                "back_detected_by": {"by": "operator", "answered_by_member": []},
                "load": {
                    "totals": {"requests": 180, "ok": 176, "failed": 4},
                    "labels": {
                        "before": {"requests": 20, "ok": 20, "failed": 0},
                        "fault": {"requests": 60, "ok": 56, "failed": 4},
                    },
                    "failed_seconds": _buckets(t0, [("fault", 17, 3), ("fault", 19, 1)]),
                    "failures": [],
                },
            },
        )
        _step(
            journal,
            cycle,
            run_id,
            "failover-test/drill[fe02-link]",
            "lb.failover_drill",
            {"fe": "fe02", "mode": "link"},
            undo={"fe": "fe02", "mode": "link", "services": []},
            error=f"failover drill on fe02 (link): {HOSTILE}",
        )
        journal.close_cycle(cycle.cycle_id, "failed", "a drill failed")

        cycle = journal.open_cycle("cutover", 8, run_id)
        t1 = int(cycle.started)
        old = {"values": ["198.18.0.30"], "ttl": 30}
        _step(
            journal,
            cycle,
            run_id,
            "cutover/lower-ttl",
            "dns.lower_ttl",
            {"name": POOL_NAME, "ttl": 5},
            undo={"name": POOL_NAME, "type": "A", "old": old, "new": {**old, "ttl": 5}},
            evidence={"name": POOL_NAME, "old": old, "ttl": 5, "ready_at_utc": "2026-01-01"},
        )
        _step(
            journal,
            cycle,
            run_id,
            "cutover/replace",
            "dns.replace",
            {"name": POOL_NAME, "address": "198.18.0.40", "expect": "198.18.0.30", "ttl": 5},
            undo={
                "name": POOL_NAME,
                "type": "A",
                "old": {"values": ["198.18.0.30"], "ttl": 5},
                "new": {"values": ["198.18.0.40"], "ttl": 5},
            },
            evidence={
                "old": {"values": ["198.18.0.30"], "ttl": 5},
                "new": {"values": ["198.18.0.40"], "ttl": 5},
                "read_back": {"values": ["198.18.0.40"], "ttl": 5},
            },
        )
        _step(
            journal,
            cycle,
            run_id,
            "cutover/verify",
            "dns.verify",
            {"name": POOL_NAME, "address": "198.18.0.40"},
            evidence={
                "name": POOL_NAME,
                "address": "198.18.0.40",
                "servers": [
                    {
                        "ns": "ns1.report.test.",
                        "address": "198.18.0.53",
                        "values": ["198.18.0.40"],
                        "ttl": 5,
                        "serial": 7,
                        "error": None,
                    }
                ],
            },
        )
        # a migration-wide load report (merged over clients): buckets at the top,
        # each client's own copy below must not be counted twice
        merged = _buckets(t1, [("cutover", 40, 0), ("cutover", 38, 2)])
        _step(
            journal,
            cycle,
            run_id,
            "cutover/load",
            "lab.load_report",
            {},
            evidence={
                "load": {
                    "buckets": merged,
                    "labels": {"cutover": {"requests": 120, "ok": 118, "failed": 2}},
                    "clients": {"client01": {"buckets": merged}},
                },
                "note": HOSTILE,
                "padding": ["x" * 100] * (300 if big else 1),
            },
        )
        journal.close_cycle(cycle.cycle_id, "done")
        journal.finish_run(run_id, "done")
    finally:
        journal.close()


@pytest.fixture(scope="session")
def _migrated_once(tmp_path_factory: pytest.TempPathFactory) -> Migrated:
    """A pool file, a real run through the CLI, then the crafted findings (once)."""
    base = tmp_path_factory.mktemp("migrated")
    (base / "pool.yaml").write_text(POOL_YAML.format(d=base))
    for h in HOSTS:
        (base / f"hosts-{h}").write_bytes(b"127.0.0.1\tlocalhost\n")
    (base / "playbook.yaml").write_text(PLAYBOOK)
    m = Migrated(base, base / "pool.yaml")
    cli(m.pool, "run", "--playbook", str(base / "playbook.yaml"), "--yes", check=True)
    add_findings(m.state_dir)
    return m


@pytest.fixture
def migrated(_migrated_once: Migrated, tmp_path: Path) -> Migrated:
    """A copy of that pool's directory for one test (the journal is closed and
    checkpointed, so its file alone is the whole journal; the report contacts
    no host, so the hosts files the copy's pool file names are never used)."""
    target = tmp_path / "pool"
    shutil.copytree(_migrated_once.dir, target)
    return Migrated(target, target / "pool.yaml")
