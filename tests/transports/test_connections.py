"""Connection tables read strictly, the same in every language (transports/connections.py):
`ss`'s fixed layout on Linux (parsed here, and run for real by the local transport and
over SSH against the sshd fixture), .NET's TcpState names on Windows (tests/winrm)."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsscale.errors import CommandFailed, TransportError
from ocsscale.transports.connections import (
    Connection,
    check_ports,
    parse_dotnet,
    parse_ss,
    ss_command,
)
from ocsscale.transports.local import LocalHost

SS = (
    "0      0               198.18.0.41:5061          198.18.0.40:55504\n"
    "0      0      [::ffff:198.18.0.41]:5060 [::ffff:198.18.0.40]:60258\n"
    "0      0      [fe80::1%eth0]:5061 [fe80::2%eth0]:40000\n"
)


def test_ss_rows_are_read_with_mapped_and_scoped_addresses() -> None:
    assert parse_ss("fe01", SS, (5061, 5060)) == [
        Connection("198.18.0.41", 5061, "198.18.0.40", 55504),
        Connection("198.18.0.41", 5060, "198.18.0.40", 60258),
        Connection("fe80::1", 5061, "fe80::2", 40000),
    ]
    assert parse_ss("fe01", "", (5061,)) == []
    assert ss_command([5061, 5060]).argv == (
        "ss", "-Htn", "state", "established",
        "(", "sport", "=", ":5061", "or", "sport", "=", ":5060", ")",
    )  # fmt: skip


@pytest.mark.parametrize(
    "stdout",
    [
        # a state column (an ss that ignores the filter), a header, a localized word,
        # an endpoint without a port, a port not asked for, digits that are not ASCII
        "ESTAB 0 0 198.18.0.41:5061 198.18.0.40:55504\n",
        "Recv-Q Send-Q Local Address:Port Peer Address:Port\n",
        "0 0 198.18.0.41:5061 198.18.0.40:55504 HERGESTELLT\n",
        "0 0 198.18.0.41 198.18.0.40:55504\n",
        "0 0 198.18.0.41:5062 198.18.0.40:55504\n",
        "\u0660 0 198.18.0.41:5061 198.18.0.40:55504\n",
        "0 0 198.18.0.999:5061 198.18.0.40:55504\n",
    ],
)
def test_anything_ss_printed_that_is_not_read_whole_fails_naming_the_host(stdout: str) -> None:
    with pytest.raises(TransportError, match=r"^fe01: unreadable list of TCP connections \(ss\)"):
        parse_ss("fe01", "0 0 198.18.0.41:5061 198.18.0.40:1\n" + stdout, (5061,))


def _row(**changes: object) -> dict[str, object]:
    row = {
        "state": "Established",
        "local": "198.18.0.41",
        "local_port": 5061,
        "remote": "::ffff:198.18.0.40",
        "remote_port": 50000,
    }
    return {**row, **changes}


def test_dotnet_rows_are_read_by_tcpstate_name() -> None:
    result = {"connections": [_row(), _row(state="TimeWait", remote_port=50001)]}
    assert parse_dotnet("fe00", result, (5061,)) == [
        Connection("198.18.0.41", 5061, "198.18.0.40", 50000)
    ]
    assert parse_dotnet("fe00", {"connections": _row()}, (5061,))  # one row as an object
    assert parse_dotnet("fe00", {"connections": []}, (5061,)) == []


@pytest.mark.parametrize(
    "result",
    [
        {"connections": [_row(state="HERGESTELLT")]},
        {"connections": [_row(state="ESTABLISHED")]},
        {"connections": [_row(state=5)]},
        {"connections": [_row(local="fe01")]},
        {"connections": [_row(local_port="5061")]},
        {"connections": [_row(remote_port=True)]},
        {"connections": [_row(local_port=5062)]},
        {"connections": ["TCP 198.18.0.41:5061 198.18.0.40:50000 HERGESTELLT 0"]},
        {"connections": "none"},
        {"connections": [_row()] * 20001},
    ],
)
def test_a_dotnet_answer_not_read_whole_fails_naming_the_host(result: dict) -> None:
    with pytest.raises(TransportError, match=r"^fe00: unreadable list of TCP connections"):
        parse_dotnet("fe00", result, (5061,))


@pytest.mark.parametrize("ports", [[], [0], [65536], [True], ["5061"], list(range(1, 70))])
def test_ports_are_checked(ports: list) -> None:
    with pytest.raises(TransportError, match="^h: connections are read on"):
        check_ports("h", ports)


@pytest.fixture()
def held() -> Iterator[tuple[int, socket.socket]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(2)
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    yield port, client
    for s in (client, accepted, listener):
        s.close()


needs_ss = pytest.mark.skipif(shutil.which("ss") is None, reason="iproute2's ss is not installed")


@needs_ss
def test_the_local_transport_reads_real_connections(held: tuple[int, socket.socket]) -> None:
    port, client = held
    host = LocalHost("admin")
    found = host.connections([port])
    assert found == [Connection("127.0.0.1", port, "127.0.0.1", client.getsockname()[1])]
    client.close()
    assert host.connections([port]) == []  # the listener and a closing socket are not


def test_ss_failing_is_an_error_naming_the_host(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fake = tmp_path / "ss"
    fake.write_text("#!/bin/sh\necho 'ss: option requires an argument' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(CommandFailed, match="admin"):
        LocalHost("admin").connections([5061])
