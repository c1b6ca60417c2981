"""A real OpenSSH sshd on 127.0.0.1 for the test suite.

Own host key and client keys in a temp directory, key-only login as the user
running the tests, sftp through internal-sftp, TCP forwarding on (for
connect_tcp). The daemon's pid is tracked and it is stopped at teardown.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
PASSPHRASE = "correct horse battery staple"


@dataclass(frozen=True)
class SshdServer:
    address: str
    port: int
    username: str
    client_key: Path  # unencrypted
    encrypted_client_key: Path  # protected by PASSPHRASE
    known_hosts: Path  # holds this server's host key
    host_public_key: str  # "ssh-ed25519 AAAA..."
    workdir: Path
    log: Path

    def fresh_known_hosts(self, path: Path, line: str | None = None) -> Path:
        """A known_hosts at `path` with `line` (default: the right key)."""
        if line is None:
            line = f"[{self.address}]:{self.port} {self.host_public_key}\n"
        path.write_text(line)
        return path


def _free_port(address: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _keygen(path: Path, passphrase: str = "") -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "ocsscale-test", "-f", path],
        check=True,
        capture_output=True,
    )


def _wait_for_banner(
    proc: subprocess.Popen[bytes], port: int, log: Path, address: str = "127.0.0.1"
) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection((address, port), timeout=2) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"sshd did not answer on {address}:{port}:\n{log.read_text()}")


def start_sshd(
    workdir: Path, *, sftp: bool = True, address: str = "127.0.0.1"
) -> tuple[SshdServer, subprocess.Popen[bytes]]:
    """An sshd on `address` (loopback: 127.0.0.0/8)."""
    for tool in (SSHD, shutil.which("ssh-keygen")):
        if tool is None or not os.path.exists(tool):
            pytest.skip("OpenSSH server is not installed (apt-get install openssh-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        # sshd running as root insists on its privilege-separation directory,
        # which the Debian package otherwise creates at boot
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    host_key = workdir / "ssh_host_ed25519_key"
    client_key = workdir / "client_ed25519"
    encrypted_key = workdir / "client_encrypted_ed25519"
    _keygen(host_key)
    _keygen(client_key)
    _keygen(encrypted_key, PASSPHRASE)
    authorized = workdir / "authorized_keys"
    authorized.write_text(
        Path(f"{client_key}.pub").read_text() + Path(f"{encrypted_key}.pub").read_text()
    )
    port = _free_port(address)
    config = workdir / "sshd_config"
    lines = [
        f"Port {port}",
        f"ListenAddress {address}",
        f"HostKey {host_key}",
        f"PidFile {workdir / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        "UsePAM no",
        "AllowTcpForwarding yes",
        "MaxSessions 64",
        "LogLevel VERBOSE",
    ]
    if sftp:
        lines.append("Subsystem sftp internal-sftp")
    config.write_text("\n".join(lines) + "\n")
    log = workdir / "sshd.log"
    with open(log, "wb") as log_f:
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=log_f, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_banner(proc, port, log, address)
    except BaseException:
        stop_sshd(proc)
        raise
    host_public = " ".join(Path(f"{host_key}.pub").read_text().split()[:2])
    known_hosts = workdir / "known_hosts"
    server = SshdServer(
        address=address,
        port=port,
        username=getpass.getuser(),
        client_key=client_key,
        encrypted_client_key=encrypted_key,
        known_hosts=known_hosts,
        host_public_key=host_public,
        workdir=workdir,
        log=log,
    )
    server.fresh_known_hosts(known_hosts)
    return server, proc


def stop_sshd(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    """One sshd for the whole session (tests share it; each gets its own files)."""
    server, proc = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        stop_sshd(proc)


@pytest.fixture(scope="session")
def sshd_server_without_sftp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    """An sshd with no sftp subsystem: file transfer must fall back to `cat`."""
    server, proc = start_sshd(tmp_path_factory.mktemp("sshd-nosftp"), sftp=False)
    try:
        yield server
    finally:
        stop_sshd(proc)
