"""A migration against Windows front ends (issue 17, point 0): `lab up --fe-os windows`.

The legacy FE and the new FEs are WinRM stand-ins with the OCS services by display
name, RTCSRV bound to the lab's real pool member in the FE's namespace. One run
of a small playbook (preflight; validate-fe with the pins in the Windows hosts files,
a flush and a restart of the services found by display name, probes that see each
FE's pool member re-resolve the pool name; configure-lb; validate-lb's isolate; one
service drill; lower-ttl; the cutover; decommission's drain and service stop), then
`rollback`. Checked from outside the tool:

- the Windows services are what the tool acts on: the drill's Stop-Service of RTCSRV
  closes the FE's listeners (the LB takes it out of every port), decommission leaves
  ocsfe00's OCS services Disabled and Stopped and its ports closed;
- after the rollback: every service's state and start mode as before (services.json),
  the pool member answering on every FE port again, every hosts file byte-identical,
  the pool record back, the VIP silent with no farm.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsscale_lab import services
from ocsscale_lab.dns import POOL_TTL

from .conftest import RUN_ID, RunningLab, bring_up
from .fe_support import (
    FE_HOSTS,
    SOME_PORTS,
    VIP_ADDRESS,
    dns_is,
    edit_dns,
    evidence_of,
    hosts_files,
    lb_untouched,
    output,
    pool_copy,
    port_answers,
    tool,
    windows_services,
)

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]

PLAYBOOK = """\
version: 1
phases:
  - id: preflight
    title: Preflight checks
    section: test
    steps:
      - id: reachable
        action: host.reachable
        foreach: "[legacy_fe] + front_ends + test_clients"
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}"}
  - id: validate-fe
    title: Validate the new front ends
    section: test
    steps:
      - group: per-fe
        foreach: front_ends
        as: fe
        steps:
          - id: pin-fe
            action: hosts.pin
            args: {host: "{{ fe.name }}", name: "{{ pool.fqdn }}", address: "{{ fe.address }}"}
          - id: flush-fe
            action: host.flush_dns
            args: {host: "{{ fe.name }}"}
          - id: restart
            action: host.restart_services
            args: {host: "{{ fe.name }}"}
          - id: pin
            action: hosts.pin
            foreach: test_clients
            as: host
            args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}", address: "{{ fe.address }}"}
          - id: flush
            action: host.flush_dns
            foreach: test_clients
            as: host
            args: {host: "{{ host.name }}"}
          - id: probe
            action: probe.ports
            args: {from: client01, name: "{{ pool.fqdn }}", expect_server: "{{ fe.name }}"}
    cleanup:
      - id: unpin
        action: hosts.unpin
        foreach: test_clients
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}"}
      - id: unpin-flush
        action: host.flush_dns
        foreach: test_clients
        as: host
        args: {host: "{{ host.name }}"}
      - id: unpin-fe
        action: hosts.unpin
        foreach: front_ends
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}"}
      - id: unpin-fe-flush
        action: host.flush_dns
        foreach: front_ends
        as: host
        args: {host: "{{ host.name }}"}
      - id: unpin-restart
        action: host.restart_services
        foreach: front_ends
        as: fe
        args: {host: "{{ fe.name }}"}
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
  - id: failover-test
    title: Simulate the failure of a front end
    section: test
    steps:
      - id: drill-service
        action: lb.failover_drill
        args: {fe: ocsfe02, mode: "service:5061"}
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
  - id: decommission
    title: Decommission the old single front end
    section: test
    steps:
      - id: drain
        action: legacy.drain
        args:
          legacy: "{{ legacy_fe.name }}"
          drain_timeout: "{{ decommission.drain_timeout }}"
          on_timeout: "{{ decommission.on_timeout }}"
          peers: "{{ decommission.peers }}"
      - id: stop-services
        action: legacy.stop_services
        args: {legacy: "{{ legacy_fe.name }}"}
"""


@pytest.fixture(scope="module")
def windows_fe_lab() -> Iterator[RunningLab]:
    yield from bring_up(f"twfe{RUN_ID}", "one-armed", 2, fe_os="windows")


def _member_running(lab: RunningLab, host: str) -> bool:
    return all(
        services.pid_of(lab.state.directory, services.load(lab.state.directory, host, n))
        is not None
        for n in ("ocs-poolmember", "ocs-focus")
    )


def test_a_migration_against_windows_front_ends_then_rolled_back(
    windows_fe_lab: RunningLab, tmp_path: Path
) -> None:
    lab = windows_fe_lab
    pool_text = lab.state.pool_file.read_text()
    for fe in FE_HOSTS:  # the pool file reaches every FE over WinRM, none over SSH
        section = pool_text.split(f"name: {fe}\n", 1)[1].split("transport:", 1)[1]
        assert section.lstrip().startswith("kind: winrm"), fe
    before_services = {h: windows_services(lab, h) for h in FE_HOSTS}
    assert all(s["RTCSRV"] == ("Running", "Auto") for s in before_services.values())
    before_hosts = {h: hashlib.sha256(d).hexdigest() for h, d in hosts_files(lab).items()}
    assert set(FE_HOSTS) <= set(before_hosts)
    pool = pool_copy(lab, tmp_path / "run")
    edit_dns(pool, watch_window=4)
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(PLAYBOOK)

    run = tool(lab, pool, "run", "--playbook", str(playbook), "--yes", "--no-hold", "--wait",
               timeout=600)  # fmt: skip
    assert run.returncode == 0, output(run)[-4000:]

    # validate-fe: each FE's services restarted with the pin in its Windows hosts file,
    # and its pool member answered the probes resolving the pool name to itself
    restarted = evidence_of(pool, "host.restart_services")
    assert restarted and all(
        "RTCSRV" in json.dumps(e) and "W3SVC" in json.dumps(e) for e in restarted
    )
    probes = [e for e in evidence_of(pool, "probe.ports") if e.get("expected_server")]
    assert {p["expected_server"] for p in probes} == {"ocsfe01", "ocsfe02"}, probes
    assert all(p["restart_proven"] for p in probes), probes
    # the drill: Stop-Service RTCSRV took the FE out of every port at the LB, and back
    (drill,) = evidence_of(pool, "lb.failover_drill")
    assert drill["detect_s"] is not None and drill["back_s"] is not None, drill
    assert drill["failed_after_detection"] == 0
    # the end of the run: the legacy FE's OCS services stopped and Disabled for good,
    # its listeners closed; the new FEs untouched; the pool record on the VIP
    legacy = windows_services(lab, "ocsfe00")
    assert legacy["RTCSRV"] == ("Stopped", "Disabled"), legacy
    assert legacy["RTCMONAGENT"] == ("Stopped", "Disabled"), legacy
    assert not _member_running(lab, "ocsfe00")
    assert not any(port_answers(lab, "ocsfe00", p) for p in SOME_PORTS)
    for fe in ("ocsfe01", "ocsfe02"):
        assert windows_services(lab, fe) == before_services[fe], fe
        assert all(port_answers(lab, fe, p) for p in SOME_PORTS), fe
    dns_is(lab, VIP_ADDRESS, 3)

    back = tool(lab, pool, "rollback", "--yes", timeout=600)
    assert back.returncode == 0, output(back)[-4000:]
    for host in FE_HOSTS:
        assert windows_services(lab, host) == before_services[host], host
        assert _member_running(lab, host), host
        assert all(port_answers(lab, host, p) for p in SOME_PORTS), host
    after_hosts = {h: hashlib.sha256(d).hexdigest() for h, d in hosts_files(lab).items()}
    assert after_hosts == before_hosts
    dns_is(lab, lab.address("ocsfe00"), POOL_TTL)
    lb_untouched(lab)


def test_the_demo_reads_the_windows_front_ends_hosts_files_and_services(
    windows_fe_lab: RunningLab,
) -> None:
    from ocsscale_lab import demo

    name = windows_fe_lab.state.name
    digests = demo.hosts_digests(name)
    assert set(digests) == set(hosts_files(windows_fe_lab)) and all(digests.values())
    tables = demo.windows_services(name)
    assert set(tables) == set(FE_HOSTS)
    assert all(t == windows_services(windows_fe_lab, h) for h, t in tables.items())
