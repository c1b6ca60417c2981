"""The cutover phase in the lab, through the real command line on the admin host:
the inventory of the lab zone (a CNAME and an extra A record for the legacy
address, added with the lab's TSIG key, stop it unless acknowledged), a pin left
on a client stops it, the watch window passes with the LB configured, and the
watch reverts the record by itself when the VIP stops answering. sip.<domain>
and the SRV record aimed at the legacy FE move with the pool name, come back
with the watch's revert and with rollback, and stay with dns.keep.

Each test works on its own copy of the lab pool file (its own journal) and puts
everything back: DNS value and TTL, LB, hosts files.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.tsig
import dns.update
import pytest

from ocsscale.runner.client_load import outside_drill
from ocsscale_lab import lbhost, poolfile, services
from ocsscale_lab.dns import CUTOVER_TTL, POOL_TTL, TSIG_NAME
from ocsscale_lab.system import ETC_NETNS
from ocsscale_lab.topology import DOMAIN, POOL_FQDN

from .conftest import RunningLab
from .fe_support import (
    VIP_ADDRESS,
    assert_untouched,
    dns_record,
    edit_dns,
    entries,
    first_dns,
    hosts_files,
    lb_untouched,
    output,
    pool_copy,
    tool,
    wait_ready,
)

pytestmark = pytest.mark.lab

WEB = f"webfarm.{DOMAIN}"
ALIAS = f"meet.{DOMAIN}"
#: automatic sign-in in the lab zone: sip.<domain> at the legacy FE, and the SRV
#: record aimed at the legacy FE's own host name (ocsscale_lab/dns.py)
SIP = f"sip.{DOMAIN}"
SRV = f"_sipinternaltls._tcp.{DOMAIN}"
SRV_LEGACY = f"0 0 5061 ocsfe00.{DOMAIN}."
SRV_POOL = f"0 0 5061 {POOL_FQDN}."
DNS_PLAYBOOK = str(Path(__file__).resolve().parents[1] / "actions" / "dns_playbook.yaml")


def _update(lab: RunningLab, change) -> None:  # type: ignore[no-untyped-def]
    """A signed RFC 2136 update with the lab's key (seeding, not the code under test)."""
    secret = poolfile.tsig_secret_file(lab.state).read_text().strip()
    key = dns.tsig.Key(TSIG_NAME, secret, "hmac-sha256")
    update = dns.update.UpdateMessage(DOMAIN, keyring=key)
    change(update)
    server = first_dns(lab)
    response = lab.inside("admin", lambda: dns.query.tcp(update, server, timeout=5))
    assert response.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(response.rcode())


def _sign_in(lab: RunningLab) -> tuple[tuple[set[str], int], tuple[set[str], int]]:
    """sip.<domain> and the SRV record for automatic sign-in, as the lab DNS answers."""
    return dns_record(lab, SIP), dns_record(lab, SRV, "SRV")


def _step(pool: Path, step_id: str) -> dict:
    found = [e for e in entries(pool) if e["step_id"] == step_id]
    assert found, step_id
    return found[-1]


def test_inventory_stops_on_a_cname_and_an_unlisted_name_unless_acknowledged(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    legacy = lab.address("ocsfe00")
    pool = pool_copy(lab, tmp_path / "run")

    def add(update: dns.update.UpdateMessage) -> None:
        update.add(WEB + ".", 60, "A", legacy)
        update.add(ALIAS + ".", 60, "CNAME", POOL_FQDN + ".")

    _update(lab, add)
    try:
        result = tool(lab, pool, "run", "--phase", "cutover", "--yes", "--no-hold")
        text = output(result)
        assert result.returncode == 1, text
        assert WEB in text and ALIAS in text and "dns.acknowledge" in text
        assert _step(pool, "cutover/inventory")["status"] == "failed"
        assert not [e for e in entries(pool) if e["action"] == "dns.replace"]
        assert dns_record(lab) == ({legacy}, POOL_TTL)

        edit_dns(pool, names=[WEB], acknowledge=[ALIAS])
        result = tool(lab, pool, "run", "--phase", "cutover", "--yes", "--no-hold")
        text = output(result)
        # past the inventory; the replace then waits for lower-ttl, changing nothing
        assert result.returncode == 1 and "was not lowered ahead of the cutover" in text, text
        rows = {r["name"]: r for r in _step(pool, "cutover/inventory")["evidence"]["names"]}
        assert rows[POOL_FQDN]["kind"] == "moves" and rows[WEB]["kind"] == "listed"
        assert rows[ALIAS]["kind"] == "cname" and rows[ALIAS]["acknowledged"] is True
        assert rows[SIP]["kind"] == "listed"  # moves with the pool name
        assert rows[SRV]["kind"] == "srv-moves"  # aimed at the legacy FE: retargeted
        assert _step(pool, "cutover/inventory")["evidence"]["source"] == "zone transfer (AXFR)"
    finally:
        _update(lab, lambda u: (u.delete(WEB + ".", "A"), u.delete(ALIAS + ".", "CNAME")))
    assert dns_record(lab) == ({legacy}, POOL_TTL)


def test_a_pin_left_on_a_client_stops_the_cutover(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    pool = pool_copy(lab, tmp_path / "run")
    hosts = ETC_NETNS / lab.topo.ns("client01") / "hosts"
    before = hosts.read_bytes()
    pinned = (
        f"# BEGIN ocsscale (do not edit: managed by ocsscale)\n{VIP_ADDRESS} {POOL_FQDN}\n"
        "# END ocsscale\n"
    ).encode()
    hosts.write_bytes(pinned + before)
    try:
        result = tool(lab, pool, "run", "--phase", "cutover", "--yes", "--no-hold")
    finally:
        hosts.write_bytes(before)
    text = output(result)
    assert result.returncode == 1, text
    assert f"client01: /etc/hosts still holds the pin '{VIP_ADDRESS} {POOL_FQDN}'" in text
    assert not [e for e in entries(pool) if e["action"] == "dns.replace"]
    assert dns_record(lab) == ({lab.address("ocsfe00")}, POOL_TTL)


def _lower_ttl_and_wait(lab: RunningLab, pool: Path) -> None:
    """`run --phase lower-ttl`, then the old TTL waited out for real."""
    result = tool(lab, pool, "run", "--phase", "lower-ttl", "--yes")
    assert result.returncode == 0, output(result)
    wait_ready(pool)


def test_watch_holds_then_reverts_by_itself_when_the_vip_stops_answering(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    legacy = lab.address("ocsfe00")
    pool = pool_copy(lab, tmp_path / "run")
    edit_dns(pool, watch_window=3, watch_interval=1)
    hosts_before = hosts_files(lab)
    engine = services.load(lab.state.directory, "lb01", lbhost.ENGINE_SERVICE)
    stopped: list[bool] = []
    try:
        result = tool(lab, pool, "run", "--phase", "configure-lb", "--yes", "--no-hold")
        assert result.returncode == 0, output(result)
        _lower_ttl_and_wait(lab, pool)

        # the whole cutover: inventory, no pins, replace, verify, probes, watch, long TTL
        result = tool(lab, pool, "run", "--phase", "cutover", "--yes", "--no-hold")
        assert result.returncode == 0, output(result)
        watch = _step(pool, "cutover/watch")["evidence"]
        assert watch["failed_count"] == 0 and watch["rounds"] >= 2, watch
        assert set(watch["clients"]) == {"client01", "client02"}
        assert dns_record(lab) == ({VIP_ADDRESS}, POOL_TTL)  # raise-ttl: the long TTL back
        # automatic sign-in moved with it, and got its long TTL back too
        assert _sign_in(lab) == (({VIP_ADDRESS}, POOL_TTL), ({SRV_POOL}, POOL_TTL))

        # back to before the cutover, then again with a window the engine dies in
        result = tool(lab, pool, "rollback", "--to", "cutover", "--yes")
        assert result.returncode == 0, output(result)
        assert dns_record(lab) == ({legacy}, CUTOVER_TTL)
        assert _sign_in(lab) == (({legacy}, CUTOVER_TTL), ({SRV_LEGACY}, CUTOVER_TTL))

        def stop_engine_once_watching() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                steps = [e for e in entries(pool) if e["step_id"] == "cutover/watch"]
                if len(steps) == 2 and steps[-1]["status"] in ("pending", "applying"):
                    services.stop(lab.state.directory, engine)
                    stopped.append(True)
                    return
                time.sleep(0.2)

        stopper = threading.Thread(target=stop_engine_once_watching)
        stopper.start()
        # --watch: a longer window than the pool file's, for the engine to die in
        result = tool(lab, pool, "run", "--phase", "cutover", "--yes", "--no-hold", "--watch", "60")
        stopper.join()
        text = output(result)
        assert result.returncode == 1, text
        assert "the cutover was reverted" in text and "failed probe" in text
        assert dns_record(lab) == ({legacy}, CUTOVER_TTL)  # the old value and TTL
        # every name that moved went back with it, each marked reverted by the watch
        assert _sign_in(lab) == (({legacy}, CUTOVER_TTL), ({SRV_LEGACY}, CUTOVER_TTL))
        for step in (
            "cutover/replace",
            f"cutover/replace-names[{SIP}]",
            f"cutover/retarget-srv[{SRV}]",
        ):
            moved = _step(pool, step)
            assert moved["status"] == "reverted" and moved["rollback_id"].startswith("watch-")
        assert _step(pool, "cutover/watch")["status"] == "failed"
    finally:
        if stopped:
            services.start(lab.state.directory, engine)  # the farm's rollback stops it again
        result = tool(lab, pool, "rollback", "--yes", timeout=420)
    assert result.returncode == 0, output(result)
    assert dns_record(lab) == ({legacy}, POOL_TTL)
    assert _sign_in(lab) == (({legacy}, POOL_TTL), ({SRV_LEGACY}, POOL_TTL))
    lb_untouched(lab)
    assert_untouched(lab, hosts_before)


def test_dns_keep_leaves_automatic_sign_in_where_it_is(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    """The DNS steps alone (no LB needed): with sip.<domain> in dns.keep only the SRV
    record moves with the pool name; the plan says which move and which stay."""
    lab = one_armed_lab
    legacy = lab.address("ocsfe00")
    pool = pool_copy(lab, tmp_path / "keep")
    edit_dns(pool, keep=[SIP])
    try:
        result = tool(lab, pool, "plan", "--playbook", DNS_PLAYBOOK, "--phase", "cutover")
        text = output(result)
        assert result.returncode == 0, text
        assert f"moving with {POOL_FQDN}: no other name" in text
        assert f"staying (dns.keep): {SIP}" in text
        result = tool(lab, pool, "run", "--playbook", DNS_PLAYBOOK, "--phase", "lower-ttl", "--yes")
        assert result.returncode == 0, output(result)
        wait_ready(pool)
        result = tool(lab, pool, "run", "--playbook", DNS_PLAYBOOK, "--phase", "cutover", "--yes")
        assert result.returncode == 0, output(result)
        assert dns_record(lab) == ({VIP_ADDRESS}, CUTOVER_TTL)
        assert _sign_in(lab) == (({legacy}, POOL_TTL), ({SRV_POOL}, CUTOVER_TTL))
        rows = {r["name"]: r for r in _step(pool, "cutover/inventory")["evidence"]["names"]}
        assert rows[SIP]["kind"] == "kept" and rows[SRV]["kind"] == "srv-moves"
    finally:
        result = tool(lab, pool, "rollback", "--yes")
    assert result.returncode == 0, output(result)
    assert dns_record(lab) == ({legacy}, POOL_TTL)
    assert _sign_in(lab) == (({legacy}, POOL_TTL), ({SRV_LEGACY}, POOL_TTL))


def _run_loads(pool: Path) -> list[dict]:
    """The client load of every run of this pool file, as `run --client-load` journaled it."""
    from ocsscale.runner.journal import Journal

    journal = Journal.open(pool.parent / ".ocsscale")
    try:
        return [r["load"] for r in journal.runs() if r.get("load")]
    finally:
        journal.close()


def test_no_request_of_any_source_fails_through_the_pins_the_lb_and_the_cutover(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    """`run --client-load` from the admin machine and the Linux test client through
    validate-fe (each FE restarted before a client is pinned to it), validate-lb and
    the cutover (each FE restarted drained at the LB): no request fails, anywhere."""
    lab = one_armed_lab
    legacy = lab.address("ocsfe00")
    pool = pool_copy(lab, tmp_path / "run")
    edit_dns(pool, watch_window=3, watch_interval=1)
    hosts_before = hosts_files(lab)
    try:
        result = tool(
            lab, pool, "run", "--through", "validate-lb", "--yes", "--no-hold",
            "--client-load", "4", timeout=600,
        )  # fmt: skip
        assert result.returncode == 0, output(result)
        _lower_ttl_and_wait(lab, pool)
        result = tool(
            lab, pool, "run", "--phase", "cutover", "--yes", "--no-hold", "--client-load", "4"
        )
        assert result.returncode == 0, output(result)
        assert dns_record(lab) == ({VIP_ADDRESS}, POOL_TTL)
        for fe in ("ocsfe01", "ocsfe02"):
            restart = _step(pool, f"cutover/restart[{fe}]")
            assert restart["action"] == "lb.drain_restart" and restart["status"] == "done"
            assert restart["evidence"]["drained"] is True, restart["evidence"]

        loads = _run_loads(pool)
        assert len(loads) == 2, loads
        phases = set()
        for load in loads:
            assert load["not_loaded"] == {}, load["not_loaded"]
            outside = outside_drill(load["by_phase"])
            assert set(outside) == {"admin", "client01", "client02"}, outside
            for source, tally in outside.items():
                assert tally["requests"] > 20, (source, tally)
                assert tally["failed"] == 0, (source, load["by_phase"])
            phases |= set(load["by_phase"])
        assert {"validate-fe", "validate-lb", "cutover"} <= phases, phases
    finally:
        result = tool(lab, pool, "rollback", "--yes", timeout=420)
    assert result.returncode == 0, output(result)
    assert dns_record(lab) == ({legacy}, POOL_TTL)
    assert _sign_in(lab) == (({legacy}, POOL_TTL), ({SRV_LEGACY}, POOL_TTL))
    assert_untouched(lab, hosts_before)
    lb_untouched(lab)


def test_generic_tls_cutover_inventories_watches_and_raises_the_ttl_under_load(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    """The generic-tls playbook's cutover, as thorough as ocs2007r2's where its profile
    allows: inventory (no SIP names), no pins, replace, probes, watch, long TTL back;
    no request of any source fails meanwhile."""
    lab = one_armed_lab
    legacy = lab.address("ocsfe00")
    pool = pool_copy(lab, tmp_path / "generic")
    edit_dns(pool, watch_window=3, watch_interval=1)
    hosts_before = hosts_files(lab)
    try:
        # the lab's LB service waits for 5061 to listen: its farm comes from the lab's
        # own profile (443 is one of its ports); the rest runs the generic-tls playbook
        result = tool(lab, pool, "run", "--phase", "configure-lb", "--yes", "--no-hold")
        assert result.returncode == 0, output(result)
        pool.write_text(pool.read_text().replace("profile: ocs2007r2", "profile: generic-tls"))
        edit_dns(pool, names=[SIP])  # not a SIP service: the zone's sip name is just a name
        _lower_ttl_and_wait(lab, pool)
        result = tool(
            lab, pool, "run", "--phase", "cutover", "--yes", "--no-hold", "--client-load", "4"
        )
        assert result.returncode == 0, output(result)
        names = _step(pool, "cutover/inventory")["evidence"]["names"]
        assert [(r["name"], r["kind"]) for r in names if r["kind"] != "own"] == [
            (POOL_FQDN, "moves"),
            (SIP, "listed"),
        ], names
        assert dns_record(lab, SIP) == ({VIP_ADDRESS}, POOL_TTL)
        watch = _step(pool, "cutover/watch")["evidence"]
        assert watch["failed_count"] == 0 and watch["rounds"] >= 2, watch
        assert dns_record(lab) == ({VIP_ADDRESS}, POOL_TTL)
        (load,) = _run_loads(pool)
        outside = outside_drill(load["by_phase"])
        assert set(outside) == {"admin", "client01", "client02"}, outside
        assert all(t["failed"] == 0 and t["requests"] > 0 for t in outside.values()), outside
    finally:
        result = tool(lab, pool, "rollback", "--yes", timeout=420)
    assert result.returncode == 0, output(result)
    assert dns_record(lab) == ({legacy}, POOL_TTL)
    assert _sign_in(lab) == (({legacy}, POOL_TTL), ({SRV_LEGACY}, POOL_TTL))
    assert_untouched(lab, hosts_before)
    lb_untouched(lab)
