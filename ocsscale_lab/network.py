"""The lab's wiring: namespaces, a switch namespace with bridges, veth pairs.

Both ends of every veth pair are created directly in lab namespaces (the
switch end in `<lab>-sw`, the host end in the host's namespace), so no
interface, address or route is ever added to the machine's own network. The
one exception is deliberate: a blackhole route for 198.18.0.0/15 in the
machine's namespace, so that no lab address can ever be routed off the box.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from ocsscale.transports.hostsfile import BACKUP_SUFFIX

from . import state as labstate
from . import system
from .state import LabState
from .system import ETC_NETNS, ip
from .topology import DOMAIN, LAB_RANGE, LabHost, Topology


def blackhole_present() -> bool:
    out = ip("route", "show", "type", "blackhole", check=False)
    return any(line.split()[:2] == ["blackhole", LAB_RANGE] for line in out.splitlines())


def add_blackhole(state: LabState) -> None:
    state.record("blackhole", route=LAB_RANGE)
    if blackhole_present():
        return
    # Marked before it is made: whichever lab goes last removes what a lab made.
    (labstate.LAB_ROOT / labstate.BLACKHOLE_MARKER).touch()
    ip("route", "add", "blackhole", LAB_RANGE)


def remove_blackhole() -> None:
    marker = labstate.LAB_ROOT / labstate.BLACKHOLE_MARKER
    if marker.exists():
        if blackhole_present():
            ip("route", "del", "blackhole", LAB_RANGE, check=False)
        marker.unlink(missing_ok=True)


def add_namespace(state: LabState, ns: str) -> None:
    state.record("netns", name=ns)
    system.netns_add(ns)


def build_switch(state: LabState, topo: Topology) -> None:
    add_namespace(state, topo.switch_ns)
    for net in topo.networks:
        ip("link", "add", net.bridge, "type", "bridge", ns=topo.switch_ns)
        ip("link", "set", net.bridge, "up", ns=topo.switch_ns)


# hosts.pin copies /etc/hosts to /etc/hosts.ocsscale.bak before writing it. In a
# lab namespace /etc is the machine's own, so that copy would land on the
# machine and be shared by every lab host. Each host gets its own file in
# /etc/netns/<ns>/, which `ip netns exec` bind-mounts over the machine's path;
# that needs the path to exist, so the first lab makes an empty one (marked,
# removed by the last lab when still empty).
BACKUP_MOUNT_POINT = Path("/etc/hosts" + BACKUP_SUFFIX)


def add_backup_mount_point(state: LabState) -> None:
    state.record("backup_mount_point", path=str(BACKUP_MOUNT_POINT))
    if BACKUP_MOUNT_POINT.exists():
        return
    (labstate.LAB_ROOT / labstate.BACKUP_MOUNT_POINT_MARKER).touch()
    BACKUP_MOUNT_POINT.touch(mode=0o644)


def remove_backup_mount_point() -> None:
    marker = labstate.LAB_ROOT / labstate.BACKUP_MOUNT_POINT_MARKER
    if marker.exists():
        # Written through from outside a lab since: someone's real backup, keep it.
        with contextlib.suppress(OSError):
            if BACKUP_MOUNT_POINT.stat().st_size == 0:
                BACKUP_MOUNT_POINT.unlink()
        marker.unlink(missing_ok=True)


def etc_netns_files(topo: Topology, host: LabHost) -> dict[str, str]:
    """What the host sees as /etc/hosts, /etc/resolv.conf and hosts.pin's backup."""
    dns = topo.by_role("dns")[0]
    hosts = (
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"{host.address}\t{host.fqdn} {host.name}\n"
    )
    if host.role == "admin":
        # the tool reaches Windows hosts over WinRM by FQDN (their certificates name
        # only it): resolvable whatever the lab's DNS is doing in a test (the
        # directory server is the Windows DNS server's WinRM host with --dns ad)
        hosts += "".join(
            f"{other.address}\t{other.fqdn}\n"
            for other in topo.hosts
            if other.os == "windows" or other.role == "directory"
        )
    resolv = f"# lab {topo.lab}: the lab's BIND\nnameserver {dns.address}\nsearch {DOMAIN}\n"
    return {"hosts": hosts, "resolv.conf": resolv, BACKUP_MOUNT_POINT.name: ""}


def write_etc_netns(state: LabState, ns: str, files: dict[str, str]) -> Path:
    directory = ETC_NETNS / ns
    state.record("etc_netns", path=str(directory))
    if not ETC_NETNS.is_dir():
        (labstate.LAB_ROOT / labstate.ETC_NETNS_MARKER).touch()
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def build_host(state: LabState, topo: Topology, index: int, host: LabHost) -> None:
    ns = topo.ns(host.name)
    add_namespace(state, ns)
    write_etc_netns(state, ns, etc_netns_files(topo, host))
    bridges = {net.key: net.bridge for net in topo.networks}
    for iface in host.interfaces:
        switch_end = f"v{index}{iface.network[0]}"
        ip(
            "link", "add", switch_end, "type", "veth",
            "peer", "name", iface.ifname, "netns", ns,
            ns=topo.switch_ns,
        )  # fmt: skip
        ip("link", "set", switch_end, "master", bridges[iface.network], "up", ns=topo.switch_ns)
        ip("addr", "add", f"{iface.address}/24", "dev", iface.ifname, ns=ns)
        ip("link", "set", iface.ifname, "up", ns=ns)
    for destination, gateway in host.routes:
        ip("route", "add", destination, "via", gateway, ns=ns)
    system.sysctl(ns, "net.ipv4.ip_forward", "1" if host.forwarding else "0")


def remove_etc_netns_root() -> None:
    """Remove /etc/netns itself if a lab created it and it is empty now."""
    marker = labstate.LAB_ROOT / labstate.ETC_NETNS_MARKER
    if marker.exists():
        # Something else put files there since: leave it.
        with contextlib.suppress(OSError):
            ETC_NETNS.rmdir()
        marker.unlink(missing_ok=True)


def remove_etc_netns(path: str) -> None:
    p = Path(path)
    # Only ever a directory under /etc/netns that the journal names.
    if p.parent == ETC_NETNS and p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
