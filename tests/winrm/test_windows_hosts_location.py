"""The hosts file is where the host's registry says (Tcpip DataBasePath, %SystemRoot%
expanded), not a fixed C:\\Windows path: read over WinRM from the stand-in, which
serves that registry value and resolves through the file it names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from winrm_standin import StandIn, host_for, start_ntlm_standin

from ocsscale.actions.base import Context
from ocsscale.actions.hosts import HostsPin
from ocsscale.errors import TransportError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture()
def moved(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StandIn]:
    standin = start_ntlm_standin(tmp_path / "s", "--hosts-database-path", request.param)
    yield standin
    standin.stop()


@pytest.mark.parametrize("moved", [r"%SystemDrive%\NetConfig"], indirect=True)
def test_a_pin_goes_to_the_hosts_file_the_registry_names(moved: StandIn) -> None:
    host = host_for(moved, auth="ntlm")
    try:
        assert host.hosts_file == r"C:\NetConfig\hosts"
        ctx = Context(pool=None, profile=None, host=lambda name: host)
        pin = HostsPin(ctx, {"host": "win", "name": "ocspool.lab.test", "address": "198.18.0.41"})
        pin.verify(pin.apply(pin.read()))
        # the host's own resolver reads that file: the pin is in force
        assert host.resolve("ocspool.lab.test") == ["198.18.0.41"]
    finally:
        host.close()
    sandbox = moved.sandbox
    assert b"198.18.0.41 ocspool.lab.test" in (sandbox / "NetConfig" / "hosts").read_bytes()
    usual = sandbox / "Windows" / "System32" / "drivers" / "etc" / "hosts"
    assert b"ocspool" not in usual.read_bytes()  # the file in the usual place: untouched


@pytest.mark.parametrize("moved", [r"%SystemRoot%\System32\drivers\etc"], indirect=True)
def test_the_default_value_is_expanded(moved: StandIn) -> None:
    host = host_for(moved, auth="ntlm")
    try:
        assert host.hosts_file == r"C:\Windows\System32\drivers\etc\hosts"
    finally:
        host.close()


@pytest.mark.parametrize("moved", [r"%NoSuchVariable%\etc", r"\\server\share"], indirect=True)
def test_a_path_the_tool_cannot_use_is_refused_without_echoing_it(moved: StandIn) -> None:
    host = host_for(moved, auth="ntlm")
    try:
        with pytest.raises(TransportError, match="DataBasePath is not an absolute local") as caught:
            _ = host.hosts_file
        assert "NoSuchVariable" not in str(caught.value) and "share" not in str(caught.value)
    finally:
        host.close()


def test_the_pool_files_hosts_file_wins_without_asking_the_host() -> None:
    from ocsscale.secrets import Secret
    from ocsscale.transports.winrm import WinRMHost

    # port 1: nothing listens there, so asking the host would fail
    host = WinRMHost(
        "w", "127.0.0.1", port=1, username="u", password=Secret("p", "test"), hosts_file=r"D:\h"
    )
    assert host.hosts_file == r"D:\h"
