"""A Windows host's TCP connections, read through .NET (GetActiveTcpConnections, TcpState
by name) and so the same on a German Windows, whose netstat says HERGESTELLT. Against
the WinRM stand-in, which answers from the kernel's real table of its namespace; with
`--locale de` its console programs print as a German Windows does."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from winrm_standin import StandIn, host_for, ntlm_protocol, run_in_shell, start_standin

from ocsscale.errors import TransportError
from ocsscale.transports.winrm import WinRMHost

pytestmark = pytest.mark.timeout(120)

ADDRESS = "127.0.0.41"
CLIENT = "127.0.0.77"


@pytest.fixture(params=["en", "de"])
def standin(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StandIn]:
    made = start_standin(tmp_path / "win", tls=None, auth="ntlm", extra=("--locale", request.param))
    yield made
    made.stop()


@pytest.fixture()
def held() -> Iterator[tuple[int, socket.socket]]:
    """A listener on ADDRESS and one connection to it from CLIENT, held open."""
    listener = socket.socket()
    listener.bind((ADDRESS, 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    client = socket.socket()
    client.bind((CLIENT, 0))
    client.connect((ADDRESS, port))
    accepted, _ = listener.accept()
    yield port, client
    for s in (client, accepted, listener):
        s.close()


@contextmanager
def _host(standin: StandIn) -> Iterator[WinRMHost]:
    host = host_for(standin, auth="ntlm")
    try:
        yield host
    finally:
        host.close()


def _cmd(standin: StandIn, command: str) -> tuple[bytes, bytes, int]:
    proto = ntlm_protocol(standin)
    shell = proto.open_shell()
    try:
        return run_in_shell(proto, shell, command)
    finally:
        proto.close_shell(shell)


def test_connections_are_read_by_tcpstate_name_in_every_language(
    standin: StandIn, held: tuple[int, socket.socket]
) -> None:
    port, client = held
    with _host(standin) as host:
        found = host.connections([port])
        # the listener is not a connection, and the client's end is on another local port
        assert [(c.local, c.local_port, c.remote) for c in found] == [(ADDRESS, port, CLIENT)]
        assert found[0].remote_port == client.getsockname()[1]
        client.close()  # the server side is no longer established
        assert host.connections([port]) == []


def test_a_german_windows_netstat_breaks_english_parsing_but_not_the_tool(
    tmp_path: Path, held: tuple[int, socket.socket]
) -> None:
    port, _ = held
    german = start_standin(tmp_path / "de", tls=None, auth="ntlm", extra=("--locale", "de"))
    try:
        out, _, code = _cmd(german, "netstat -ano -p TCP")
        text = out.decode("cp850")
        assert code == 0 and "Aktive Verbindungen" in text and "Lokale Adresse" in text
        ours = [line.split() for line in text.splitlines() if f"{ADDRESS}:{port} " in line]
        assert ["TCP", f"{ADDRESS}:{port}", "0.0.0.0:0", "ABHÖREN", "0"] in ours
        assert any(f[2].startswith(CLIENT + ":") and f[3] == "HERGESTELLT" for f in ours)
        # what validate-lb and decommission used to look for is not there
        assert "ESTABLISHED" not in text and "LISTENING" not in text
        flushed, _, code = _cmd(german, "ipconfig /flushdns")
        assert code == 0 and "Der DNS-Auflösungscache wurde geleert." in flushed.decode("cp850")
        with _host(german) as host:
            assert [(c.local_port, c.remote) for c in host.connections([port])] == [(port, CLIENT)]
    finally:
        german.stop()


def test_an_english_windows_netstat_is_unchanged(
    tmp_path: Path, held: tuple[int, socket.socket]
) -> None:
    port, _ = held
    english = start_standin(tmp_path / "en", tls=None, auth="ntlm")
    try:
        out, _, code = _cmd(english, "netstat.exe -ano")
        text = out.decode("ascii")
        assert code == 0 and "Active Connections" in text
        assert any(
            line.split()[1:4] == [f"{ADDRESS}:{port}", "0.0.0.0:0", "LISTENING"]
            for line in text.splitlines()
            if line.strip().startswith("TCP")
        )
    finally:
        english.stop()


def test_an_unreadable_answer_fails_naming_the_host(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: an answer it cannot read is an error, never "no connections"."""
    with _host(standin) as host:
        real = host._operation

        def translated(operation: str, what: str, **kw: object) -> dict[str, object]:
            result = real(operation, what, **kw)  # type: ignore[arg-type]
            return {"connections": [{**r, "state": "Hergestellt"} for r in result["connections"]]}

        listener = socket.socket()
        listener.bind((ADDRESS, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        client = socket.create_connection((ADDRESS, port))
        try:
            monkeypatch.setattr(host, "_operation", translated)
            with pytest.raises(TransportError, match=r"^win-client: unreadable list of TCP"):
                host.connections([port])
        finally:
            client.close()
            listener.close()
        with pytest.raises(TransportError, match="ports 1-65535"):
            host.connections([0])
