"""The contract every transport passes: the `Host` interface (transports/base.py) as the
actions use it, against a real far end each.

- local: `LocalHost`, the admin machine itself.
- ssh: `SSHHost` against a real OpenSSH sshd on loopback (tests/sshd_fixture.py).
- winrm: `WinRMHost`, the real pywinrm client against the WS-Management stand-in
  (tests/winrm/winrm_standin.py), NTLM over HTTP; its `C:\\` is a sandbox directory.

What a transport's own tests cover beyond this (host keys, TLS, chunked uploads,
PowerShell versions...) stays beside them in tests/transports and tests/winrm.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from transports.helpers import echo_listener
from transports.test_ssh_transport import make_host
from winrm_standin import host_for, start_ntlm_standin

from ocsscale.errors import CommandFailed, OcsscaleError, TransportError
from ocsscale.secrets import MASK, Secret
from ocsscale.transports.base import CommandResult, Host, Stream
from ocsscale.transports.commands import PsScript, ShCommand
from ocsscale.transports.connections import Connection
from ocsscale.transports.local import LocalHost
from ocsscale.transports.winrm_scripts import RESULT_PREFIX, operation_script

KINDS = ["local", pytest.param("ssh", marks=pytest.mark.sshd), "winrm"]
SECRET = "contract-s3cret-never-shown"


@dataclass
class Rig:
    """One transport's host, and what its far end looks like from here."""

    host: Host
    os: str
    #: a directory on the host, in the host's own path syntax
    workdir: str
    sep: str
    #: where a path on the host lives on this machine (to check the file itself)
    local: Callable[[str], Path]
    #: a command that succeeds, and how its standard output starts
    ok: ShCommand | PsScript
    ok_stdout: str
    #: a command that fails: its exit status, and a word its standard error holds
    failing: ShCommand | PsScript
    failing_status: int
    failing_stderr: str
    #: a command that carries SECRET as an argument, and what it prints (None: nothing)
    with_secret: ShCommand | PsScript
    with_secret_stdout: str | None
    #: a command for the other OS
    foreign: ShCommand | PsScript
    service: str
    restarted: Callable[[], bool]
    #: connect_tcp gives a stream (WinRM only checks a port, with tcp_check)
    streams: bool

    def path(self, name: str) -> str:
        return self.workdir + self.sep + name


def _posix_rig(host: Host, tmp_path: Path) -> Rig:
    return Rig(
        host=host,
        os="linux",
        workdir=str(tmp_path),
        sep="/",
        local=Path,
        ok=ShCommand.of("printf", "%s", "contract"),
        ok_stdout="contract",
        failing=ShCommand.of("sh", "-c", "echo failing >&2; exit 3"),
        failing_status=3,
        failing_stderr="failing",
        with_secret=ShCommand.of("sh", "-c", 'echo "got $1"; echo "bad $1" >&2', "sh", _secret()),
        with_secret_stdout=f"got {MASK}\n",
        foreign=PsScript("Get-Date"),
        service="contract-service",
        restarted=lambda: (tmp_path / "contract-service").exists(),
        streams=True,
    )


def _secret() -> Secret:
    return Secret(SECRET, "env:CONTRACT_SECRET")


def _services(tmp_path: Path) -> dict[str, str]:
    """A restart that leaves a file behind, and a status check that finds it."""
    return {
        "service_command": f"touch {tmp_path}/{{service}}",
        "status_command": f"test -e {tmp_path}/{{service}}",
    }


@pytest.fixture(params=KINDS)
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    if request.param == "local":
        yield _posix_rig(LocalHost("contract-local", **_services(tmp_path)), tmp_path)
        return
    if request.param == "ssh":
        host = make_host(request.getfixturevalue("sshd_server"), tmp_path, **_services(tmp_path))
        try:
            yield _posix_rig(host, tmp_path)
        finally:
            host.close()
        return
    standin = start_ntlm_standin(tmp_path / "winrm")
    host = host_for(standin, auth="ntlm")
    sandbox = standin.sandbox
    try:
        yield Rig(
            host=host,
            os="windows",
            workdir=r"C:\Windows\Temp",
            sep="\\",
            local=lambda path: sandbox.joinpath(*path.split("\\")[1:]),
            ok=operation_script("versions"),
            ok_stdout=RESULT_PREFIX,
            # the stand-in runs only the transport's own scripts: any other ends as
            # PowerShell ends a failed script, exit status 1 with the reason on stderr
            failing=PsScript("Write-Error failing"),
            failing_status=1,
            failing_stderr="not one of the WinRM transport's templates",
            with_secret=PsScript("Write-Output $Token", {"Token": _secret()}),
            with_secret_stdout=None,  # not one of the transport's scripts: not run
            foreign=ShCommand.of("hostname"),
            service="WinRM",
            restarted=lambda: "start WinRM" in (sandbox / "services.log").read_text(),
            streams=False,
        )
    finally:
        host.close()
        standin.stop()


def test_the_host_says_its_name_and_os(rig: Rig) -> None:
    def takes_host(h: Host) -> Host:
        return h

    host = takes_host(rig.host)
    assert isinstance(host.name, str) and host.name
    assert host.os == rig.os


def test_a_command_gives_its_exit_status_and_output(rig: Rig) -> None:
    result = rig.host.run(rig.ok)
    assert isinstance(result, CommandResult)
    assert (result.exit_status, result.ok) == (0, True)
    assert result.stdout.startswith(rig.ok_stdout)

    failed = rig.host.run(rig.failing, check=False)
    assert (failed.exit_status, failed.ok) == (rig.failing_status, False)
    assert rig.failing_stderr in failed.stderr
    with pytest.raises(CommandFailed) as caught:
        rig.host.run(rig.failing)  # check=True, the default
    assert caught.value.exit_status == rig.failing_status
    assert rig.host.name in str(caught.value)


def test_a_secret_never_shows_in_a_result_or_an_error(rig: Rig) -> None:
    result = rig.host.run(rig.with_secret, check=False)
    for text in (result.stdout, result.stderr, result.command):
        assert SECRET not in text
    if rig.with_secret_stdout is not None:
        assert result.stdout == rig.with_secret_stdout  # it was there, masked
    try:
        rig.host.run(rig.with_secret)
    except CommandFailed as exc:
        assert SECRET not in str(exc)


def test_a_command_for_the_other_os_is_refused(rig: Rig) -> None:
    with pytest.raises(TransportError):
        rig.host.run(rig.foreign)


def test_a_file_is_written_in_place_after_a_backup_and_read_back_exactly(rig: Rig) -> None:
    host, path = rig.host, rig.path("contract.txt")
    first, second = b"one\r\ntwo\r\n", b"\x00three\xff\n"
    assert host.write_file(path, first, backup_suffix=".contract-bak") is None  # nothing to keep
    assert host.read_file(path) == first
    inode = rig.local(path).stat().st_ino

    backup = host.write_file(path, second, backup_suffix=".contract-bak")
    assert backup == path + ".contract-bak"
    assert host.read_file(path) == second
    assert rig.local(path).stat().st_ino == inode  # truncated and rewritten, not replaced
    assert host.read_file(backup) == first

    assert host.remove_file(backup) is True
    assert not rig.local(backup).exists() and host.read_file(path) == second
    assert host.remove_file(backup) is False  # safe to repeat
    with pytest.raises(TransportError):
        host.read_file(rig.path("missing.txt"))


def test_names_resolve_as_the_host_sees_them(rig: Rig) -> None:
    # no DNS server is asked: localhost is the host's own
    assert "127.0.0.1" in rig.host.resolve("localhost")
    rig.host.flush_dns()


def test_tcp_from_the_host_and_its_established_connections(rig: Rig) -> None:
    with echo_listener() as port:
        if rig.streams:
            stream = rig.host.connect_tcp("127.0.0.1", port)
            assert isinstance(stream, Stream)
            try:
                stream.sendall(b"hi")
                assert stream.recv(100) == b"echo:hi"
            finally:
                stream.close()
        else:
            with pytest.raises(TransportError):
                rig.host.connect_tcp("127.0.0.1", port)

    # the far end is this machine: a loopback connection made here is one of its own
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            accepted, _ = server.accept()
            with accepted:
                expected = Connection("127.0.0.1", port, "127.0.0.1", client.getsockname()[1])
                assert expected in rig.host.connections([port])


def test_a_restarted_service_runs_again(rig: Rig) -> None:
    restarted = rig.host.restart_services([rig.service])
    assert restarted is None or [s["name"] for s in restarted] == [rig.service]
    assert rig.restarted()


def test_a_closed_host_can_be_closed_again(rig: Rig) -> None:
    rig.host.run(rig.ok)
    rig.host.close()
    rig.host.close()


def test_every_failure_is_an_ocsscale_error(rig: Rig) -> None:
    """What an action catches: the transport's library errors never get through."""
    with pytest.raises(OcsscaleError):
        rig.host.read_file(rig.path("no-such-dir") + rig.sep + "file")
    with pytest.raises(OcsscaleError):
        rig.host.write_file(rig.path("no-such-dir") + rig.sep + "file", b"x")
