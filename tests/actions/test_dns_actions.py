"""lower-ttl and cutover through the real command line, against BIND on loopback:
the TTL lowered and journaled, the cutover refused until the old TTL has run
out (saying when), the guarded replace, the NS-set proof, and the rollback to
the old value and TTL."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from bind_server import Bind
from typer.testing import CliRunner
from winrm_standin import DOMAIN, PASSWORD, USER, StandIn

from ocsscale.actions.base import Context
from ocsscale.actions.dns import DnsVerify
from ocsscale.cli.main import app
from ocsscale.config.loader import load_pool
from ocsscale.errors import CheckFailed
from ocsscale.runner.journal import Journal

REPO = Path(__file__).resolve().parents[2]
#: lower-ttl and the DNS steps of the cutover (no test client is ever contacted)
PLAYBOOK = str(Path(__file__).with_name("dns_playbook.yaml"))
RUN = ("run", "--playbook", PLAYBOOK)
POOL = "ocspool.contoso.test"
LEGACY, VIP = "10.0.0.30", "10.0.0.40"  # record values only: never contacted


def pool_file(tmp_path: Path, bind: Bind, *, cutover_ttl: int, secret: str | None = None) -> Path:
    text = (REPO / "examples" / "one-armed.yaml").read_text().replace("contoso.com", "contoso.test")
    secret_file = tmp_path / "tsig-secret"
    secret_file.write_text((secret or bind.secret) + "\n")
    text = text.replace("servers: [10.0.0.10]", f"servers: [127.0.0.1]\n  port: {bind.port}")
    text = text.replace("cutover_ttl: 60", f"cutover_ttl: {cutover_ttl}")
    text = text.replace("{env: OCSSCALE_TSIG_SECRET}", f"{{file: {secret_file}}}")
    # the run lease on this machine: the example's LB host (10.x) is never contacted
    text += f"run:\n  lease: {{host: admin, dir: {tmp_path / 'leases'}}}\n"
    path = tmp_path / "pool.yaml"
    path.write_text(text)
    return path


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})
    return result.exit_code, result.output


def lower_evidence(pool: Path) -> dict:
    journal = Journal.open(pool.parent / ".ocsscale")
    try:
        entries = [e for e in journal.entries() if e.step_id == "lower-ttl/lower"]
    finally:
        journal.close()
    return entries[-1].evidence


def test_lower_ttl_cutover_and_rollback(tmp_path: Path, bind: Bind) -> None:
    bind.set(POOL, "A", [LEGACY], 2)  # a short old TTL: the wait below is real and short
    pool = pool_file(tmp_path, bind, cutover_ttl=1)

    code, out = cli("-c", str(pool), *RUN, "--phase", "lower-ttl", "--yes")
    assert code == 0, out
    assert bind.read(POOL) == ({LEGACY}, 1)
    evidence = lower_evidence(pool)
    assert evidence["old"] == {"values": [LEGACY], "ttl": 2}
    assert evidence["ready_at"] == evidence["lowered_at"] + 2
    assert [s["address"] for s in evidence["servers"]] == ["127.0.0.1"]

    while time.time() < evidence["ready_at"]:  # wait out the old TTL, as an operator would
        time.sleep(0.2)
    code, out = cli("-c", str(pool), *RUN, "--phase", "cutover", "--yes")
    assert code == 0, out
    assert bind.read(POOL) == ({VIP}, 1)

    code, out = cli("-c", str(pool), "rollback", "--yes")
    assert code == 0, out
    assert bind.read(POOL) == ({LEGACY}, 2)  # the old value and the old TTL


def test_cutover_refuses_until_the_old_ttl_has_run_out(tmp_path: Path, bind: Bind) -> None:
    bind.set(POOL, "A", [LEGACY], 3600)
    pool = pool_file(tmp_path, bind, cutover_ttl=60)
    assert cli("-c", str(pool), *RUN, "--phase", "lower-ttl", "--yes")[0] == 0
    ready = lower_evidence(pool)["ready_at_utc"]

    code, out = cli("-c", str(pool), *RUN, "--phase", "cutover", "--yes")
    assert code == 1
    assert f"runs out in every cache at {ready}" in out and "nothing was changed" in out
    assert bind.read(POOL) == ({LEGACY}, 60)


def test_cutover_refuses_when_the_ttl_was_never_lowered(tmp_path: Path, bind: Bind) -> None:
    bind.set(POOL, "A", [LEGACY], 3600)
    pool = pool_file(tmp_path, bind, cutover_ttl=60)
    code, out = cli("-c", str(pool), *RUN, "--phase", "cutover", "--yes")
    assert code == 1 and "was not lowered ahead of the cutover" in out
    assert "--phase lower-ttl" in out
    assert bind.read(POOL) == ({LEGACY}, 3600)


def test_a_record_changed_since_lower_ttl_is_never_overwritten(tmp_path: Path, bind: Bind) -> None:
    bind.set(POOL, "A", [LEGACY], 2)
    pool = pool_file(tmp_path, bind, cutover_ttl=1)
    assert cli("-c", str(pool), *RUN, "--phase", "lower-ttl", "--yes")[0] == 0
    ready_at = lower_evidence(pool)["ready_at"]
    bind.set(POOL, "A", ["10.0.0.99"], 1)  # someone else, meanwhile
    while time.time() < ready_at:
        time.sleep(0.2)
    code, out = cli("-c", str(pool), *RUN, "--phase", "cutover", "--yes")
    assert code == 1
    assert "10.0.0.99" in out and "changed by someone else" in out
    assert bind.read(POOL) == ({"10.0.0.99"}, 1)


def test_a_refused_replace_never_poisons_the_rollback(tmp_path: Path, bind: Bind) -> None:
    """The issue's reproducer: lower-ttl; someone changes the record; the cutover is
    refused (right); they set it back; rollback puts back the old TTL and never
    writes their value, nor stops at the refused step."""
    bind.set(POOL, "A", [LEGACY], 2)
    pool = pool_file(tmp_path, bind, cutover_ttl=1)
    assert cli("-c", str(pool), *RUN, "--phase", "lower-ttl", "--yes")[0] == 0
    ready_at = lower_evidence(pool)["ready_at"]
    bind.set(POOL, "A", ["10.0.0.99"], 1)  # someone else, meanwhile
    while time.time() < ready_at:
        time.sleep(0.2)
    code, out = cli("-c", str(pool), *RUN, "--phase", "cutover", "--wait", "--yes")
    assert code == 1 and "changed by someone else" in out
    journal = Journal.open(pool.parent / ".ocsscale")
    try:
        [replace] = [e for e in journal.entries() if e.action == "dns.replace"]
        assert replace.status == "failed" and replace.undo is None
        assert [e.action for e in journal.undoable()] == ["dns.lower_ttl"]
    finally:
        journal.close()
    bind.set(POOL, "A", [LEGACY], 1)  # and set back
    code, out = cli("-c", str(pool), "rollback", "--yes")
    assert code == 0, out
    assert bind.read(POOL) == ({LEGACY}, 2)  # the old TTL back, no foreign value


def test_a_wrong_tsig_key_is_a_clear_error_without_the_secret(tmp_path: Path, bind: Bind) -> None:
    bind.set(POOL, "A", [LEGACY], 3600)
    wrong = "d3JvbmctYnV0LXdlbGwtZm9ybWVkLWJhc2U2NC1rZXk="
    pool = pool_file(tmp_path, bind, cutover_ttl=60, secret=wrong)
    code, out = cli("-c", str(pool), *RUN, "--phase", "lower-ttl", "--yes")
    assert code == 1
    assert "TSIG" in out and "secret does not match" in out
    assert wrong not in out and bind.secret not in out
    for stored in (pool.parent / ".ocsscale").iterdir():  # the journal and its WAL
        if stored.is_file():
            assert wrong.encode() not in stored.read_bytes()
            assert bind.secret.encode() not in stored.read_bytes()
    assert bind.read(POOL) == ({LEGACY}, 3600)


def test_an_unresolvable_tsig_secret_stops_the_run_before_anything(
    tmp_path: Path, bind: Bind, monkeypatch: pytest.MonkeyPatch
) -> None:
    bind.set(POOL, "A", [LEGACY], 3600)
    pool = pool_file(tmp_path, bind, cutover_ttl=60)
    text = pool.read_text()
    pool.write_text(text[: text.index("secret: {file:")] + "secret: {env: OCS_NO_SUCH_VAR}\n")
    pool.write_text(pool.read_text() + text[text.index("\n# Credentials") :])
    monkeypatch.delenv("OCS_NO_SUCH_VAR", raising=False)
    code, out = cli("-c", str(pool), *RUN, "--phase", "lower-ttl", "--yes")
    assert code == 2, out
    assert "TSIG key ocsscale" in out and "OCS_NO_SUCH_VAR" in out
    assert bind.read(POOL) == ({LEGACY}, 3600)


def test_the_plan_shows_the_dns_steps(tmp_path: Path, bind: Bind) -> None:
    pool = pool_file(tmp_path, bind, cutover_ttl=60)
    code, out = cli("-c", str(pool), "plan", "--json", "--phase", "cutover")
    assert code == 0, out
    steps = json.loads(out)["phases"][0]["steps"]
    actions = list(dict.fromkeys(s["action"] for s in steps))
    assert actions == [
        "cutover.inventory",
        "cutover.no_pins",
        "dns.retarget_srv",
        "dns.replace",
        "dns.verify",
        "host.flush_dns",
        "lb.drain_restart",
        "probe.ports",
        "cutover.watch",
        "dns.raise_ttl",
    ]
    assert all(s["built"] for s in steps)


def test_a_ttl_already_low_is_waited_out_from_the_lower_ttl_step(
    tmp_path: Path, bind: Bind
) -> None:
    bind.set(POOL, "A", [LEGACY], 1)  # already at the cutover TTL: lower-ttl changes nothing
    pool = pool_file(tmp_path, bind, cutover_ttl=1)
    assert cli("-c", str(pool), *RUN, "--phase", "lower-ttl", "--yes")[0] == 0
    journal = Journal.open(pool.parent / ".ocsscale")
    try:
        (entry,) = [e for e in journal.entries() if e.step_id == "lower-ttl/lower"]
    finally:
        journal.close()
    assert entry.evidence["unchanged"] is True and entry.undo is None
    while time.time() < entry.finished + 1:
        time.sleep(0.2)
    code, out = cli("-c", str(pool), *RUN, "--phase", "cutover", "--yes")
    assert code == 0, out
    assert bind.read(POOL) == ({VIP}, 1)


def test_verify_names_the_name_server_that_does_not_answer(tmp_path: Path, bind: Bind) -> None:
    bind.set(POOL, "A", [VIP], 60)
    pool = load_pool(pool_file(tmp_path, bind, cutover_ttl=60))
    ctx = Context(pool=pool.pool, profile=pool.profile, host=lambda name: None)
    args = {"name": POOL, "address": VIP, "settle": 0}
    assert DnsVerify(ctx, args).apply(None)["servers"][0]["values"] == [VIP]
    bind.set("ns2.contoso.test", "A", ["127.0.0.3"], 60)  # nothing listens there
    bind.set("contoso.test", "NS", ["ns1.contoso.test.", "ns2.contoso.test."], 3600)
    assert bind.read("contoso.test", "NS")[0] == {"ns1.contoso.test.", "ns2.contoso.test."}
    try:
        with pytest.raises(CheckFailed) as caught:
            DnsVerify(ctx, args).apply(None)
        assert "ns2.contoso.test. (127.0.0.3)" in caught.value.message
        assert "ns1" not in caught.value.message
        bind.set(POOL, "A", [LEGACY], 60)
        with pytest.raises(CheckFailed) as caught:
            DnsVerify(ctx, args).apply(None)
        assert f"ns1.contoso.test. (127.0.0.1) answers {LEGACY}" in caught.value.message
    finally:
        bind.remove("contoso.test", "NS", "ns2.contoso.test.")
    assert bind.read("contoso.test", "NS")[0] == {"ns1.contoso.test."}


def test_a_ttl_raised_again_since_lower_ttl_is_refused(tmp_path: Path, bind: Bind) -> None:
    bind.set(POOL, "A", [LEGACY], 2)
    pool = pool_file(tmp_path, bind, cutover_ttl=1)
    code, out = cli("-c", str(pool), *RUN, "--phase", "lower-ttl", "--yes")
    assert code == 0, out
    bind.set(POOL, "A", [LEGACY], 7200)  # someone puts the long TTL back
    code, out = cli("-c", str(pool), *RUN, "--phase", "cutover", "--yes")
    assert code == 1 and "has TTL 7200 again" in out
    assert bind.read(POOL) == ({LEGACY}, 7200)


def windows_pool_file(tmp_path: Path, bind: Bind, standin: StandIn, password_env: str) -> Path:
    """The example pool with the windows provider: the WinRM stand-in is the DNS server."""
    text = pool_file(tmp_path, bind, cutover_ttl=1).read_text()
    start, end = text.index("dns:\n"), text.index("\n# Credentials")
    block = f"""dns:
  provider: windows
  zone: contoso.test
  servers: [127.0.0.1]
  port: {bind.port}
  ttl: 3600
  cutover_ttl: 1
  tool: auto
  host:
    name: dns01
    address: 127.0.0.1
    transport: {{kind: winrm, credentials: dns-admin, port: {standin.port}, scheme: http}}
"""
    text = text[:start] + block + text[end:]
    credential = f"  dns-admin:\n    username: '{DOMAIN}\\{USER}'\n"
    credential += f"    password: {{env: {password_env}}}\n"
    text = text.replace("credentials:\n", "credentials:\n" + credential, 1)
    path = tmp_path / "pool.yaml"
    path.write_text(text)
    return path


def test_windows_provider_through_the_pool_file(
    tmp_path: Path, bind: Bind, standins: dict[str, StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    bind.set(POOL, "A", [LEGACY], 2)
    pool = windows_pool_file(tmp_path, bind, standins["dnscmd"], "OCS_TEST_DNS_PW")
    monkeypatch.delenv("OCS_TEST_DNS_PW", raising=False)
    code, out = cli("-c", str(pool), *RUN, "--phase", "lower-ttl", "--yes")
    assert code == 2 and "host dns01" in out and "OCS_TEST_DNS_PW" in out
    assert bind.read(POOL) == ({LEGACY}, 2)

    monkeypatch.setenv("OCS_TEST_DNS_PW", PASSWORD)
    code, out = cli("-c", str(pool), *RUN, "--phase", "lower-ttl", "--yes")
    assert code == 0, out
    assert bind.read(POOL) == ({LEGACY}, 1)
    while time.time() < lower_evidence(pool)["ready_at"]:
        time.sleep(0.2)
    code, out = cli("-c", str(pool), *RUN, "--phase", "cutover", "--yes")
    assert code == 0, out
    assert bind.read(POOL) == ({VIP}, 1)
    code, out = cli("-c", str(pool), "rollback", "--yes")
    assert code == 0, out
    assert bind.read(POOL) == ({LEGACY}, 2)
    assert PASSWORD not in out
