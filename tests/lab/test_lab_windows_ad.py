"""Issue 17 in combination: Windows front ends (`--fe-os windows`), an AD-integrated
zone on two DNS servers with replication (`--dns ad`), and German Windows on the
legacy FE and on one new FE (`ocsfe00:locale-de`, `ocsfe01:locale-de`).

The shipped playbook as `make demo` runs it: lower-ttl ahead, then `run --through
decommission --yes --no-hold --wait`, then `rollback`. Checked from outside the tool:

- validate-lb's distribution proved SNAT on both FEs, the German one included (its
  connection table read and parsed, not "not proven");
- decommission drained the German legacy FE (its table read) and left its OCS
  services Stopped and Disabled;
- the cutover's verify saw the VIP on both DNS servers; after the run (raise-ttl
  done) every DNS server answers the VIP with the normal TTL; after the rollback
  every one answers the legacy FE with the old TTL;
- hosts files byte-identical, every Windows service's state and start mode as before.

Then, on the rolled-back lab, the drain against the German legacy FE with a client
holding a connection: listed and failed, then passed, as with an English one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsscale_lab import services
from ocsscale_lab.dns import CUTOVER_TTL, POOL_TTL

from .conftest import RUN_ID, RunningLab, bring_up
from .fe_support import (
    FE_HOSTS,
    SOME_PORTS,
    VIP_ADDRESS,
    dig,
    drain_sees_a_held_client,
    entries,
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

REPLICATION = 2.0
GERMAN = ("ocsfe00", "ocsfe01")


@pytest.fixture(scope="module")
def windows_ad_lab() -> Iterator[RunningLab]:
    yield from bring_up(
        f"twad{RUN_ID}",
        "one-armed",
        2,
        faults=[f"{h}:locale-de" for h in GERMAN],
        fe_os="windows",
        dns_kind="ad",
        dns_servers=2,
        dns_replication=REPLICATION,
    )


def _dns_becomes(lab: RunningLab, address: str, ttl: int) -> None:
    """Every DNS server of the lab answers (address, ttl), within the replication delay."""
    deadline = time.monotonic() + REPLICATION + 10
    while True:
        answers = dig(lab)
        assert len(answers) == 2, answers
        if all(a == ((address,), {ttl}) for a in answers.values()):
            return
        assert time.monotonic() < deadline, answers
        time.sleep(0.5)


def test_the_demo_run_on_windows_fes_with_ad_dns_and_german_hosts(
    windows_ad_lab: RunningLab, tmp_path: Path
) -> None:
    lab = windows_ad_lab
    for host in GERMAN:  # the faults are in place
        standin = services.load(lab.state.directory, host, "winrm")
        assert "--locale de" in " ".join(standin.argv), host
    legacy = lab.address("ocsfe00")
    _dns_becomes(lab, legacy, POOL_TTL)
    before_services = {h: windows_services(lab, h) for h in FE_HOSTS}
    before_hosts = {h: hashlib.sha256(d).hexdigest() for h, d in hosts_files(lab).items()}
    assert set(FE_HOSTS) <= set(before_hosts)
    pool = pool_copy(lab, tmp_path / "run")

    ahead = tool(lab, pool, "run", "--phase", "lower-ttl", "--yes", timeout=300)
    assert ahead.returncode == 0, output(ahead)[-4000:]
    run = tool(lab, pool, "run", "--through", "decommission", "--yes", "--no-hold", "--wait",
               timeout=800)  # fmt: skip
    assert run.returncode == 0, output(run)[-4000:]

    # validate-lb: SNAT proven on both FEs from their own tables, the German one too
    (dist,) = evidence_of(pool, "lb.distribution")
    assert set(dist["nat"]) == {"ocsfe01", "ocsfe02"}, dist
    for fe, proof in dist["nat"].items():
        assert proof["proven"], (fe, proof)
        assert proof["from_snat"] >= dist["counts"][fe] > 0, (fe, proof, dist["counts"])
        assert not proof["from_clients"] and not proof["local_not_own"], (fe, proof)
    # decommission: the German legacy FE's table read until no client was left,
    # then its OCS services stopped and Disabled, its listeners closed
    (drain,) = evidence_of(pool, "legacy.drain")
    assert drain["legacy"] == "ocsfe00" and drain["seen"], drain
    assert drain["seen"][-1]["clients"] == 0 and not drain.get("timed_out"), drain
    stopped = windows_services(lab, "ocsfe00")
    assert stopped["RTCSRV"] == ("Stopped", "Disabled"), stopped
    assert not any(port_answers(lab, "ocsfe00", p) for p in SOME_PORTS)
    # the cutover reached every DNS server (dns02 by replication): its verify saw the
    # VIP on both; now, after raise-ttl, both answer the VIP with the normal TTL again
    (verify,) = [e["evidence"] for e in entries(pool) if e["step_id"] == "cutover/verify"]
    assert [s["ns"] for s in verify["servers"]] == ["dns01.lab.test.", "dns02.lab.test."]
    assert all(s["values"] == [VIP_ADDRESS] for s in verify["servers"]), verify
    moved = [e["evidence"] for e in entries(pool) if e["step_id"] == "cutover/replace"]
    assert {"values": [VIP_ADDRESS], "ttl": CUTOVER_TTL} in [m.get("new") for m in moved], moved
    _dns_becomes(lab, VIP_ADDRESS, POOL_TTL)

    back = tool(lab, pool, "rollback", "--yes", timeout=600)
    assert back.returncode == 0, output(back)[-4000:]
    _dns_becomes(lab, legacy, POOL_TTL)
    for host in FE_HOSTS:
        assert windows_services(lab, host) == before_services[host], host
        assert all(port_answers(lab, host, p) for p in SOME_PORTS), host
    after_hosts = {h: hashlib.sha256(d).hexdigest() for h, d in hosts_files(lab).items()}
    assert after_hosts == before_hosts
    lb_untouched(lab)


def test_the_drain_on_the_german_windows_legacy_fe_lists_a_held_client(
    windows_ad_lab: RunningLab, tmp_path: Path
) -> None:
    """As with an English legacy FE (test_lab_locale.py, test_lab_drain.py): the drain
    reads the German legacy FE's own table, names the client holding a connection and
    fails, then passes once it is gone."""
    lab = windows_ad_lab
    assert port_answers(lab, "ocsfe00", 5061), "the legacy FE's services are not back"
    seen = drain_sees_a_held_client(lab, pool_copy(lab, tmp_path / "run"), "ocsfe00", "client02")
    assert seen["held"]["connected"], seen
    assert seen["failed"] and f"{lab.address('client02')} (port " in seen["failed"], seen
    assert seen["drained"]["seen"][-1]["clients"] == 0, seen
