"""SSHHost against a real OpenSSH sshd on loopback (see tests/sshd_fixture.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsscale.errors import CommandFailed, HostKeyError, StepFailed, TransportError
from ocsscale.secrets import MASK, Secret
from ocsscale.transports.base import Host, Stream
from ocsscale.transports.commands import PsScript, ShCommand
from ocsscale.transports.ssh import SSHHost
from ocsscale_lab import services

from .helpers import closed_port, echo_listener

pytestmark = pytest.mark.sshd

SECRET_VALUE = "hunter2-do-not-print"


def make_host(server, tmp_path: Path, **overrides) -> SSHHost:  # type: ignore[no-untyped-def]
    known = tmp_path / "known_hosts"
    if not known.exists():
        shutil.copy(server.known_hosts, known)
    args = {
        "port": server.port,
        "username": server.username,
        "key_file": server.client_key,
        "known_hosts": known,
        **overrides,
    }
    return SSHHost("testhost", server.address, **args)


@pytest.fixture
def host(sshd_server, tmp_path: Path) -> Iterator[SSHHost]:  # type: ignore[no-untyped-def]
    h = make_host(sshd_server, tmp_path)
    yield h
    h.close()


def test_implements_the_host_interface(host: SSHHost) -> None:
    def takes_host(h: Host) -> str:
        return h.name

    assert takes_host(host) == "testhost"
    assert host.os == "linux"


def test_run_returns_status_and_output(host: SSHHost) -> None:
    result = host.run(ShCommand.of("sh", "-c", "echo out; echo err >&2; exit 3"), check=False)
    assert (result.exit_status, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok
    with pytest.raises(CommandFailed) as info:
        host.run(ShCommand.of("sh", "-c", "echo broken >&2; exit 5"))
    assert info.value.exit_status == 5 and "broken" in str(info.value)
    assert "testhost" in str(info.value)


def test_arguments_are_never_parsed_by_the_remote_shell(host: SSHHost, tmp_path: Path) -> None:
    hostile = f"x'; touch {tmp_path}/pwned; echo '$(id)"
    result = host.run(ShCommand.of("printf", "%s", hostile))
    assert result.stdout == hostile
    assert not (tmp_path / "pwned").exists()


def test_secrets_are_masked_in_output_and_errors(host: SSHHost) -> None:
    secret = Secret(SECRET_VALUE, "env:TEST_SECRET")
    cmd = ShCommand.of("sh", "-c", 'echo "got $1"; echo "bad $1" >&2; exit 4', "sh", secret)
    result = host.run(cmd, check=False)
    assert result.stdout == f"got {MASK}\n" and result.stderr == f"bad {MASK}\n"
    assert SECRET_VALUE not in result.command
    with pytest.raises(CommandFailed) as info:
        host.run(cmd)
    assert SECRET_VALUE not in str(info.value) and MASK in str(info.value)


def test_a_command_past_its_timeout_is_abandoned(host: SSHHost) -> None:
    with pytest.raises(TransportError, match="did not finish within 1 s"):
        host.run(ShCommand.of("sleep", "30"), timeout=1)
    assert host.run(ShCommand.of("true")).ok  # the connection is still usable


def test_powershell_is_refused_on_linux(host: SSHHost) -> None:
    with pytest.raises(TransportError, match="PowerShell"):
        host.run(PsScript("Get-Date"))


def test_large_output_is_read_whole(host: SSHHost) -> None:
    result = host.run(ShCommand.of("sh", "-c", "seq 1 200000; seq 1 50000 >&2"))
    assert result.stdout.count("\n") == 200000 and result.stderr.count("\n") == 50000


def test_read_file_gives_exact_bytes(host: SSHHost, tmp_path: Path) -> None:
    data = bytes(range(256)) * 2000 + b"\r\n\x00end"
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert host.read_file(str(path)) == data
    with pytest.raises(TransportError, match="cannot read"):
        host.read_file(str(tmp_path / "missing"))


def _write_in_place_checks(host: SSHHost, tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(b"127.0.0.1 localhost\r\nlong line that will be cut\r\n")
    os.chmod(path, 0o640)
    inode = path.stat().st_ino
    backup = host.write_file(str(path), b"short\n", backup_suffix=".bak")
    assert path.read_bytes() == b"short\n"
    assert path.stat().st_ino == inode, "the file was replaced, not written in place"
    assert backup == f"{path}.bak"
    assert Path(backup).read_bytes() == b"127.0.0.1 localhost\r\nlong line that will be cut\r\n"
    assert Path(backup).stat().st_mode & 0o777 == 0o640  # cp -p
    assert host.remove_file(backup) is True and not Path(backup).exists()
    assert host.remove_file(backup) is False  # safe to repeat
    assert path.read_bytes() == b"short\n"
    longer = b"x" * 100_000
    assert host.write_file(str(path), longer) is None
    assert path.read_bytes() == longer and path.stat().st_ino == inode
    fresh = tmp_path / "fresh"
    assert host.write_file(str(fresh), b"new", backup_suffix=".bak") is None
    assert fresh.read_bytes() == b"new" and not Path(f"{fresh}.bak").exists()


def test_write_file_in_place_with_backup(host: SSHHost, tmp_path: Path) -> None:
    _write_in_place_checks(host, tmp_path)


def test_files_without_sftp_go_through_cat(sshd_server_without_sftp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with make_host(sshd_server_without_sftp, tmp_path) as h:
        _write_in_place_checks(h, tmp_path)
        data = bytes(range(256)) * 100
        (tmp_path / "blob").write_bytes(data)
        assert h.read_file(str(tmp_path / "blob")) == data
        with pytest.raises(CommandFailed):
            h.read_file(str(tmp_path / "missing"))


def test_resolve_as_the_host_sees_it(host: SSHHost) -> None:
    assert "127.0.0.1" in host.resolve("localhost")
    assert host.resolve("no-such-name.invalid") == []


def test_connect_tcp_opens_the_connection_from_the_host(host: SSHHost) -> None:
    with echo_listener() as port:
        stream = host.connect_tcp("127.0.0.1", port, timeout=10)
        assert isinstance(stream, Stream)
        try:
            stream.sendall(b"ping")
            assert stream.recv(100) == b"echo:ping"
        finally:
            stream.close()
    with pytest.raises(TransportError, match=r"TCP connection from testhost to 127\.0\.0\.1"):
        host.connect_tcp("127.0.0.1", closed_port(), timeout=10)


def test_restart_services_through_the_service_command(sshd_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marks = tmp_path / "marks"
    marks.mkdir()
    with make_host(
        sshd_server,
        tmp_path,
        service_command=f"echo restarted > {marks}/{{service}}",
        status_command=f"grep -q restarted {marks}/{{service}}",
    ) as h:
        h.restart_services(["sipsvc", "odd name; touch pwned"])
        assert (marks / "sipsvc").read_text() == "restarted\n"
        assert (marks / "odd name; touch pwned").exists()
        assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    with (
        make_host(
            sshd_server,
            tmp_path,
            service_command="true",
            status_command="test -e /nonexistent/{service}",
        ) as h,
        pytest.raises(StepFailed, match="service web is not running"),
    ):
        h.restart_services(["web"], wait=0)
    with (
        make_host(sshd_server, tmp_path, service_command="exit 7") as h,
        pytest.raises(CommandFailed),
    ):
        h.restart_services(["web"])


def _lab_service_manager(tmp_path: Path) -> str:
    """The lab's service manager (ocsscale_lab.svc) over a lab directory of one host with
    two services, as the service_control a pool file names; nothing is started."""
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    (lab_dir / "state.json").write_text("{}")
    for name, on_demand in (("ocs-poolmember", False), ("engine", True)):
        argv = ("/nonexistent/" + name,)
        services.define(lab_dir, services.Service("h1", name, "ns", argv, (), on_demand=on_demand))
    repo = Path(__file__).resolve().parents[2]
    return (
        f"PYTHONPATH={repo} {sys.executable} -m ocsscale_lab.svc --lab-dir {lab_dir} "
        "--host h1 {action} {service}"
    )


def test_service_states_and_start_modes_through_the_lab_service_manager(
    sshd_server,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    control = _lab_service_manager(tmp_path)
    with make_host(sshd_server, tmp_path) as h:
        h.service_control = control  # as the factory sets it from the pool file
        assert h.service_states(["ocs-poolmember", "engine"]) == {
            "ocs-poolmember": {"active": "inactive", "start_mode": "enabled"},
            "engine": {"active": "inactive", "start_mode": "disabled"},  # started by a run
        }
        h.control_services("disable", ["ocs-poolmember"])
        h.control_services("enable", ["engine"])
    # kept by the lab, not by the connection or the process that set it
    with make_host(sshd_server, tmp_path) as h:
        h.service_control = control
        states = h.service_states(["ocs-poolmember", "engine"])
        assert states["ocs-poolmember"]["start_mode"] == "disabled"
        assert states["engine"]["start_mode"] == "enabled"


@pytest.mark.parametrize(
    "answer",
    [
        "echo enabled; exit 1",  # the word and the exit status disagree
        "echo 'Failed to get unit file state' >&2; exit 1",  # no word at all
        "echo aktiviert",  # not systemctl's word
        "printf 'enabled\\nenabled\\n'",  # two answers for one service
    ],
)
def test_a_service_state_not_understood_fails_closed(
    sshd_server, tmp_path: Path, answer: str
) -> None:  # type: ignore[no-untyped-def]
    control = f"if [ {{action}} = is-active ]; then echo active; else {answer}; fi"
    with (
        make_host(sshd_server, tmp_path) as h,
        pytest.raises(StepFailed, match="unreadable answer from `is-enabled` for web"),
    ):
        h.service_control = control
        h.service_states(["web"])


def test_flush_dns_is_best_effort_and_says_what_it_did(host: SSHHost) -> None:
    host.flush_dns()
    assert host.last_flush
    assert all(note.split(":")[0] in {"ok", "failed", "none"} for note in host.last_flush)


def test_one_connection_is_reused_and_reopened_after_close(sshd_server, host: SSHHost) -> None:  # type: ignore[no-untyped-def]
    def logins() -> int:
        return sshd_server.log.read_text().count("Accepted publickey")

    before = logins()
    for _ in range(3):
        host.run(ShCommand.of("true"))
    host.read_file("/etc/hostname" if Path("/etc/hostname").exists() else "/etc/hosts")
    assert logins() == before + 1
    host.close()
    assert host.run(ShCommand.of("echo", "again")).stdout == "again\n"
    assert logins() == before + 2


def test_the_connection_sends_without_delay(host: SSHHost) -> None:
    """Without TCP_NODELAY, each command waited for the peer's delayed ACK (40 ms)."""
    host.run(ShCommand.of("true"))
    sock = host._transport().sock
    assert isinstance(sock, socket.socket)
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def _other_host_key(tmp_path: Path) -> str:
    key = tmp_path / "impostor"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True, capture_output=True
    )
    return " ".join(Path(f"{key}.pub").read_text().split()[:2])


def test_a_changed_host_key_is_refused(sshd_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    known = sshd_server.fresh_known_hosts(
        tmp_path / "known_hosts",
        f"[{sshd_server.address}]:{sshd_server.port} {_other_host_key(tmp_path)}\n",
    )
    for trust in (False, True):  # trusting unknown keys never covers a changed one
        with pytest.raises(HostKeyError, match="does not match") as info:
            make_host(sshd_server, tmp_path, known_hosts=known, trust_unknown_host_keys=trust).run(
                ShCommand.of("true")
            )
        assert "SHA256:" in str(info.value) and "ssh-keygen -R" in (info.value.hint or "")


def test_an_unknown_host_key_is_refused(sshd_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    known = tmp_path / "empty" / "known_hosts"
    with pytest.raises(HostKeyError, match="is not in") as info:
        make_host(sshd_server, tmp_path, known_hosts=known).run(ShCommand.of("true"))
    assert "SHA256:" in str(info.value) and "trust_unknown_host_keys" in (info.value.hint or "")
    assert not known.exists()


def test_an_unknown_host_key_is_recorded_when_trusted(sshd_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    known = tmp_path / "new" / "known_hosts"
    with make_host(sshd_server, tmp_path, known_hosts=known, trust_unknown_host_keys=True) as h:
        assert h.run(ShCommand.of("true")).ok
    line = known.read_text()
    assert line.startswith(f"[{sshd_server.address}]:{sshd_server.port} ")
    assert sshd_server.host_public_key in line
    assert known.stat().st_mode & 0o777 == 0o600
    with make_host(sshd_server, tmp_path, known_hosts=known) as h:  # now checked, not trusted
        assert h.run(ShCommand.of("true")).ok


def test_encrypted_key_with_its_passphrase(sshd_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sshd_fixture import PASSPHRASE

    key = sshd_server.encrypted_client_key
    with make_host(
        sshd_server, tmp_path, key_file=key, passphrase=Secret(PASSPHRASE, "env:PASSPHRASE")
    ) as h:
        assert h.run(ShCommand.of("true")).ok
    with pytest.raises(TransportError, match="encrypted") as info:
        make_host(sshd_server, tmp_path, key_file=key).run(ShCommand.of("true"))
    wrong = Secret(SECRET_VALUE, "env:WRONG")
    with pytest.raises(TransportError) as info:
        make_host(sshd_server, tmp_path, key_file=key, passphrase=wrong).run(ShCommand.of("true"))
    assert SECRET_VALUE not in str(info.value) and SECRET_VALUE not in repr(info.value.args)


def test_refused_login_names_the_host_and_never_the_password(sshd_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    password = Secret(SECRET_VALUE, "env:SSH_PASSWORD")
    with pytest.raises(TransportError, match="authentication as .* with password failed") as info:
        make_host(sshd_server, tmp_path, key_file=None, password=password).run(ShCommand.of("true"))
    text = f"{info.value} {info.value.hint} {info.value.args!r}"
    assert "testhost" in text and SECRET_VALUE not in text
    stranger = tmp_path / "stranger"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", stranger],
        check=True,
        capture_output=True,
    )
    with pytest.raises(TransportError, match="authentication"):
        make_host(sshd_server, tmp_path, key_file=stranger).run(ShCommand.of("true"))


def test_an_unreachable_host_is_a_transport_error(sshd_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = closed_port()
    with pytest.raises(TransportError, match="testhost: cannot connect") as info:
        make_host(sshd_server, tmp_path, port=port, connect_timeout=5).run(ShCommand.of("true"))
    assert str(info.value).endswith(f"@127.0.0.1:{port}: Connection refused"), str(info.value)


def test_no_credentials_is_refused_up_front() -> None:
    with pytest.raises(TransportError, match="key_file or a password"):
        SSHHost("x", "127.0.0.1", username="root")


def test_connections_are_read_with_ss_over_ssh(host: SSHHost) -> None:
    """The sshd fixture is this machine: a connection held here is in its table."""
    if shutil.which("ss") is None:
        pytest.skip("iproute2's ss is not installed")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(2)
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    try:
        found = host.connections([port])
        assert [(c.local, c.local_port, c.remote, c.remote_port) for c in found] == [
            ("127.0.0.1", port, "127.0.0.1", client.getsockname()[1])
        ]
    finally:
        for s in (client, accepted, listener):
            s.close()
