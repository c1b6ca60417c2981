"""validate-lb's SNAT/DNAT proof and decommission's drain on Windows front ends that
answer as a German Windows does (WinRM stand-ins with `--locale de`: netstat says
HERGESTELLT). Both read the FEs' connections through .NET, so the proof still sees the
SNAT address and the drain still sees the client; a table it cannot read fails the
drain naming the host, never "no clients". Real connections on loopback (fe00
127.0.0.30, fe01 .41, fe02 .42; the SNAT address 127.0.0.40; a client 127.0.0.101)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from windows_pool import WindowsPool, windows_pool

from ocsscale.actions.lb_validate import LbDistribution
from ocsscale.actions.legacy import LegacyDrain
from ocsscale.errors import CheckFailed, TransportError

pytestmark = pytest.mark.timeout(180)


@pytest.fixture()
def german(tmp_path: Path) -> Iterator[WindowsPool]:
    with windows_pool(tmp_path, "--locale", "de", windows_legacy=True) as made:
        yield made


class Held:
    """Connections held open to listeners on one port of several addresses."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        first = socket.socket()
        first.bind(("127.0.0.41", 0))
        first.listen(8)
        self.port = first.getsockname()[1]
        self.listeners = {"127.0.0.41": first}

    def connect(self, source: str, target: str) -> socket.socket:
        if target not in self.listeners:
            listener = socket.socket()
            listener.bind((target, self.port))
            listener.listen(8)
            self.listeners[target] = listener
        client = socket.socket()
        client.bind((source, 0))
        client.connect((target, self.port))
        accepted, _ = self.listeners[target].accept()
        self.sockets += [client, accepted]
        return client

    def close(self) -> None:
        for s in [*self.sockets, *self.listeners.values()]:
            s.close()


@pytest.fixture()
def held() -> Iterator[Held]:
    made = Held()
    yield made
    made.close()


def test_the_snat_proof_holds_on_a_german_windows(german: WindowsPool, held: Held) -> None:
    # (the stand-ins share this test's network namespace, so each lists every
    # connection of it: only fe01's own proof is judged here)
    held.connect("127.0.0.40", "127.0.0.41")  # through the LB: from its SNAT address
    held.connect("127.0.0.40", "127.0.0.41")
    ctx, hosts = german.context()
    with hosts:
        proof = LbDistribution(ctx, {"port": held.port})._nat_proof()
        assert proof["fe01"] == {
            "proven": True,
            "peers": ["127.0.0.40"],
            "from_snat": 2,
            "from_clients": [],
            "local_not_own": [],
        }
        held.connect("127.0.0.101", "127.0.0.41")  # a client straight to fe01: no SNAT
        proof = LbDistribution(ctx, {"port": held.port})._nat_proof()
        assert proof["fe01"]["proven"] and proof["fe01"]["from_clients"] == ["127.0.0.101"]


def test_the_drain_sees_clients_on_a_german_windows(german: WindowsPool, held: Held) -> None:
    client = held.connect("127.0.0.101", "127.0.0.30")
    held.connect("127.0.0.41", "127.0.0.30")  # another front end: not a client
    ctx, hosts = german.context()
    with hosts:
        drain = LegacyDrain(ctx, {"drain_timeout": 1, "on_timeout": "fail"})
        drain.ports = [held.port]  # the SIP ports' reading, on a port of this test's own
        with pytest.raises(CheckFailed, match=r"fe00: 1 client connection\(s\) still open") as e:
            drain.apply({})
        assert f"127.0.0.101 (port {held.port})" in e.value.message
        client.close()
        assert drain.apply({})["seen"][-1]["clients"] == 0


def test_an_unreadable_table_fails_the_drain_naming_the_host(
    german: WindowsPool, held: Held, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, hosts = german.context()
    with hosts:
        legacy = ctx.host("fe00")
        # what a parser of translated words would have made of it: not a TcpState name
        monkeypatch.setattr(
            legacy,
            "_operation",
            lambda *a, **k: {
                "connections": [
                    {
                        "state": "HERGESTELLT",
                        "local": "127.0.0.30",
                        "local_port": held.port,
                        "remote": "127.0.0.101",
                        "remote_port": 50000,
                    }
                ]
            },
        )
        drain = LegacyDrain(ctx, {"drain_timeout": 1, "on_timeout": "fail"})
        drain.ports = [held.port]
        with pytest.raises(TransportError, match=r"^fe00: unreadable list of TCP connections"):
            drain.apply({})
