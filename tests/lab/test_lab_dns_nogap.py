"""The pool name never goes without an address, for every provider the lab can
drive: a client resolves it every 50 ms throughout lower-ttl, the cutover with
its watch, the watch's automatic revert (the VIP stops answering) and the
rollback, and never gets an empty answer or NXDOMAIN. rfc2136 updates the lab's
BIND itself; windows drives the lab's Windows stand-in over WinRM, which plays
a Windows DNS server (dnscmd) on that BIND, one update per command; manual
waits for a person: a console operator at "another terminal" (a thread) polls
`ocsscale answer --json`, makes the change the checklist's data gives on BIND
(the adds as one signed update, then the removes as another) and answers
`ocsscale answer done --by console`.

Polling can miss a moment between two polls, so the test also replays BIND's
zone journal (tests/bind_server.rrset_history): after no update of the run
was the name without its A record.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.update
import pytest
from bind_server import rrset_history
from ruamel.yaml import YAML

from ocsscale_lab import lbhost, services
from ocsscale_lab.dns import CUTOVER_TTL, POOL_TTL, TSIG_ALGORITHM, TSIG_NAME
from ocsscale_lab.poolfile import tsig_secret_file
from ocsscale_lab.topology import DOMAIN, POOL_FQDN

from .conftest import RunningLab
from .fe_support import (
    VIP_ADDRESS,
    dns_record,
    entries,
    journaled_answers,
    output,
    pool_copy,
    tool,
    wait_ready,
)

pytestmark = pytest.mark.lab

INTERVAL = 0.05
#: the loop's bounds: at most this many queries, for at most this long
MAX_QUERIES = 8000
MAX_SECONDS = 420.0


class ResolverLoop:
    """Asks the lab's DNS server for the pool name every INTERVAL from a client's
    namespace (its own UDP socket there), until stopped or out of bounds."""

    def __init__(self, lab: RunningLab, client: str, server: str) -> None:
        self.server = server
        self.sock = lab.inside(client, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        self.answers = 0
        self.empty: list[float] = []
        self.nxdomain: list[float] = []
        self.errors: list[str] = []
        self.seen: set[frozenset[str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="resolver-loop", daemon=True)

    def __enter__(self) -> ResolverLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sock.close()

    def _loop(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        for _ in range(MAX_QUERIES):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            self._ask()
            self._stop.wait(INTERVAL)

    def _ask(self) -> None:
        query = dns.message.make_query(POOL_FQDN, "A")
        try:
            response = dns.query.udp(query, self.server, timeout=1.0, sock=self.sock)
        except Exception as exc:  # a lost datagram is not an answer; counted apart
            self.errors.append(type(exc).__name__)
            return
        if response.rcode() == dns.rcode.NXDOMAIN:
            self.nxdomain.append(time.time())
            return
        values = frozenset(
            r.to_text() for rr in response.answer if rr.rdtype == dns.rdatatype.A for r in rr
        )
        if response.rcode() != dns.rcode.NOERROR:
            self.errors.append(dns.rcode.to_text(response.rcode()))
        elif not values:
            self.empty.append(time.time())
        else:
            self.answers += 1
            self.seen.add(values)


def _use_windows_provider(pool: Path) -> None:
    """The pool copy's DNS through the Windows stand-in client02 (dnscmd, over
    WinRM), which plays the DNS server on the lab's BIND; client01 probes alone."""
    yaml = YAML()
    data = yaml.load(pool.read_text())
    (client02,) = [h for h in data["test_clients"] if h["name"] == "client02"]
    # hosts are addressed by name: as the DNS server it is no test client here
    data["test_clients"] = [h for h in data["test_clients"] if h["name"] != "client02"]
    dns = data["dns"]
    data["dns"] = {
        "provider": "windows",
        "zone": dns["zone"],
        "servers": dns["servers"],
        "ttl": dns["ttl"],
        "cutover_ttl": dns["cutover_ttl"],
        "watch_window": 3,
        "watch_interval": 1,
        "tool": "dnscmd",
        "host": dict(client02),
    }
    with pool.open("w") as f:
        yaml.dump(data, f)


def _use_manual_provider(pool: Path) -> None:
    """The pool copy's DNS changed by hand (the manual provider), on the same BIND."""
    yaml = YAML()
    data = yaml.load(pool.read_text())
    dns = dict(data["dns"])
    dns.pop("tsig", None)
    data["dns"] = {**dns, "provider": "manual", "watch_window": 3, "watch_interval": 1}
    with pool.open("w") as f:
        yaml.dump(data, f)


#: how long a run waits for the console operator's answer
ANSWER_TIMEOUT = "120"


class ConsoleOperator:
    """A person at another terminal of the admin machine, at the DNS console:
    polls `ocsscale answer --json`, makes the change the checklist's data says on
    the lab's BIND (signed with the lab's TSIG key), in the order given: the adds
    as one update, then the removes as another; then `ocsscale answer done`.
    Uses only the checklist's `data`: a change it lacks fails the test."""

    def __init__(self, lab: RunningLab, pool: Path, server: str) -> None:
        self.lab, self.pool, self.server = lab, pool, server
        secret = tsig_secret_file(lab.state).read_text(encoding="utf-8").strip()
        self.key = dns.tsig.Key(TSIG_NAME, secret, TSIG_ALGORITHM)
        self.changes: list[dict[str, Any]] = []
        self.unexpected: list[str] = []
        self.errors: list[str] = []
        self._handled: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="console", daemon=True)

    def __enter__(self) -> ConsoleOperator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _loop(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self._round()
            except Exception as exc:  # reported by the test, never swallowed
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(0.3)

    def _round(self) -> None:
        result = tool(self.lab, self.pool, "answer", "--json", timeout=60)
        if result.returncode != 0:
            self.errors.append(output(result))
            return
        asked = json.loads(result.stdout)
        if asked.get("waiting") is False or asked["stale"] or asked["id"] in self._handled:
            return
        self._handled.add(asked["id"])
        data = (asked.get("checklist") or {}).get("data")
        if not data or data.get("kind") != "dns-change":
            self.unexpected.append(str(asked["question"]))
            return
        self._change(data)
        self.changes.append(data)
        answered = tool(
            self.lab, self.pool, "answer", "done", "--by", "console", "--id", asked["id"]
        )
        if answered.returncode != 0:
            self.errors.append(output(answered))

    def _rdata(self, rdtype: str, value: str) -> Any:
        # names absolute: an SRV target must not be made relative to the zone
        return dns.rdata.from_text(
            dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), value, dns.name.root,
            relativize=False,
        )  # fmt: skip

    def _send(self, update: dns.update.UpdateMessage) -> None:
        response = self.lab.inside("admin", lambda: dns.query.tcp(update, self.server, timeout=5))
        assert response.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(response.rcode())

    def _change(self, data: dict[str, Any]) -> None:
        owner = dns.name.from_text(str(data["name"]))
        rdtype, ttl = str(data["rdtype"]), int(data["ttl"])

        def update() -> dns.update.UpdateMessage:
            return dns.update.UpdateMessage(
                str(data["zone"]), keyring=self.key, keyname=self.key.name,
                keyalgorithm=self.key.algorithm,
            )  # fmt: skip

        # the new values, and the kept ones again with the new TTL (BIND keeps
        # one TTL per RRset): one update; never a delete before the adds
        adds = update()
        for value in [*data["add"], *data["keep"]]:
            adds.add(owner, ttl, self._rdata(rdtype, str(value)))
        self._send(adds)
        if data["remove"]:
            removes = update()
            for value in data["remove"]:
                removes.delete(owner, self._rdata(rdtype, str(value)))
            self._send(removes)


def _use_short_watch(pool: Path) -> None:
    yaml = YAML()
    data = yaml.load(pool.read_text())
    data["dns"].update(watch_window=3, watch_interval=1)
    with pool.open("w") as f:
        yaml.dump(data, f)


@pytest.mark.parametrize("provider", ["rfc2136", "windows", "manual"])
def test_the_pool_name_always_answers_through_lower_ttl_cutover_revert_and_rollback(
    one_armed_lab: RunningLab, tmp_path: Path, provider: str
) -> None:
    lab = one_armed_lab
    legacy = lab.address("ocsfe00")
    dns_host = lab.topo.by_role("dns")[0]
    journal = lab.state.host_dir(dns_host.name) / "named" / f"{DOMAIN}.zone.jnl"
    pool = pool_copy(lab, tmp_path / provider)
    #: a manual change waits (bounded) for the console operator's answer
    answering = ["--answer-timeout", ANSWER_TIMEOUT] if provider == "manual" else []
    if provider == "windows":
        _use_windows_provider(pool)
    elif provider == "manual":
        _use_manual_provider(pool)
    else:
        _use_short_watch(pool)
    engine = services.load(lab.state.directory, "lb01", lbhost.ENGINE_SERVICE)
    before = len(rrset_history(journal, POOL_FQDN)) if journal.exists() else 0
    stopped: list[bool] = []

    def stop_engine_once_watching() -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            steps = [e for e in entries(pool) if e["step_id"] == "cutover/watch"]
            if steps and steps[-1]["status"] in ("pending", "applying"):
                services.stop(lab.state.directory, engine)
                stopped.append(True)
                return
            time.sleep(0.2)

    console = ConsoleOperator(lab, pool, dns_host.address) if provider == "manual" else None
    with (
        ResolverLoop(lab, "client01", dns_host.address) as loop,
        console or contextlib.nullcontext(),
    ):
        try:
            result = tool(
                lab, pool, "run", "--phase", "configure-lb", "--yes", "--no-hold", *answering
            )
            assert result.returncode == 0, output(result)
            result = tool(lab, pool, "run", "--phase", "lower-ttl", "--yes", *answering)
            assert result.returncode == 0, output(result)
            wait_ready(pool)
            assert dns_record(lab) == ({legacy}, CUTOVER_TTL)

            stopper = threading.Thread(target=stop_engine_once_watching)
            stopper.start()
            result = tool(
                lab, pool, "run", "--phase", "cutover", "--yes", "--no-hold", "--watch", "20",
                *answering,
            )  # fmt: skip
            stopper.join()
            text = output(result)
            assert stopped and result.returncode == 1, text
            assert "the cutover was reverted" in text, text
            replaced = [e for e in entries(pool) if e["action"] == "dns.replace"][-1]
            assert replaced["status"] == "reverted", replaced
            assert dns_record(lab) == ({legacy}, CUTOVER_TTL)
        finally:
            if stopped:
                services.start(lab.state.directory, engine)  # the farm's rollback stops it
            result = tool(lab, pool, "rollback", "--yes", *answering, timeout=420)
        time.sleep(1)  # a last few answers after the rollback
    assert result.returncode == 0, output(result)
    assert dns_record(lab) == ({legacy}, POOL_TTL)

    assert loop.empty == [] and loop.nxdomain == [], (loop.empty, loop.nxdomain)
    assert loop.answers >= 200, (loop.answers, loop.errors[:10])  # it ran throughout
    assert len(loop.errors) <= loop.answers // 20, loop.errors[:20]  # lost datagrams only
    assert frozenset({legacy}) in loop.seen and frozenset({VIP_ADDRESS}) in loop.seen, loop.seen

    history = rrset_history(journal, POOL_FQDN)[before:]
    # lower, cut over, revert, TTL back; windows also goes through both values at once
    assert len(history) >= 4, history
    assert all(values for values, _ in history), history
    if provider in ("windows", "manual"):
        assert frozenset({legacy, VIP_ADDRESS}) in [v for v, _ in history], history
    if console is not None:
        assert console.errors == [] and console.unexpected == [], (
            console.errors,
            console.unexpected,
        )
        moves = [c for c in console.changes if c["name"].rstrip(".") == POOL_FQDN]
        # lowered, cut over (VIP added, then the legacy FE removed), reverted, TTL back
        assert [c["kind"] for c in moves] == ["dns-change"] * len(moves) and len(moves) >= 4
        assert any(c["add"] == [VIP_ADDRESS] and c["remove"] == [legacy] for c in moves), moves
        assert any(c["add"] == [legacy] and c["remove"] == [VIP_ADDRESS] for c in moves), moves
        journaled = journaled_answers(pool)
        assert journaled and {(a["by"], a["via"], a["answer"]) for a in journaled} == {
            ("console", "answer", "done")
        }, journaled
