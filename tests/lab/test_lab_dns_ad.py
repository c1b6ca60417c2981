"""An AD-integrated zone in the lab (`lab up --dns ad`): three DNS servers, each
with its own SOA serial; a change made through the domain controller's Windows
DNS lands on dns01 and reaches dns02 only after the lab's replication delay;
dns03 never receives it (the `no-replication` fault). The real command line in
the admin namespace, on a copy of the lab pool file."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest

from ocsscale.runner.journal import Journal
from ocsscale_lab.topology import POOL_FQDN, VIP

from .conftest import REPO, RUN_ID, RunningLab, bring_up, ocsscale_cli

pytestmark = pytest.mark.lab

REPLICATION = 4.0
PLAYBOOK = str(REPO / "tests" / "actions" / "dns_playbook.yaml")


@pytest.fixture(scope="module")
def ad_lab() -> Iterator[RunningLab]:
    yield from bring_up(
        f"tad{RUN_ID}",
        "one-armed",
        1,
        faults=["dns03:no-replication"],
        dns_kind="ad",
        dns_servers=3,
        dns_replication=REPLICATION,
    )


def _answer(address: str, name: str, rdtype: str = "A") -> list[str]:
    response = dns.query.tcp(dns.message.make_query(name, rdtype), address, timeout=5)
    return sorted(r.to_text() for rrset in response.answer for r in rrset)


def _pool(lab: RunningLab, tmp_path: Path, extra: str) -> Path:
    pool = tmp_path / "pool.yaml"
    shutil.copyfile(lab.state.pool_file, pool)
    _dns_extra(pool, extra)
    return pool


def _dns_extra(pool: Path, extra: str) -> None:
    """The lab pool file with `extra` (a `dns:` key) in place of the last one set."""
    lines = [
        x
        for x in pool.read_text().splitlines()
        if not x.startswith(("  verify_", "  propagation_"))
    ]
    at = lines.index("  zone: lab.test") + 1
    pool.write_text("\n".join(lines[:at] + [f"  {extra}"] + lines[at:]) + "\n")


def _cli(lab: RunningLab, pool: Path, *args: str) -> tuple[int, str]:
    playbook = ["--playbook", PLAYBOOK] if args[0] == "run" else []
    result = ocsscale_cli(
        "lab", "exec", "admin", "--name", lab.state.name, "--",
        "ocsscale", "-c", str(pool), args[0], *playbook, *args[1:],
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def _lower_and_wait(lab: RunningLab, pool: Path) -> None:
    code, out = _cli(lab, pool, "run", "--phase", "lower-ttl", "--yes")
    assert code == 0, out
    journal = Journal.open(pool.parent / ".ocsscale")
    try:
        # every name lowered (the pool name, sip.<domain>, the SRV record): the last one
        ready = max(
            e.evidence.get("ready_at", 0)
            for e in journal.entries()
            if e.action == "dns.lower_ttl" and e.status == "done"
        )
    finally:
        journal.close()
    while time.time() < ready:
        time.sleep(0.5)


def _verify_evidence(pool: Path) -> dict:
    journal = Journal.open(pool.parent / ".ocsscale")
    try:
        return [e for e in journal.entries() if e.step_id == "cutover/verify"][-1].evidence
    finally:
        journal.close()


def test_the_dns_servers_keep_their_own_serials(ad_lab: RunningLab) -> None:
    serials = ad_lab.inside(
        "admin",
        lambda: [
            _answer(ad_lab.address(h), "lab.test", "SOA")[0].split()[2]
            for h in ("dns01", "dns02", "dns03")
        ],
    )
    assert len(set(serials)) == 3
    ns = ad_lab.inside("admin", lambda: _answer(ad_lab.address("dns02"), "lab.test", "NS"))
    assert ns == ["dns01.lab.test.", "dns02.lab.test.", "dns03.lab.test."]


def test_cutover_waits_for_replication_and_passes(ad_lab: RunningLab, tmp_path: Path) -> None:
    lab = ad_lab
    pool = _pool(lab, tmp_path, "verify_exclude: [dns03.lab.test]")
    legacy, vip = lab.address("ocsfe00"), VIP.split("/", 1)[0]
    _lower_and_wait(lab, pool)
    try:
        started = time.monotonic()
        code, out = _cli(lab, pool, "run", "--phase", "cutover", "--yes")
        assert code == 0, out
        # the live line named the DC still answering the old value
        assert f"dns02.lab.test. ({lab.address('dns02')}) answers {legacy}" in out
        assert time.monotonic() - started >= REPLICATION - 1
        evidence = _verify_evidence(pool)
        assert evidence["convergence"] == "replication"
        assert [s["ns"] for s in evidence["servers"]] == ["dns01.lab.test.", "dns02.lab.test."]
        assert all(s["values"] == [vip] for s in evidence["servers"])
        assert len({s["serial"] for s in evidence["servers"]}) == 2  # never compared
        assert evidence["excluded"] == [
            {"ns": "dns03.lab.test.", "address": lab.address("dns03"), "by": "dns03.lab.test"}
        ]
        assert evidence["waited"] > 0
        assert lab.inside("admin", lambda: _answer(lab.address("dns03"), POOL_FQDN)) == [legacy]
    finally:
        code, out = _cli(lab, pool, "rollback", "--yes")
    assert code == 0, out
    time.sleep(REPLICATION + 2)  # the rollback replicates too, before the next test


def test_a_dc_that_never_receives_the_change_fails_at_the_deadline(
    ad_lab: RunningLab, tmp_path: Path
) -> None:
    lab = ad_lab
    legacy, vip = lab.address("ocsfe00"), VIP.split("/", 1)[0]
    pool = _pool(lab, tmp_path, "verify_exclude: [dns03.lab.test]")  # lower-ttl as the test above
    _lower_and_wait(lab, pool)
    _dns_extra(pool, "propagation_timeout: 8")  # dns03 required now
    try:
        started = time.monotonic()
        code, out = _cli(lab, pool, "run", "--phase", "cutover", "--yes")
        assert code == 1, out
        assert time.monotonic() - started >= 8
        flat = " ".join(out.split())
        assert f"after 8 s: dns03.lab.test. ({lab.address('dns03')}) answers {legacy}" in flat
        assert "dns02" not in flat.split("after 8 s:")[-1]  # replicated in time: not named
        assert "AD replication may still bring it" in flat and "ocsscale rollback" in flat
        # the change is kept: dns01 holds the VIP
        assert lab.inside("admin", lambda: _answer(lab.address("dns01"), POOL_FQDN)) == [vip]
    finally:
        code, out = _cli(lab, pool, "rollback", "--yes")
    assert code == 0, out
    assert lab.inside("admin", lambda: _answer(lab.address("dns01"), POOL_FQDN)) == [legacy]
