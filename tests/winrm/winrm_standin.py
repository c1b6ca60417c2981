"""Test helpers: a small CA, the WinRM stand-in as a real process, a tiny DNS server."""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.rcode
import dns.rrset
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from winrm.protocol import Protocol

from ocsscale.secrets import Secret
from ocsscale.transports.winrm import WinRMHost
from ocsscale_lab.ca import create_ca, write_cert, write_key

REPO = Path(__file__).resolve().parents[2]
DOMAIN, USER, PASSWORD = "LAB", "admin", "Corr3ct-Horse!pw"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    rogue_cert: Path  # self-signed, same names: must be refused
    rogue_key: Path


def make_pki(directory: Path) -> Pki:
    """The lab's CA with a server certificate for 127.0.0.1 (the lab CA names DNS
    names only, and the stand-in is dialled by address), and a self-signed rogue."""
    ca = create_ca(directory, common_name="ocsscale test CA", valid_days=1)
    now = datetime.datetime.now(datetime.UTC)
    paths = {}
    for label, issuer in (("server", ca), ("rogue", None)):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name("localhost"))
            .issuer_name(issuer.cert.subject if issuer else _name("localhost"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        )
        cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
        paths[label] = (directory / f"{label}.pem", directory / f"{label}.key")
        write_cert(paths[label][0], cert)
        write_key(paths[label][1], key)
    return Pki(ca.files.cert, *paths["server"], *paths["rogue"])


@dataclass
class StandIn:
    process: subprocess.Popen[str]
    url: str
    port: int
    sandbox: Path
    pidfile: Path
    stderr_path: Path

    @property
    def hosts_file(self) -> Path:
        return self.sandbox / "Windows" / "System32" / "drivers" / "etc" / "hosts"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_standin(
    workdir: Path,
    *,
    tls: tuple[Path, Path] | None,
    auth: str = "basic,ntlm",
    extra: tuple[str, ...] = (),
    listen: str = "127.0.0.1",
) -> StandIn:
    workdir.mkdir(parents=True, exist_ok=True)
    users = workdir / "users"
    users.write_text(f"{DOMAIN}:{USER}:{PASSWORD}\n")
    users.chmod(0o600)
    sandbox, pidfile, stderr_path = workdir / "sandbox", workdir / "pid", workdir / "stderr"
    argv = [
        sys.executable,
        "-m",
        "ocsscale_lab.winrm_host",
        "--listen",
        listen,
        "--port",
        "0",
        "--users-file",
        str(users),
        "--sandbox",
        str(sandbox),
        "--pidfile",
        str(pidfile),
        "--auth",
        auth,
        *extra,
    ]
    if tls:
        argv += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=REPO
        )
    ready: list[str] = []
    reader = threading.Thread(target=lambda: ready.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=30)
    if not ready or not ready[0].startswith("ready "):
        process.kill()
        process.wait(timeout=10)
        raise RuntimeError(f"stand-in did not start: {stderr_path.read_text()[-2000:]}")
    url = ready[0].split()[1]
    return StandIn(
        process, url, int(url.rsplit(":", 1)[1].split("/")[0]), sandbox, pidfile, stderr_path
    )


#: no resolv.conf nameserver may be queried from tests: the stand-in's DNS is a closed port
NO_DNS = ("--dns-server", "127.0.0.1:9")


def start_ntlm_standin(workdir: Path, *extra: str) -> StandIn:
    """A plain-HTTP stand-in that takes NTLM, its DNS a closed port, with `extra` arguments."""
    return start_standin(workdir, tls=None, auth="ntlm", extra=(*NO_DNS, *extra))


def ntlm_protocol(standin: StandIn) -> Protocol:
    """pywinrm's own client to the stand-in, over NTLM with the stand-in's account."""
    return Protocol(
        standin.url,
        transport="ntlm",
        username=f"{DOMAIN}\\{USER}",
        password=PASSWORD,
        proxy=None,
    )


def run_in_shell(proto: Protocol, shell: str, command: str) -> tuple[bytes, bytes, int]:
    """(stdout, stderr, exit code) of one command in an open shell."""
    command_id = proto.run_command(shell, command)
    result = proto.get_command_output(shell, command_id)
    proto.cleanup_command(shell, command_id)
    return result


def host_for(standin: StandIn, *, auth: str, ca: Path | None = None, **kwargs: object) -> WinRMHost:
    return WinRMHost(
        "win-client",
        "127.0.0.1",
        port=standin.port,
        scheme="https" if standin.url.startswith("https") else "http",
        auth=auth,  # type: ignore[arg-type]
        username=kwargs.pop("username", f"{DOMAIN}\\{USER}"),  # type: ignore[arg-type]
        password=kwargs.pop("password", Secret(PASSWORD, "test")),  # type: ignore[arg-type]
        ca_bundle=str(ca) if ca else None,
        **kwargs,  # type: ignore[arg-type]
    )


@dataclass
class TinyDns:
    """An authoritative-looking UDP DNS server on loopback; answers from `records`."""

    records: dict[str, str] = field(default_factory=dict)
    ttl: int = 300
    queries: int = 0

    def start(self) -> tuple[str, int]:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self._sock.getsockname()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            self.queries += 1
            if name in self.records:
                response.answer.append(
                    dns.rrset.from_text(question.name, self.ttl, "IN", "A", self.records[name])
                )
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
            self._sock.sendto(response.to_wire(), peer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
