"""cutover.watch when a test client cannot be reached: the operator decides
(continue, revert, stop); with nobody to ask it stops without reverting. The
record lives on BIND on loopback and is cut over by the real command line; the
client is a WinRM host on a loopback port where nothing listens, so every
connection to it is refused for real."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from bind_server import Bind, free_port
from ruamel.yaml import YAML

from ocsscale.actions.base import Context
from ocsscale.actions.cutover_watch import CutoverWatch
from ocsscale.config.loader import load_pool
from ocsscale.errors import StepFailed
from ocsscale.runner.history import JournalHistory, journal_reverts
from ocsscale.runner.journal import Journal
from ocsscale.transports.factory import HostPool

from .test_cutover_inventory import edit_dns
from .test_dns_actions import LEGACY, POOL, RUN, VIP, cli, lower_evidence, pool_file


class Answers:
    """An operator at the terminal who gives the answer the test chose."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def tell(self, title: str, lines: list[str], data: dict[str, object] | None = None) -> None:
        pass

    def ask(self, question: str, choices: list[str], default: str | None = None) -> str:
        assert self.answer in choices
        self.asked.append(question)
        return self.answer

    def text(self, question: str, default: str = "") -> str:
        return default


def cut_over(tmp_path: Path, bind: Bind) -> Path:
    bind.set(POOL, "A", [LEGACY], 2)
    path = pool_file(tmp_path, bind, cutover_ttl=1)
    yaml = YAML()
    data = yaml.load(path.read_text())
    data["test_clients"] = [data["test_clients"][0]]
    data["test_clients"][0]["address"] = "127.0.0.1"
    transport = data["test_clients"][0]["transport"]
    transport.update({"port": free_port(), "scheme": "http"})  # nothing listens there
    with path.open("w") as f:
        yaml.dump(data, f)
    edit_dns(path, watch_window=1, watch_interval=1)
    assert cli("-c", str(path), *RUN, "--phase", "lower-ttl", "--yes")[0] == 0
    while time.time() < lower_evidence(path)["ready_at"]:
        time.sleep(0.2)
    code, out = cli("-c", str(path), *RUN, "--phase", "cutover", "--yes")
    assert code == 0, out
    assert bind.read(POOL) == ({VIP}, 1)
    return path


def watch(path: Path, operator: object | None) -> dict:
    loaded = load_pool(path)
    hosts = HostPool(loaded)
    journal = Journal.open(path.parent / ".ocsscale")
    ctx = Context(
        pool=loaded.pool,
        profile=loaded.profile,
        host=hosts,
        pool_path=path,
        history=JournalHistory(journal),
        report_revert=journal_reverts(journal),
    )
    if operator is not None:
        ctx = dataclasses.replace(ctx, operator=operator)  # type: ignore[arg-type]
    dns = loaded.pool.dns
    args = {
        "name": POOL,
        "address": VIP,
        "window": dns.watch_window,
        "interval": dns.watch_interval,
        "failures": dns.watch_failures,
        "timeout": 2,
    }
    try:
        return CutoverWatch(ctx, args).apply(None)
    finally:
        hosts.close_all()
        journal.close()


def replace_status(path: Path) -> str:
    journal = Journal.open(path.parent / ".ocsscale")
    try:
        return [e for e in journal.entries() if e.step_id == "cutover/replace"][-1].status
    finally:
        journal.close()


@pytest.fixture
def client_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCS_CLIENT_PASSWORD", "not-used-nothing-listens")


def test_unreachable_client_with_nobody_to_ask_stops_without_reverting(
    tmp_path: Path, bind: Bind, client_password: None
) -> None:
    path = cut_over(tmp_path, bind)
    with pytest.raises(StepFailed) as caught:
        watch(path, None)
    message = caught.value.message
    assert "inconclusive: client01 cannot be reached" in message
    assert "nobody at a terminal" in message and "NOT reverted" in message
    assert bind.read(POOL) == ({VIP}, 1)
    assert replace_status(path) == "done"
    assert cli("-c", str(path), "rollback", "--yes")[0] == 0
    assert bind.read(POOL) == ({LEGACY}, 2)


def test_the_operator_reverts_or_keeps_watching(
    tmp_path: Path, bind: Bind, client_password: None
) -> None:
    path = cut_over(tmp_path, bind)
    keep = Answers("continue")
    evidence = watch(path, keep)
    assert len(keep.asked) == evidence["rounds"] >= 2 and "client01" in keep.asked[0]
    assert evidence["failed_count"] == 0 and len(evidence["inconclusive"]) == evidence["rounds"]
    assert bind.read(POOL) == ({VIP}, 1)

    with pytest.raises(StepFailed) as caught:
        watch(path, Answers("revert"))
    assert "the cutover was reverted: the operator chose to revert" in caught.value.message
    assert bind.read(POOL) == ({LEGACY}, 1)  # the value and TTL before the replace
    assert replace_status(path) == "reverted"
    assert cli("-c", str(path), "rollback", "--yes")[0] == 0
    assert bind.read(POOL) == ({LEGACY}, 2)
