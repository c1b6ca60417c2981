"""Which services each lab host runs, and the files they need (keys, certificates).

Python services run with the interpreter running `lab up` and find this
package through PYTHONPATH, so they start the same way when the transports
restart them over SSH (where no virtualenv is active).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import ocsscale
import ocsscale_lab
from ocsscale.config.profiles import load_profile

from . import ca as labca
from .services import Service
from .state import LabState
from .templating import write_private
from .topology import DIRECTORY_PORT, DOMAIN, POOL_FQDN, LabHost, Topology

POOLMEMBER = "ocs-poolmember"  # the FE stand-in's Front-End service (ocs2007r2, Linux)
FOCUS = "ocs-focus"  # the conference Focus, alone on its port (444 = a check port)
FOCUS_PORTS = (444,)
PROFILE = "ocs2007r2"
WINRM_PORT = 5986
WINDOWS_DOMAIN = "LAB"
WINDOWS_USER = "labadmin"
WINDOWS_LOGON = rf"{WINDOWS_DOMAIN}\{WINDOWS_USER}"  # as the pool file names it
WINDOWS_HOSTS = Path("Windows/System32/drivers/etc/hosts")
#: DataBasePath with the WINDOWS:hosts-moved fault, and the hosts file it puts in use
MOVED_DATABASE_PATH = "%SystemDrive%\\NetConfig"
MOVED_HOSTS = Path("NetConfig/hosts")
#: where the product and the lab are imported from (one directory in a checkout, maybe
#: two in an install), for the PYTHONPATH of the lab's servers and host wrappers
PACKAGE_ROOT = os.pathsep.join(
    dict.fromkeys(str(Path(p.__file__).resolve().parent.parent) for p in (ocsscale, ocsscale_lab))
)
PY_ENV = (("PYTHONPATH", PACKAGE_ROOT),)


def python_argv(module: str, *args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", module, *args)


def write_wrappers(state: LabState) -> None:
    """`ocsscale`, `lab-svc` and `lab-link` commands for lab hosts, independent of any venv."""
    state.bin_dir.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    prelude = (
        f'#!/bin/sh\nPYTHONPATH="{PACKAGE_ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"\nexport PYTHONPATH\n'
    )
    scripts = {
        "ocsscale": f'{prelude}exec "{py}" -m ocsscale "$@"\n',
        "lab-svc": f'{prelude}exec "{py}" -m ocsscale_lab.svc --lab-dir "{state.directory}" "$@"\n',
        "lab-link": f'{prelude}exec "{py}" -m ocsscale_lab.link --lab "{state.name}" "$@"\n',
    }
    for name, text in scripts.items():
        path = state.bin_dir / name
        path.write_text(text)
        path.chmod(0o755)


def service_command(state: LabState, host: LabHost, action: str = "restart") -> str:
    """The pool file's service_command (or, with action "{action}", its service_control)
    ({service} is filled in)."""
    return f"{state.bin_dir / 'lab-svc'} --host {host.name} {action} {{service}}"


def poolmember(
    state: LabState,
    topo: Topology,
    host: LabHost,
    ca: labca.LabCA,
    *,
    bad_san: bool = False,
    closed: tuple[int, ...] = (),
    tls10: bool = False,
    tls10_3des: bool = False,
) -> list[Service]:
    """The FE stand-in, as two services like a real FE's: the Front-End service on
    every port but the Focus's (FOCUS_PORTS), and the Focus on its own, so the
    failover drill can stop the service behind one check port at a time.
    `bad_san`, `closed`, `tls10` and `tls10_3des` are the lab's faults (faults.py). On a Windows
    FE they are the same processes, which its Windows services control (winrm), and
    they resolve the pool name through its Windows hosts file."""
    profile = load_profile(PROFILE)
    files = labca.issue_server_cert(
        ca,
        state.host_dir(host.name) / "tls",
        file_stem=host.name,
        pool_fqdn=POOL_FQDN,
        fe_fqdn=host.fqdn,
        sip_domain=DOMAIN,
        # the FE's own FQDN missing: the walkthrough's SAN rule is broken
        sans=[f"wrong-{host.fqdn}", f"sip.{DOMAIN}"] if bad_san else None,
        # a Windows Server 2003/2008 front end: SHA-1 certificate, TLS 1.0 only
        sha1=tls10 or tls10_3des,
        # 2003 without the AES update: DES-CBC3-SHA, an RSA key exchange suite
        rsa_key=tls10_3des,
    )
    sip = [p for p in (profile.sip_ports.tls, profile.sip_ports.tcp) if p is not None]
    made = []
    for name, ports in (
        (POOLMEMBER, [p for p in profile.ports if p not in FOCUS_PORTS]),
        (FOCUS, [p for p in profile.ports if p in FOCUS_PORTS]),
    ):
        argv = python_argv(
            "ocsscale_lab.poolmember",
            "--name", host.name,
            "--listen", host.address,
            "--ports", ",".join(map(str, ports)),
            "--tls-ports", ",".join(str(p) for p in profile.tls_ports if p in ports),
            "--sip-ports", ",".join(str(p) for p in sip if p in ports),
            "--https-ports", ",".join(str(p) for p in profile.https_ports if p in ports),
            "--cert", str(files.cert),
            "--key", str(files.key),
            "--pool-fqdn", POOL_FQDN,
            "--pidfile", str(state.host_dir(host.name) / f"{name}.pid"),
        )  # fmt: skip
        argv += tuple(f"--close={port}" for port in closed if port in ports)
        if tls10:
            argv += ("--legacy-tls-only",)
        if tls10_3des:
            argv += ("--tls-3des-only",)
        if host.os == "windows":
            argv += ("--hosts-file", str(windows_hosts_file(state, host)))
        listening = tuple(p for p in ports if p not in closed)
        made.append(Service(host.name, name, topo.ns(host.name), argv, listening, PY_ENV))
    return made


def directory(topo: Topology, host: LabHost) -> Service:
    argv = python_argv(
        "ocsscale_lab.directory",
        "--name", host.name,
        "--listen", host.address,
        "--port", str(DIRECTORY_PORT),
    )  # fmt: skip
    return Service(host.name, "directory", topo.ns(host.name), argv, (DIRECTORY_PORT,), PY_ENV)


def windows_hosts_file(state: LabState, host: LabHost) -> Path:
    """A Windows stand-in's hosts file in use (its sandbox is C:\\), seen from outside:
    where its DataBasePath says (the WINDOWS:hosts-moved fault moves it)."""
    from . import faults  # faults imports the profile loader, not this module

    moved = faults.has(faults.from_state(state.faults), host.name, "hosts-moved")
    return state.host_dir(host.name) / "sandbox" / (MOVED_HOSTS if moved else WINDOWS_HOSTS)


def bound_services(profile_name: str = PROFILE) -> dict[str, tuple[str, ...]]:
    """A Windows FE's services that are the lab's pool-member processes, from the
    profile's check services: the Windows service behind a check port is whatever
    runs that port on a Linux FE (RTCSRV: the Front-End service and the Focus)."""
    bound: dict[str, tuple[str, ...]] = {}
    for services in load_profile(profile_name).check_services.values():
        for name in services.windows:
            bound[name] = tuple(dict.fromkeys([*bound.get(name, ()), *services.linux]))
    return bound


def windows_password_file(state: LabState) -> Path:
    return state.secrets_dir / "winrm-password"


def winrm(
    state: LabState,
    topo: Topology,
    host: LabHost,
    ca: labca.LabCA,
    *,
    hosts_readonly: bool = False,
    powershell: str | None = None,
    locale: str = "en",
    hosts_moved: bool = False,
) -> Service:
    """The Windows test client (with `--dns ad`, also the domain controller dc01,
    the pool file's Windows DNS server; with `--fe-os windows`, each front end, with
    the OCS services, RTCSRV being its pool member: bound_services): the WinRM
    stand-in on 5986 with a lab-CA certificate;
    `hosts_readonly` (a lab fault) makes writing its hosts file fail as on a locked file,
    `powershell` (a lab fault) is the PowerShell version it reports, `locale` (a lab
    fault) the display language of what its console programs print."""
    base = state.host_dir(host.name)
    # its own file: on a Windows FE, tls/<host>.pem is the pool member's certificate
    tls = issue_host_cert(ca, base / "tls", f"{host.name}-winrm", host.fqdn)
    password_file = windows_password_file(state)
    if password_file.exists():  # one lab Windows account, on every Windows stand-in
        password = password_file.read_text(encoding="utf-8").strip()
    else:
        password = secrets.token_urlsafe(18)
        write_private(password_file, password + "\n")
    users = base / "users"
    write_private(users, f"{WINDOWS_DOMAIN}:{WINDOWS_USER}:{password}\n")
    sandbox = base / "sandbox"
    argv = python_argv(
        "ocsscale_lab.winrm_host",
        "--listen", host.address,
        "--port", str(WINRM_PORT),
        "--tls-cert", str(tls.cert),
        "--tls-key", str(tls.key),
        "--users-file", str(users),
        "--sandbox", str(sandbox),
        "--pidfile", str(base / "winrm.pid"),
        # a domain member trusts its enterprise CA: the client load's TLS handshakes
        # from this host verify the FEs' certificates against the lab's
        "--trusted-ca", str(ca.files.cert),
    )  # fmt: skip
    if hosts_readonly:
        argv += ("--read-only-hosts",)
    if hosts_moved:
        argv += ("--hosts-database-path", MOVED_DATABASE_PATH)
    if powershell:
        argv += ("--powershell-version", powershell)
    if locale != "en":
        argv += ("--locale", locale)
    if host.runs_poolmember:
        argv += (
            "--ocs-front-end",
            # set up as the walkthrough says: IIS allows the pool FQDN on loopback
            "--back-connection-host-names", POOL_FQDN,
            "--service-control",
            f"{state.bin_dir / 'lab-svc'} --host {host.name}",
        )  # fmt: skip
        for name, processes in bound_services().items():
            argv += ("--bind-service", f"{name}={','.join(processes)}")
        return Service(host.name, "winrm", topo.ns(host.name), argv, (WINRM_PORT,), PY_ENV)
    # It also plays a Windows DNS server (dnscmd, as on Server 2008 R2): the DNS
    # provider's scripts are carried out on the lab's BIND with the lab's TSIG key.
    from . import dns as labdns
    from .poolfile import tsig_secret_file  # poolfile imports this module

    argv += (
        "--dns-primary", f"{topo.by_role('dns')[0].address}:53",
        "--dns-tsig-name", labdns.TSIG_NAME,
        "--dns-tsig-algorithm", labdns.TSIG_ALGORITHM,
        "--dns-tsig-file", str(tsig_secret_file(state)),
        "--dns-tools", "dnscmd",
    )  # fmt: skip
    return Service(host.name, "winrm", topo.ns(host.name), argv, (WINRM_PORT,), PY_ENV)


def issue_host_cert(ca: labca.LabCA, directory: Path, stem: str, fqdn: str) -> labca.CertFiles:
    """A plain server certificate naming a host by its FQDN only, as the one Windows
    gives a WinRM HTTPS listener does: reached by address, it fails validation.

    The FE certificates follow the walkthrough's rules (lab CA module).
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = [x509.DNSName(fqdn)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    files = labca.CertFiles(directory / f"{stem}.pem", directory / f"{stem}-key.pem")
    labca.write_key(files.key, key)
    labca.write_cert(files.cert, cert)
    return files
