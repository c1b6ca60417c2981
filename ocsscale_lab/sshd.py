"""OpenSSH for the lab: a host key per host, one lab key for root, known_hosts.

Every Linux host runs the system's own `sshd` inside its namespace, listening
on its lab address only and accepting nothing but the lab key. The admin host
gets a known_hosts with every host key, so transports connect with strict
host-key checking from the first connection on.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .services import Service
from .templating import render, write_private
from .topology import LabHost, Topology

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")  # compiled into Debian's sshd; it refuses to start without it


def make_key(private_path: Path, comment: str) -> str:
    """Write a new ed25519 key pair (OpenSSH format, private 0600); the public line."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    write_private(private_path, private.decode())
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    line = f"{public.decode()} {comment}"
    private_path.with_name(private_path.name + ".pub").write_text(line + "\n")
    return line


def make_client_key(ssh_dir: Path, lab: str) -> Path:
    """The lab key root logs in with; authorized on every host."""
    ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ssh_dir / "id_ed25519"
    public = make_key(key, f"ocsscale-lab-{lab}")
    (ssh_dir / "authorized_keys").write_text(public + "\n")
    (ssh_dir / "authorized_keys").chmod(0o600)
    return key


# `ip netns exec` gives the process a mount namespace of its own in which
# /etc/hosts is a bind mount of /etc/netns/<ns>/hosts: re-mounting it read-only
# there makes the file unwritable for sshd and every session it serves (the
# `hosts-readonly` fault), and for nothing else.
HOSTS_READONLY_LAUNCHER = (
    "sh",
    "-c",
    'mount -o remount,bind,ro /etc/hosts && exec "$@"',
    "lab-hosts-readonly",
)


def write_host(
    topo: Topology, host: LabHost, host_dir: Path, ssh_dir: Path, *, hosts_readonly: bool = False
) -> tuple[Service, str]:
    """Host key and sshd_config for one host: its sshd service and known_hosts line."""
    sshd_dir = host_dir / "sshd"
    sshd_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    host_key = sshd_dir / "ssh_host_ed25519_key"
    public = make_key(host_key, f"root@{host.fqdn}")
    conf = sshd_dir / "sshd_config"
    conf.write_text(
        render(
            "sshd_config.j2",
            lab=topo.lab,
            host=host.name,
            address=host.address,
            host_key=str(host_key),
            authorized_keys=str(ssh_dir / "authorized_keys"),
        ),
        encoding="utf-8",
    )
    names = ",".join([host.address, host.fqdn, host.name])
    known = f"{names} {' '.join(public.split()[:2])}"
    # -D: no daemonising, so the pid we record is sshd's own; -E: log to a file.
    argv = (SSHD, "-D", "-f", str(conf), "-E", str(sshd_dir / "sshd.log"))
    launcher = HOSTS_READONLY_LAUNCHER if hosts_readonly else ()
    return Service(host.name, "sshd", topo.ns(host.name), argv, (22,), launcher=launcher), known


def admin_ssh_config(ssh_dir: Path) -> str:
    """/etc/ssh/ssh_config for the admin namespace: `ssh ocsfe01` just works."""
    return (
        "# The admin host's ssh client settings; written by `ocsscale lab up`.\n"
        "Host *\n"
        "    User root\n"
        f"    IdentityFile {ssh_dir / 'id_ed25519'}\n"
        f"    UserKnownHostsFile {ssh_dir / 'known_hosts'}\n"
        "    GlobalKnownHostsFile /dev/null\n"
        "    StrictHostKeyChecking yes\n"
        "    BatchMode yes\n"
    )
