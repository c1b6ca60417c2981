"""Fixtures: a lab CA with good and faulty certificates, and real pool-member processes.

Each pool member listens on its own 127.x.y.z address, so tests never collide
with each other or with other suites. As root the profile's real ports are
used; otherwise the same ports shifted by 20000 (no privileged ports needed).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocsscale_lab.ca import CertFiles, LabCA, create_ca, issue_server_cert
from ocsscale_lab.poolmember import command_line

POOL_FQDN = "ocspool.contoso.com"
SIP_DOMAIN = "contoso.com"
FE_FQDN = "ocsfe01.contoso.com"
PROFILE_PORTS = (5061, 5060, 135, 443, 444, 5065, 5069, 5071, 5072, 5073, 5074, 8404)
TLS_PORTS = (5061, 443, 444)
SIP_PORTS = (5061, 5060)
HTTPS_PORTS = (443, 444)
PORT_SHIFT = 0 if os.geteuid() == 0 else 20000
START_TIMEOUT = 15.0


def real_port(profile_port: int) -> int:
    return profile_port + PORT_SHIFT


def unique_loopback() -> str:
    """A loopback address no other test is likely to use."""
    return f"127.{random.randint(64, 250)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


@dataclass(frozen=True)
class Certs:
    ca: LabCA
    good: CertFiles
    wrong_san: CertFiles
    wildcard: CertFiles
    expired: CertFiles
    client_only: CertFiles
    sha1: CertFiles  # signed with ECDSA-SHA1, as a Windows 2003/2008 CA signs
    sha1_rsa: CertFiles  # the same with an RSA key, for DES-CBC3-SHA (RSA key exchange)
    foreign_ca: LabCA  # trusted by nobody: its certificates must fail verification


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    directory = tmp_path_factory.mktemp("lab-ca")
    ca = create_ca(directory)
    common = {"pool_fqdn": POOL_FQDN, "fe_fqdn": FE_FQDN, "sip_domain": SIP_DOMAIN}
    return Certs(
        ca=ca,
        good=issue_server_cert(ca, directory, file_stem="ocsfe01", **common),
        wrong_san=issue_server_cert(
            ca, directory, file_stem="wrong-san", sans=["ocsfe02.contoso.com"], **common
        ),
        wildcard=issue_server_cert(
            ca,
            directory,
            file_stem="wildcard",
            subject_cn="*.contoso.com",
            sans=["*.contoso.com"],
            **common,
        ),
        expired=issue_server_cert(ca, directory, file_stem="expired", expired=True, **common),
        client_only=issue_server_cert(
            ca, directory, file_stem="client-only", server_auth=False, **common
        ),
        sha1=issue_server_cert(ca, directory, file_stem="sha1", sha1=True, **common),
        sha1_rsa=issue_server_cert(
            ca, directory, file_stem="sha1-rsa", sha1=True, rsa_key=True, **common
        ),
        foreign_ca=create_ca(tmp_path_factory.mktemp("foreign-ca"), common_name="someone else"),
    )


@dataclass
class PoolMemberProcess:
    name: str
    address: str
    pidfile: Path
    log: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                raise
        return self.process.returncode


def poolmember_command(
    *,
    name: str,
    address: str,
    cert: CertFiles | None,
    pidfile: Path,
    pool_fqdn: str = "localhost",
    extra: Sequence[str] = (),
) -> list[str]:
    def shifted(values: Sequence[int]) -> list[int]:
        return [real_port(port) for port in values]

    command = command_line(
        name=name,
        listen=address,
        ports=shifted(PROFILE_PORTS),
        tls_ports=shifted(TLS_PORTS),
        sip_ports=shifted(SIP_PORTS),
        https_ports=shifted(HTTPS_PORTS),
        pool_fqdn=pool_fqdn,
        pidfile=pidfile,
        cert=cert.cert if cert else None,
        key=cert.key if cert else None,
    )
    return command + list(extra)


def start_process(
    command: list[str], name: str, address: str, pidfile: Path, log: Path
) -> PoolMemberProcess:
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    member = PoolMemberProcess(name, address, pidfile, log, process)
    deadline = time.monotonic() + START_TIMEOUT
    while not pidfile.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            member.stop()
            raise AssertionError(f"pool member {name} did not start:\n{log.read_text()}")
        time.sleep(0.02)
    return member


StartMember = Callable[..., PoolMemberProcess]


@pytest.fixture
def start_member(tmp_path: Path) -> Iterator[StartMember]:
    """Start pool members for one test; every one is stopped afterwards."""
    started: list[PoolMemberProcess] = []

    def start(
        cert: CertFiles | None,
        *,
        name: str = "ocsfe01",
        extra: Sequence[str] = (),
        pool_fqdn: str = "localhost",
        wrap: Sequence[str] = (),
    ) -> PoolMemberProcess:
        address = unique_loopback()
        pidfile = tmp_path / f"{name}-{len(started)}.pid"
        log = tmp_path / f"{name}-{len(started)}.log"
        command = poolmember_command(
            name=name, address=address, cert=cert, pidfile=pidfile, pool_fqdn=pool_fqdn, extra=extra
        )
        member = start_process([*wrap, *command], name, address, pidfile, log)
        started.append(member)
        return member

    yield start
    for member in started:
        member.stop()


@pytest.fixture(scope="module")
def member(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PoolMemberProcess]:
    """One well-configured pool member (good certificate, 444 open), shared by a module."""
    directory = tmp_path_factory.mktemp("member")
    address = unique_loopback()
    pidfile = directory / "ocsfe01.pid"
    command = poolmember_command(name="ocsfe01", address=address, cert=certs.good, pidfile=pidfile)
    running = start_process(command, "ocsfe01", address, pidfile, directory / "ocsfe01.log")
    yield running
    running.stop()
