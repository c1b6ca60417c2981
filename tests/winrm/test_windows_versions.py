"""Preflight on a Windows host: the PowerShell and .NET versions, read over WinRM from the
stand-in (which reports what it is told to), and what is said when they are too old."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from winrm_standin import StandIn, host_for, ntlm_protocol, run_in_shell, start_ntlm_standin

from ocsscale.actions.base import Context
from ocsscale.actions.host import HostReachable
from ocsscale.errors import CheckFailed, CommandFailed
from ocsscale.transports.windows_facts import missing_requirements, version_tuple

pytestmark = pytest.mark.timeout(120)


def test_requirements_name_what_is_missing_and_what_to_install() -> None:
    assert missing_requirements("2.0", ["2.0.50727.4927", "3.5.30729.4926"]) == []
    assert missing_requirements("5.1.14409.1005", ["4.8.03761"]) == []
    old_ps = missing_requirements("1.0", ["3.5.30729.01"])
    assert len(old_ps) == 1 and "PowerShell 2.0 or later (found 1.0)" in old_ps[0]
    assert "Windows Management Framework 2.0" in old_ps[0]
    old_net = missing_requirements("2.0", ["2.0.50727.3053", "3.0.4506.2152"])
    assert len(old_net) == 1 and ".NET Framework 3.5 or later" in old_net[0]
    assert "found 2.0.50727.3053, 3.0.4506.2152" in old_net[0]
    assert len(missing_requirements("", [])) == 2
    assert version_tuple("v3.5") == (3, 5) and version_tuple("junk") == ()


@pytest.fixture()
def standin_with(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StandIn]:
    standin = start_ntlm_standin(tmp_path / "s", *request.param)
    yield standin
    standin.stop()


def _reachable(standin: StandIn) -> HostReachable:
    host = host_for(standin, auth="ntlm")
    ctx = Context(pool=None, profile=None, host=lambda name: host)
    return HostReachable(ctx, {"host": "win", "name": "localhost"})


@pytest.mark.parametrize("standin_with", [()], indirect=True)
def test_a_current_host_passes_and_the_versions_are_evidence(standin_with: StandIn) -> None:
    action = _reachable(standin_with)
    evidence = action.apply(None)
    assert evidence["powershell"] == "2.0"
    assert "3.5.30729.4926" in evidence["dotnet"]
    assert evidence["addresses"] == ["127.0.0.1"] and evidence["os"] == "windows"


@pytest.mark.parametrize("standin_with", [("--powershell-version", "1.0")], indirect=True)
def test_powershell_1_is_refused_by_name_before_any_other_script(standin_with: StandIn) -> None:
    action = _reachable(standin_with)
    with pytest.raises(CheckFailed) as caught:
        action.apply(None)
    assert "win-client lacks what the tool's scripts need" in caught.value.message
    assert "PowerShell 2.0 or later (found 1.0)" in caught.value.message
    assert "Windows Management Framework 2.0 (KB968930)" in caught.value.message
    # without the preflight, the first real script would meet PowerShell 1.0's parser,
    # which takes -ExecutionPolicy for the start of a command
    host = host_for(standin_with, auth="ntlm")
    try:
        with pytest.raises(CommandFailed, match="Missing expression after unary operator"):
            host.resolve("localhost")
    finally:
        host.close()


@pytest.mark.parametrize(
    "standin_with", [("--dotnet-versions", "2.0.50727.3053,3.0.4506.2152")], indirect=True
)
def test_dotnet_3_0_is_refused_naming_the_versions_found(standin_with: StandIn) -> None:
    with pytest.raises(CheckFailed, match=r"\.NET Framework 3\.5 or later \(found 2\.0\.50727"):
        _reachable(standin_with).apply(None)


@pytest.mark.parametrize("standin_with", [("--powershell-version", "none")], indirect=True)
def test_a_host_without_powershell_is_told_so(standin_with: StandIn) -> None:
    with pytest.raises(CheckFailed) as caught:
        _reachable(standin_with).apply(None)
    assert "PowerShell is not installed" in caught.value.message
    assert caught.value.hint is not None and "KB968930" in caught.value.hint


@pytest.mark.parametrize("standin_with", [("--powershell-version", "1.0")], indirect=True)
def test_powershell_1_refuses_what_it_does_not_know_as_the_real_one_does(
    standin_with: StandIn,
) -> None:
    """The command line every other script gets carries -ExecutionPolicy, a 2.0 switch:
    PowerShell 1.0 (and so the stand-in) fails to parse it. The version check, which
    must run there, goes without it (test_a_current_host... and the preflight above)."""
    from ocsscale.transports.winrm_scripts import (
        decode_clixml,
        operation_script,
        powershell_command_line,
    )

    versions = operation_script("versions").render()
    proto = ntlm_protocol(standin_with)
    shell = proto.open_shell()
    try:
        for command, expected_code in (
            (powershell_command_line(versions), 1),
            (powershell_command_line(versions, powershell_1=True), 0),
            (powershell_command_line(versions, powershell_1=True) + " -File x.ps1", 1),
        ):
            out, err, code = run_in_shell(proto, shell, command)
            assert code == expected_code, (command[:80], err)
            if expected_code:
                text = decode_clixml(err.decode())
                assert "Missing expression after unary operator '-'." in text, text
            else:
                assert out.startswith(b"OCSSCALE-RESULT "), out
    finally:
        proto.close_shell(shell)
