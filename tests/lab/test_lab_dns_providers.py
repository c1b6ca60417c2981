"""The DNS providers in the lab, from the admin host: rfc2136 with the lab pool
file's TSIG key, and the Windows provider over pywinrm to the lab's Windows
stand-in, whose dnscmd scripts land on the lab's BIND."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import dns.message
import dns.query
import pytest

from ocsscale.config.loader import load_pool
from ocsscale.providers.dns import DnsConflict, open_provider
from ocsscale.providers.dns.base import RecordSet
from ocsscale.providers.dns.rfc2136 import Rfc2136Provider
from ocsscale.providers.dns.windows import WindowsProvider
from ocsscale.providers.plugin import Ports
from ocsscale.runner.journal import Journal
from ocsscale.transports.factory import connect
from ocsscale_lab.dns import CUTOVER_TTL, POOL_TTL
from ocsscale_lab.topology import POOL_FQDN, VIP

from .conftest import REPO, RunningLab, ocsscale_cli

pytestmark = pytest.mark.lab


def _bind_answer(address: str) -> tuple[set[str], int]:
    response = dns.query.tcp(dns.message.make_query(POOL_FQDN, "A"), address, timeout=5)
    rrset = response.answer[0]
    return {r.to_text() for r in rrset}, rrset.ttl


def test_windows_dnscmd_and_rfc2136_on_the_lab_bind(one_armed_lab: RunningLab) -> None:
    lab = one_armed_lab
    loaded = load_pool(lab.state.pool_file)
    legacy = lab.address("ocsfe00")
    dns_address = str(loaded.pool.dns.servers[0])
    vip = VIP.split("/", 1)[0]

    def drive() -> dict[str, object]:
        ports = Ports(base_dir=loaded.path.resolve().parent)
        rfc2136 = open_provider(loaded.pool.dns, ports)
        assert isinstance(rfc2136, Rfc2136Provider)
        windows_host = connect(loaded.pool.host("client02"), loaded)
        windows = WindowsProvider(loaded.pool.dns.zone, windows_host, tool="auto")
        seen: dict[str, object] = {}
        try:
            seen["rfc2136"] = rfc2136.lookup(POOL_FQDN, "A")
            seen["windows"] = windows.lookup(POOL_FQDN, "A")
            seen["tool"] = windows.tool
            undo = windows.replace(POOL_FQDN, "A", [vip], 20, expect=[legacy])
            seen["after"] = _bind_answer(dns_address)
            try:
                windows.replace(POOL_FQDN, "A", [vip], 10, expect=[legacy])
            except DnsConflict as exc:
                seen["conflict"] = exc.message
            seen["reverted"] = rfc2136.revert(undo)  # either provider reads the same record
            seen["restored"] = _bind_answer(dns_address)
        finally:
            windows_host.close()
        return seen

    seen = lab.inside("admin", drive)
    before = RecordSet((legacy,), POOL_TTL)
    assert seen["rfc2136"] == before and seen["windows"] == before
    assert seen["tool"] == "dnscmd"
    assert seen["after"] == ({vip}, 20)
    assert "holds" in str(seen["conflict"]) and vip in str(seen["conflict"])
    assert seen["reverted"] == before
    assert seen["restored"] == ({legacy}, POOL_TTL)


def test_lower_ttl_and_cutover_in_the_lab_then_rollback(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    """The real command line in the admin namespace; the journal sits beside a
    copy of the lab pool file, so other tests' journal is never touched."""
    lab = one_armed_lab
    pool = tmp_path / "pool.yaml"
    shutil.copyfile(lab.state.pool_file, pool)
    dns_address = str(load_pool(pool).pool.dns.servers[0])
    legacy, vip = lab.address("ocsfe00"), VIP.split("/", 1)[0]

    # the DNS steps alone: the shipped cutover also probes through the VIP (test_lab_cutover)
    playbook = ["--playbook", str(REPO / "tests" / "actions" / "dns_playbook.yaml")]

    def ocsscale(*args: str) -> tuple[int, str]:
        result = ocsscale_cli(
            "lab", "exec", "admin", "--name", lab.state.name, "--",
            "ocsscale", "-c", str(pool), *args[:1], *(playbook if args[0] == "run" else []),
            *args[1:],
        )  # fmt: skip
        return result.returncode, result.stdout + result.stderr

    code, out = ocsscale("run", "--phase", "lower-ttl", "--yes")
    assert code == 0, out
    try:
        assert lab.inside("admin", lambda: _bind_answer(dns_address)) == ({legacy}, CUTOVER_TTL)
        code, out = ocsscale("run", "--phase", "cutover", "--yes")
        assert code == 1 and "runs out in every cache at" in out  # POOL_TTL s to wait
        journal = Journal.open(tmp_path / ".ocsscale")
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
        code, out = ocsscale("run", "--phase", "cutover", "--yes")
        assert code == 0, out
        assert lab.inside("admin", lambda: _bind_answer(dns_address)) == ({vip}, CUTOVER_TTL)
    finally:
        code, out = ocsscale("rollback", "--yes")
    assert code == 0, out
    assert lab.inside("admin", lambda: _bind_answer(dns_address)) == ({legacy}, POOL_TTL)
