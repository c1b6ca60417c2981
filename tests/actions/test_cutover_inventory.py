"""cutover.inventory against BIND on loopback: the zone transferred with the
pool file's TSIG key, every name pointing at the legacy FE shown, and a CNAME
or an unlisted A record stopping the run unless acknowledged."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from bind_server import Bind
from ruamel.yaml import YAML
from winrm_standin import PASSWORD, StandIn

from ocsscale.actions.base import Context
from ocsscale.actions.cutover import CutoverInventory
from ocsscale.config.loader import load_pool
from ocsscale.errors import CheckFailed
from ocsscale.transports.factory import HostPool

from .test_dns_actions import LEGACY, POOL, pool_file, windows_pool_file

WEB = "webfarm.contoso.test"
ALIAS = "meet.contoso.test"


class Yes:
    """An operator at the terminal who acknowledges whatever is asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def tell(self, title: str, lines: list[str], data: dict[str, object] | None = None) -> None:
        pass

    def ask(self, question: str, choices: list[str], default: str | None = None) -> str:
        self.asked.append(question)
        return "yes"

    def text(self, question: str, default: str = "") -> str:
        return default


def inventory(path: Path, operator: object | None = None, *, sip: bool = True) -> dict:
    loaded = load_pool(path)
    ctx = Context(pool=loaded.pool, profile=loaded.profile, host=lambda name: None, pool_path=path)
    if operator is not None:
        ctx = dataclasses.replace(ctx, operator=operator)  # type: ignore[arg-type]
    args = {"name": POOL, "legacy": LEGACY}
    if sip:
        args["domain"] = "contoso.test"
    return CutoverInventory(ctx, args).apply(None)


def edit_dns(path: Path, **values: object) -> None:
    yaml = YAML()
    data = yaml.load(path.read_text())
    data["dns"].update(values)
    with path.open("w") as f:
        yaml.dump(data, f)


def test_the_zone_is_transferred_and_the_pool_name_listed(tmp_path: Path, bind: Bind) -> None:
    bind.set(POOL, "A", [LEGACY], 60)
    bind.set("_sipinternaltls._tcp.contoso.test", "SRV", [f"0 0 5061 {POOL}."], 60)
    try:
        found = inventory(pool_file(tmp_path, bind, cutover_ttl=60))
    finally:
        bind.remove("_sipinternaltls._tcp.contoso.test", "SRV", f"0 0 5061 {POOL}.")
    assert found["source"] == "zone transfer (AXFR)"
    kinds = {(r["name"], r["type"]): r["kind"] for r in found["names"]}
    assert kinds[(POOL, "A")] == "moves"
    assert kinds[("_sipinternaltls._tcp.contoso.test", "SRV")] == "srv-ok"
    assert kinds[("_sipinternal._tcp.contoso.test", "-")] == "absent"
    assert kinds[("sip.contoso.test", "-")] == "absent"
    assert not [k for k in kinds.values() if k in ("cname", "unlisted", "srv-elsewhere")]


def test_without_a_sip_domain_no_sip_name_is_looked_at(tmp_path: Path, bind: Bind) -> None:
    """generic-tls: not a SIP service; an SRV record aiming elsewhere does not stop it."""
    bind.set(POOL, "A", [LEGACY], 60)
    bind.set("_sipinternaltls._tcp.contoso.test", "SRV", ["0 0 5061 elsewhere.contoso.test."], 60)
    path = pool_file(tmp_path, bind, cutover_ttl=60)
    try:
        with pytest.raises(CheckFailed, match="_sipinternaltls"):
            inventory(path)  # a SIP pool: the SRV record aiming elsewhere stops it
        found = inventory(path, sip=False)
    finally:
        bind.remove("_sipinternaltls._tcp.contoso.test", "SRV", "0 0 5061 elsewhere.contoso.test.")
    assert [(r["name"], r["kind"]) for r in found["names"]] == [(POOL, "moves")]


def test_a_cname_and_an_unlisted_name_stop_unless_acknowledged(tmp_path: Path, bind: Bind) -> None:
    bind.set(POOL, "A", [LEGACY], 60)
    bind.set(WEB, "A", [LEGACY], 60)
    bind.set(ALIAS, "CNAME", [f"{POOL}."], 60)
    path = pool_file(tmp_path, bind, cutover_ttl=60)
    try:
        with pytest.raises(CheckFailed) as caught:
            inventory(path)  # nobody at a terminal
        message = caught.value.message
        assert WEB in message and ALIAS in message and "nobody at a terminal" in message
        assert "dns.acknowledge" in (caught.value.hint or "")

        operator = Yes()
        found = inventory(path, operator)
        assert operator.asked and WEB in operator.asked[0] and ALIAS in operator.asked[0]
        rows = {r["name"]: r for r in found["names"]}
        assert rows[WEB]["acknowledged"] == "at the terminal" and rows[ALIAS]["kind"] == "cname"

        edit_dns(path, names=[WEB], acknowledge=[ALIAS])
        found = inventory(path)  # listed and acknowledged in the pool file: no question
        rows = {r["name"]: r for r in found["names"]}
        assert rows[WEB]["kind"] == "listed" and rows[ALIAS]["acknowledged"] is True
    finally:
        bind.remove(WEB, "A", LEGACY)
        bind.remove(ALIAS, "CNAME", f"{POOL}.")


def test_the_windows_provider_looks_up_the_listed_names(
    tmp_path: Path, bind: Bind, standins: dict[str, StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No zone transfer over WinRM: the listed names through the provider's own
    lookup (dnscmd on the stand-in), the SRV records over DNS."""
    monkeypatch.setenv("OCS_TEST_DNS_PW", PASSWORD)
    bind.set(POOL, "A", [LEGACY], 60)
    bind.set(WEB, "A", [LEGACY], 60)
    bind.set(ALIAS, "CNAME", [f"{POOL}."], 60)
    path = windows_pool_file(tmp_path, bind, standins["dnscmd"], "OCS_TEST_DNS_PW")
    edit_dns(path, names=[WEB], acknowledge=[ALIAS])
    loaded = load_pool(path)
    hosts = HostPool(loaded)
    ctx = Context(pool=loaded.pool, profile=loaded.profile, host=hosts, pool_path=path)
    try:
        args = {"name": POOL, "legacy": LEGACY, "domain": "contoso.test"}
        found = CutoverInventory(ctx, args).apply(None)
    finally:
        hosts.close_all()
        bind.remove(WEB, "A", LEGACY)
        bind.remove(ALIAS, "CNAME", f"{POOL}.")
    assert found["source"].startswith("lookups of the listed names only (windows")
    rows = {(r["name"], r["type"]): r for r in found["names"]}
    assert rows[(POOL, "A")]["kind"] == "moves" and rows[(WEB, "A")]["kind"] == "listed"
    assert rows[(ALIAS, "CNAME")]["kind"] == "cname" and rows[(ALIAS, "CNAME")]["acknowledged"]
    assert rows[("_sipinternaltls._tcp.contoso.test", "-")]["kind"] == "absent"
