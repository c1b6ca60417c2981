"""Where a lab keeps its files, and the journal of everything it created.

Every object (namespace, /etc/netns entry, process, route) is written to the
journal BEFORE it is created, so `lab down` can remove a half-built lab after a
crash: it deletes by recorded name or pid, in reverse order, and tolerates
objects that were never made. The journal holds names, paths and pids only;
no secret is ever written to it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocsscale.errors import UsageError

from .topology import Topology, TopologyKind, build

LAB_ROOT = Path("/run/ocsscale-lab")
STATE_FILE = "state.json"
# Shared by every lab on the machine; created by the first, removed by the last.
BLACKHOLE_MARKER = ".blackhole-route-added"
PRIVSEP_MARKER = ".sshd-privsep-dir-created"
ETC_NETNS_MARKER = ".etc-netns-created"
BACKUP_MOUNT_POINT_MARKER = ".hosts-backup-mount-point-created"
LOCK_FILE = ".lock"


class LabExists(UsageError):
    """A lab of that name is up (or half-built)."""


@dataclass
class LabState:
    name: str
    topology: TopologyKind
    fes: int
    lb_forwarding: bool
    directory: Path
    complete: bool = False
    objects: list[dict[str, Any]] = field(default_factory=list)
    #: `HOST:KIND` faults the lab was built with (see faults.py)
    faults: list[str] = field(default_factory=list)
    #: the load balancer installed (unconfigured) on the LB host: engine, haproxy or none
    lb: str = "engine"
    #: the zone's DNS: bind (one primary) or ad (DCs with their own serials, lab/dns.py)
    dns: str = "bind"
    dns_servers: int = 1
    #: ad: seconds before a change made on dns01 reaches the other DNS servers
    dns_replication: float = 0.0
    #: `--fe-os`: linux (sshd) or windows (the WinRM stand-in) front ends
    fe_os: str = "linux"
    #: `--lb-pair`: two LB hosts (lb01, lb02) with keepalived, the VIP floating
    lb_pair: bool = False

    # -- paths -----------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.directory / STATE_FILE

    def host_dir(self, host: str) -> Path:
        return self.directory / "hosts" / host

    @property
    def pool_file(self) -> Path:
        return self.directory / "pool.yaml"

    @property
    def secrets_dir(self) -> Path:
        return self.directory / "secrets"

    @property
    def ssh_dir(self) -> Path:
        return self.directory / "ssh"

    @property
    def ca_dir(self) -> Path:
        return self.directory / "ca"

    @property
    def bin_dir(self) -> Path:
        return self.directory / "bin"

    def topo(self) -> Topology:
        return build(
            self.name,
            self.topology,
            self.fes,
            lb_forwarding=self.lb_forwarding,
            dns=self.dns,
            dns_servers=self.dns_servers,
            fe_os=self.fe_os,
            lb_pair=self.lb_pair,
        )

    # -- journal ---------------------------------------------------------------
    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Write the intent to create an object; call before creating it."""
        entry = {"kind": kind, **fields}
        self.objects.append(entry)
        self.save()
        return entry

    def save(self) -> None:
        data = {
            "name": self.name,
            "topology": self.topology,
            "fes": self.fes,
            "lb_forwarding": self.lb_forwarding,
            "complete": self.complete,
            "faults": self.faults,
            "lb": self.lb,
            "dns": self.dns,
            "dns_servers": self.dns_servers,
            "dns_replication": self.dns_replication,
            "fe_os": self.fe_os,
            "lb_pair": self.lb_pair,
            "objects": self.objects,
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.state_file)


def lab_dir(name: str) -> Path:
    return LAB_ROOT / name


def create(
    name: str,
    topology: TopologyKind,
    fes: int,
    lb_forwarding: bool,
    faults: list[str] | None = None,
    lb: str = "engine",
    dns: tuple[str, int, float] = ("bind", 1, 0.0),
    fe_os: str = "linux",
    lb_pair: bool = False,
) -> LabState:
    """Claim the lab's directory (atomically: mkdir fails if it exists)."""
    LAB_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory = lab_dir(name)
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        raise LabExists(
            f"a lab named {name!r} is already up (or was left half-built)",
            hint=f"take it down first: ocsscale lab down --name {name}",
        ) from None
    state = LabState(
        name,
        topology,
        fes,
        lb_forwarding,
        directory,
        faults=list(faults or []),
        lb=lb,
        dns=dns[0],
        dns_servers=dns[1],
        dns_replication=dns[2],
        fe_os=fe_os,
        lb_pair=lb_pair,
    )
    state.save()
    return state


def load(name: str) -> LabState | None:
    """The lab's journal, or None when no lab of that name exists."""
    directory = lab_dir(name)
    if not directory.is_dir():
        return None
    try:
        data = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        # Killed before the first save: only the directory itself exists.
        return LabState(name, "one-armed", 1, True, directory, objects=[])
    return LabState(
        name=data["name"],
        topology=data["topology"],
        fes=int(data["fes"]),
        lb_forwarding=bool(data.get("lb_forwarding", True)),
        directory=directory,
        complete=bool(data.get("complete")),
        objects=list(data.get("objects", [])),
        faults=[str(f) for f in data.get("faults", [])],
        lb=str(data.get("lb", "engine")),
        dns=str(data.get("dns", "bind")),
        dns_servers=int(data.get("dns_servers", 1)),
        dns_replication=float(data.get("dns_replication", 0.0)),
        fe_os=str(data.get("fe_os", "linux")),
        lb_pair=bool(data.get("lb_pair", False)),
    )


def require(name: str) -> LabState:
    state = load(name)
    if state is None:
        raise UsageError(
            f"no lab named {name!r} is up", hint=f"start one: ocsscale lab up --name {name}"
        )
    return state


def all_labs() -> list[str]:
    if not LAB_ROOT.is_dir():
        return []
    return sorted(p.name for p in LAB_ROOT.iterdir() if p.is_dir() and not p.name.startswith("."))


@contextmanager
def machine_lock() -> Iterator[None]:
    """Serialise up/down across labs: they share the blackhole route."""
    LAB_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(LAB_ROOT / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def remove_root_if_unused() -> bool:
    """Remove the labs' root directory when no lab is left; True if it was removed."""
    if all_labs():
        return False
    shutil.rmtree(LAB_ROOT, ignore_errors=True)
    return True
