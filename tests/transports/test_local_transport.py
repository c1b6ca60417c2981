"""LocalHost: the admin machine through the same interface."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocsscale.errors import CommandFailed, StepFailed, TransportError
from ocsscale.secrets import MASK, Secret
from ocsscale.transports.base import Host, Stream
from ocsscale.transports.commands import PsScript, ShCommand
from ocsscale.transports.local import LocalHost

from .helpers import closed_port, echo_listener


def test_implements_the_host_interface() -> None:
    def takes_host(h: Host) -> str:
        return h.name

    assert takes_host(LocalHost()) == "admin"


def test_run_masks_secrets_and_reports_failures() -> None:
    host = LocalHost("here")
    secret = Secret("s3cret-value", "env:X")
    cmd = ShCommand.of("sh", "-c", 'echo "a $1"; echo "b $1" >&2; exit 2', "sh", secret)
    result = host.run(cmd, check=False)
    assert (result.exit_status, result.stdout, result.stderr) == (2, f"a {MASK}\n", f"b {MASK}\n")
    with pytest.raises(CommandFailed) as info:
        host.run(cmd)
    assert "s3cret-value" not in str(info.value) and "here" in str(info.value)
    with pytest.raises(TransportError, match="did not finish within 0.5 s"):
        host.run(ShCommand.of("sleep", "30"), timeout=0.5)
    with pytest.raises(TransportError, match="cannot run"):
        host.run(ShCommand.of("/nonexistent/tool"))
    with pytest.raises(TransportError, match="PowerShell"):
        host.run(PsScript("Get-Date"))


def test_files_are_written_in_place_after_a_backup(tmp_path: Path) -> None:
    host = LocalHost()
    path = tmp_path / "hosts"
    path.write_bytes(b"one\r\ntwo\r\n")
    os.chmod(path, 0o604)
    inode = path.stat().st_ino
    assert host.write_file(str(path), b"3", backup_suffix=".bak") == f"{path}.bak"
    assert host.read_file(str(path)) == b"3" and path.stat().st_ino == inode
    assert (tmp_path / "hosts.bak").read_bytes() == b"one\r\ntwo\r\n"
    assert (tmp_path / "hosts.bak").stat().st_mode & 0o777 == 0o604
    assert host.write_file(str(tmp_path / "new"), b"n", backup_suffix=".bak") is None
    assert host.remove_file(str(tmp_path / "hosts.bak")) is True
    assert not (tmp_path / "hosts.bak").exists() and path.read_bytes() == b"3"
    assert host.remove_file(str(tmp_path / "hosts.bak")) is False  # safe to repeat
    with pytest.raises(TransportError, match="cannot read"):
        host.read_file(str(tmp_path / "missing"))
    with pytest.raises(TransportError, match="cannot write"):
        host.write_file(str(tmp_path / "no-dir" / "f"), b"x")


def test_resolve_connect_flush_and_restart(tmp_path: Path) -> None:
    host = LocalHost(
        service_command=f"touch {tmp_path}/{{service}}",
        status_command=f"test -e {tmp_path}/{{service}}",
    )
    assert "127.0.0.1" in host.resolve("localhost")
    assert host.resolve("no-such-name.invalid") == []
    with echo_listener() as port:
        stream = host.connect_tcp("127.0.0.1", port)
        assert isinstance(stream, Stream)
        with stream:  # type: ignore[attr-defined]
            stream.sendall(b"hi")
            assert stream.recv(100) == b"echo:hi"
    with pytest.raises(TransportError, match="TCP connection from admin"):
        host.connect_tcp("127.0.0.1", closed_port())
    host.flush_dns()
    assert host.last_flush
    host.restart_services(["a-service"])
    assert (tmp_path / "a-service").exists()
    broken = LocalHost(service_command="true", status_command="false")
    with pytest.raises(StepFailed):
        broken.restart_services(["x"], wait=0)
