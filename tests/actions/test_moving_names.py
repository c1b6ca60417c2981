"""Every name that points at the legacy FE moves with the pool name (issue 17,
point 3), through the real command line against BIND on loopback: sip.<domain>
and a dns.names entry moved, each guarded on the legacy address; a SIP SRV
record aimed at the legacy FE's own host name retargeted to the pool FQDN;
all of it put back by `rollback` and by the watch's automatic revert; dns.keep
leaves a name where it is, and the plan says which names move and which stay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bind_server import Bind

from ocsscale.errors import StepFailed
from ocsscale.runner.journal import Journal

from .test_cutover_inventory import edit_dns
from .test_cutover_watch import Answers, client_password, watch  # noqa: F401
from .test_dns_actions import POOL, RUN, VIP, cli, pool_file

#: the legacy FE's address here: not the other tests' (the session's BIND is
#: shared, and the inventory stops on any name left at the legacy address)
LEGACY = "10.0.0.131"

SIP = "sip.contoso.test"
WEB = "web.contoso.test"  # a name of dns.names
SRV = "_sipinternaltls._tcp.contoso.test"
LEGACY_FQDN = "ocsfe00.contoso.test"
SRV_OLD = f"10 20 5061 {LEGACY_FQDN}."
SRV_NEW = f"10 20 5061 {POOL}."


@pytest.fixture
def zone(bind: Bind) -> Iterator[Bind]:
    """The pool name, sip.<domain>, a web name at the legacy FE, and the SRV record
    aimed at the legacy FE's own name, all with a 2 s TTL (the wait stays short);
    removed afterwards (the BIND of the session is shared)."""
    bind.set(POOL, "A", [LEGACY], 2)
    for name in (SIP, WEB):
        bind.set(name, "A", [LEGACY], 2)
    bind.set(SRV, "SRV", [SRV_OLD], 2)
    yield bind
    for name in (SIP, WEB):
        for value in (LEGACY, VIP, "10.0.0.99"):
            bind.remove(name, "A", value)
    for value in (SRV_OLD, SRV_NEW):
        bind.remove(SRV, "SRV", value)


def moving_pool(tmp_path: Path, bind: Bind, **dns: object) -> Path:
    path = pool_file(tmp_path, bind, cutover_ttl=1)
    path.write_text(path.read_text().replace("  address: 10.0.0.30\n", f"  address: {LEGACY}\n", 1))
    edit_dns(path, names=[WEB], **dns)
    return path


def lower_and_wait(path: Path) -> None:
    code, out = cli("-c", str(path), *RUN, "--phase", "lower-ttl", "--yes")
    assert code == 0, out
    journal = Journal.open(path.parent / ".ocsscale")
    try:
        ready = max(
            float(e.evidence.get("ready_at", 0))
            for e in journal.entries()
            if e.action == "dns.lower_ttl" and e.status == "done"
        )
    finally:
        journal.close()
    while time.time() < ready:
        time.sleep(0.2)


def before(bind: Bind) -> dict:
    return {n: bind.read(n) for n in (POOL, SIP, WEB)} | {SRV: bind.read(SRV, "SRV")}


def test_every_listed_name_and_the_srv_record_move_and_come_back(
    tmp_path: Path, zone: Bind
) -> None:
    path = moving_pool(tmp_path, zone)
    code, out = cli("-c", str(path), "plan", "--phase", "cutover")
    assert code == 0, out
    assert f"moving with {POOL}: {SIP}, {WEB}" in out and "staying (dns.keep): none" in out
    lower_and_wait(path)
    assert zone.read(SIP) == ({LEGACY}, 1) and zone.read(SRV, "SRV") == ({SRV_OLD}, 1)

    code, out = cli("-c", str(path), *RUN, "--phase", "cutover", "--yes")
    assert code == 0, out
    for name in (POOL, SIP, WEB):
        assert zone.read(name) == ({VIP}, 1), name
    assert zone.read(SRV, "SRV") == ({SRV_NEW}, 1)  # priority, weight and port kept
    journal = Journal.open(path.parent / ".ocsscale")
    try:  # the retargeted SRV record proven on every server, after the pool name moved
        (proof,) = [e for e in journal.entries() if e.step_id == f"cutover/verify-srv[{SRV}]"]
    finally:
        journal.close()
    assert [s["values"] for s in proof.evidence["servers"]] == [[SRV_NEW]]

    code, out = cli("-c", str(path), "rollback", "--yes")
    assert code == 0, out
    for name in (POOL, SIP, WEB):
        assert zone.read(name) == ({LEGACY}, 2), name  # the old value and the old TTL
    assert zone.read(SRV, "SRV") == ({SRV_OLD}, 2)


def test_the_watch_reverts_every_moved_name(
    tmp_path: Path,
    zone: Bind,
    client_password: None,  # noqa: F811
) -> None:
    path = moving_pool(tmp_path, zone)
    from bind_server import free_port
    from ruamel.yaml import YAML

    yaml = YAML()  # one test client, on a loopback port where nothing listens
    data = yaml.load(path.read_text())
    data["test_clients"] = [data["test_clients"][0]]
    data["test_clients"][0]["address"] = "127.0.0.1"
    data["test_clients"][0]["transport"].update({"port": free_port(), "scheme": "http"})
    with path.open("w") as f:
        yaml.dump(data, f)
    edit_dns(path, watch_window=1, watch_interval=1)
    lower_and_wait(path)
    assert cli("-c", str(path), *RUN, "--phase", "cutover", "--yes")[0] == 0
    assert zone.read(SIP) == ({VIP}, 1) and zone.read(SRV, "SRV") == ({SRV_NEW}, 1)

    with pytest.raises(StepFailed) as caught:
        watch(path, Answers("revert"))
    message = caught.value.message
    assert "the cutover was reverted" in message and SIP in message and SRV in message
    for name in (POOL, SIP, WEB):
        assert zone.read(name) == ({LEGACY}, 1), name  # what it held before the cutover
    assert zone.read(SRV, "SRV") == ({SRV_OLD}, 1)
    journal = Journal.open(path.parent / ".ocsscale")
    try:
        moves = [e for e in journal.entries() if e.action in ("dns.replace", "dns.retarget_srv")]
        assert {e.status for e in moves if e.undo is not None} == {"reverted"}
        assert len([e for e in moves if e.undo is not None]) == 4
    finally:
        journal.close()
    assert cli("-c", str(path), "rollback", "--yes")[0] == 0  # the lowered TTLs back
    assert zone.read(SIP) == ({LEGACY}, 2) and zone.read(SRV, "SRV") == ({SRV_OLD}, 2)


def test_dns_keep_leaves_a_name_where_it_is(tmp_path: Path, zone: Bind) -> None:
    path = moving_pool(tmp_path, zone, keep=[SIP, SRV])
    code, out = cli("-c", str(path), "plan", "--phase", "cutover")
    assert code == 0, out
    assert f"moving with {POOL}: {WEB}" in out and f"staying (dns.keep): {SRV}, {SIP}" in out
    lower_and_wait(path)
    assert zone.read(SIP) == ({LEGACY}, 2) and zone.read(SRV, "SRV") == ({SRV_OLD}, 2)
    code, out = cli("-c", str(path), *RUN, "--phase", "cutover", "--yes")
    assert code == 0, out
    assert zone.read(POOL) == ({VIP}, 1) and zone.read(WEB) == ({VIP}, 1)
    assert zone.read(SIP) == ({LEGACY}, 2) and zone.read(SRV, "SRV") == ({SRV_OLD}, 2)
    code, report = cli("-c", str(path), "report", "--format", "md", "-o", "-")
    assert code == 0, report
    assert f"Moves with the pool name at the cutover: {POOL}, {WEB};" in report
    assert f"Stays where it is (dns.keep): {SIP}, {SRV}." in report


def test_a_listed_name_held_elsewhere_stops_before_any_change(tmp_path: Path, zone: Bind) -> None:
    path = moving_pool(tmp_path, zone)
    lower_and_wait(path)
    zone.set(SIP, "A", ["10.0.0.99"], 1)  # someone points it elsewhere meanwhile
    code, out = cli("-c", str(path), *RUN, "--phase", "cutover", "--yes")
    assert code == 1
    assert f"{SIP} A 10.0.0.99" in out and "dns.keep" in out and "nothing was changed" in out
    assert zone.read(POOL) == ({LEGACY}, 1) and zone.read(SRV, "SRV") == ({SRV_OLD}, 1)


def test_keeping_the_pool_name_is_refused(tmp_path: Path, zone: Bind) -> None:
    path = moving_pool(tmp_path, zone, keep=[POOL])
    code, out = cli("-c", str(path), "plan", "--phase", "cutover")
    assert code == 2 and "dns.keep.pool-name" in out


@pytest.mark.parametrize("tool", ["dnscmd", "dnsserver-module"])
def test_the_windows_provider_retargets_the_srv_record_and_rollback_puts_it_back(
    tmp_path: Path, zone: Bind, standins: dict, monkeypatch: pytest.MonkeyPatch, tool: str
) -> None:
    """Its scripts change SRV records too (dnscmd with the four fields, WMI for the
    TTL; the DnsServer module's -Srv): the SRV record aimed at the legacy FE is
    lowered, retargeted with priority, weight and port kept, and put back."""
    from winrm_standin import PASSWORD

    from .test_dns_actions import windows_pool_file

    monkeypatch.setenv("OCS_TEST_DNS_PW", PASSWORD)
    path = windows_pool_file(tmp_path, zone, standins[tool], "OCS_TEST_DNS_PW")
    path.write_text(path.read_text().replace("  address: 10.0.0.30\n", f"  address: {LEGACY}\n", 1))
    path.write_text(path.read_text().replace("  tool: auto\n", f"  tool: {tool}\n", 1))
    edit_dns(path, names=[WEB])
    lower_and_wait(path)
    assert zone.read(POOL) == ({LEGACY}, 1) and zone.read(SRV, "SRV") == ({SRV_OLD}, 1)

    code, out = cli("-c", str(path), *RUN, "--phase", "cutover", "--yes")
    assert code == 0, out
    for name in (POOL, SIP, WEB):
        assert zone.read(name) == ({VIP}, 1), name
    assert zone.read(SRV, "SRV") == ({SRV_NEW}, 1)  # priority, weight and port kept

    code, out = cli("-c", str(path), "rollback", "--yes")
    assert code == 0, out
    for name in (POOL, SIP, WEB):
        assert zone.read(name) == ({LEGACY}, 2), name
    assert zone.read(SRV, "SRV") == ({SRV_OLD}, 2)  # the old target and the old TTL
