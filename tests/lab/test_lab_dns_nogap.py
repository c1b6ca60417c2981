"""The pool name never goes without an address, for every provider the lab can
drive: a client resolves it every 50 ms throughout lower-ttl, the cutover with
its watch, the watch's automatic revert (the VIP stops answering) and the
rollback, and never gets an empty answer or NXDOMAIN. rfc2136 updates the lab's
BIND itself; windows drives the lab's Windows stand-in over WinRM, which plays
a Windows DNS server (dnscmd) on that BIND, one update per command.

Polling can miss a moment between two polls, so the test also replays BIND's
zone journal (tests/providers/bind.rrset_history): after no update of the run
was the name without its A record.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from ruamel.yaml import YAML

from ocsscale.lab import lbhost, services
from ocsscale.lab.dns import CUTOVER_TTL, POOL_TTL
from ocsscale.lab.topology import DOMAIN, POOL_FQDN, VIP
from tests.providers.bind import rrset_history

from .conftest import RunningLab
from .fe_support import entries, output, pool_copy, tool
from .test_lab_cutover import _lower_ttl_and_wait, _record

pytestmark = pytest.mark.lab

VIP_ADDRESS = VIP.split("/", 1)[0]
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


def _use_short_watch(pool: Path) -> None:
    yaml = YAML()
    data = yaml.load(pool.read_text())
    data["dns"].update(watch_window=3, watch_interval=1)
    with pool.open("w") as f:
        yaml.dump(data, f)


@pytest.mark.parametrize("provider", ["rfc2136", "windows"])
def test_the_pool_name_always_answers_through_lower_ttl_cutover_revert_and_rollback(
    one_armed_lab: RunningLab, tmp_path: Path, provider: str
) -> None:
    lab = one_armed_lab
    legacy = lab.address("ocsfe00")
    dns_host = lab.topo.by_role("dns")[0]
    journal = lab.state.host_dir(dns_host.name) / "named" / f"{DOMAIN}.zone.jnl"
    pool = pool_copy(lab, tmp_path / provider)
    if provider == "windows":
        _use_windows_provider(pool)
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

    with ResolverLoop(lab, "client01", dns_host.address) as loop:
        try:
            result = tool(lab, pool, "run", "--phase", "configure-lb", "--yes", "--no-hold")
            assert result.returncode == 0, output(result)
            _lower_ttl_and_wait(lab, pool)
            assert _record(lab) == ({legacy}, CUTOVER_TTL)

            stopper = threading.Thread(target=stop_engine_once_watching)
            stopper.start()
            result = tool(
                lab, pool, "run", "--phase", "cutover", "--yes", "--no-hold", "--watch", "20"
            )
            stopper.join()
            text = output(result)
            assert stopped and result.returncode == 1, text
            assert "the cutover was reverted" in text, text
            replaced = [e for e in entries(pool) if e["action"] == "dns.replace"][-1]
            assert replaced["status"] == "reverted", replaced
            assert _record(lab) == ({legacy}, CUTOVER_TTL)
        finally:
            if stopped:
                services.start(lab.state.directory, engine)  # the farm's rollback stops it
            result = tool(lab, pool, "rollback", "--yes", timeout=420)
        time.sleep(1)  # a last few answers after the rollback
    assert result.returncode == 0, output(result)
    assert _record(lab) == ({legacy}, POOL_TTL)

    assert loop.empty == [] and loop.nxdomain == [], (loop.empty, loop.nxdomain)
    assert loop.answers >= 200, (loop.answers, loop.errors[:10])  # it ran throughout
    assert len(loop.errors) <= loop.answers // 20, loop.errors[:20]  # lost datagrams only
    assert frozenset({legacy}) in loop.seen and frozenset({VIP_ADDRESS}) in loop.seen, loop.seen

    history = rrset_history(journal, POOL_FQDN)[before:]
    # lower, cut over, revert, TTL back; windows also goes through both values at once
    assert len(history) >= 4, history
    assert all(values for values, _ in history), history
    if provider == "windows":
        assert frozenset({legacy, VIP_ADDRESS}) in [v for v, _ in history], history
