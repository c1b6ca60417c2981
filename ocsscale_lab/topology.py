"""The lab's hosts and networks, as pure data: who lives where, with which address.

Everything here is computed from (lab name, topology, number of FEs), so `up`,
`down`, `status` and the pool-file writer all agree without sharing state.
Addresses are only ever in 198.18.0.0/15, the range set aside for benchmarks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

from ocsscale.errors import UsageError

TopologyKind = Literal["one-armed", "two-armed-routed"]
TOPOLOGIES: tuple[TopologyKind, ...] = ("one-armed", "two-armed-routed")
Role = Literal["admin", "client", "windows-client", "legacy-fe", "fe", "lb", "dns", "directory"]
OsKind = Literal["linux", "windows"]
#: `lab up --fe-os`: what the front ends (the legacy FE and the new ones) run
FE_OS: tuple[OsKind, ...] = ("linux", "windows")

LAB_RANGE = "198.18.0.0/15"
DOMAIN = "lab.test"
POOL_FQDN = f"ocspool.{DOMAIN}"
CLIENT_NET = "198.18.0"
FE_NET = "198.19.0"
VIP = f"{CLIENT_NET}.40"
#: `--lb-pair`: the two LB hosts' own (fixed) last octets, on every network they join;
#: the VIP (.40) and the back-end arm (FE_NET.40) float between them (keepalived)
PAIR_HOSTS = (("lb01", 37), ("lb02", 38))
ADMIN_OCTET = 100
DIRECTORY_PORT = 135
MAX_FES = 12  # FEs take .41 upwards; .53 is the DNS server
DNS_KINDS = ("bind", "ad")
#: `--dns ad`: the zone's DNS servers (domain controllers), .53 upwards
MAX_DNS_SERVERS = 4
DEFAULT_NAME = "ocslab"
_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")


@dataclass(frozen=True)
class Network:
    """One L2 segment: a bridge inside the lab's switch namespace."""

    key: str  # "client" or "fe"
    bridge: str
    prefix: str  # first three octets
    cidr: str


@dataclass(frozen=True)
class Interface:
    network: str  # Network.key
    ifname: str  # name inside the host's namespace
    address: str


@dataclass(frozen=True)
class LabHost:
    name: str
    role: Role
    interfaces: tuple[Interface, ...]
    routes: tuple[tuple[str, str], ...] = ()  # (destination, gateway)
    forwarding: bool = False
    #: a Windows front end (`--fe-os windows`): the WinRM stand-in instead of sshd
    windows: bool = False

    @property
    def address(self) -> str:
        """The host's main address: the one in DNS and in the pool file."""
        return self.interfaces[0].address

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{DOMAIN}"

    @property
    def os(self) -> OsKind:
        return "windows" if self.role == "windows-client" or self.windows else "linux"

    @property
    def runs_sshd(self) -> bool:
        # The directory is a domain-controller stand-in; Windows hosts speak WinRM.
        return self.role != "directory" and self.os == "linux"

    @property
    def runs_poolmember(self) -> bool:
        return self.role in ("legacy-fe", "fe")


@dataclass(frozen=True)
class Topology:
    lab: str
    kind: TopologyKind
    networks: tuple[Network, ...]
    hosts: tuple[LabHost, ...] = field(default_factory=tuple)

    def ns(self, host: str) -> str:
        """The network namespace a host lives in."""
        return f"{self.lab}-{host}"

    @property
    def switch_ns(self) -> str:
        return f"{self.lab}-sw"

    def host(self, name: str) -> LabHost:
        for h in self.hosts:
            if name in (h.name, self.ns(h.name), h.fqdn):
                return h
        known = ", ".join(h.name for h in self.hosts)
        raise UsageError(f"lab {self.lab} has no host {name!r} (hosts: {known})")

    def by_role(self, role: Role) -> list[LabHost]:
        return [h for h in self.hosts if h.role == role]

    @property
    def namespaces(self) -> list[str]:
        return [self.switch_ns] + [self.ns(h.name) for h in self.hosts]


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise UsageError(
            f"lab name {name!r} is not valid: 1-12 lower-case letters and digits, "
            "starting with a letter"
        )
    return name


def build(
    lab: str,
    kind: TopologyKind = "one-armed",
    fes: int = 2,
    *,
    lb_forwarding: bool = True,
    dns: str = "bind",
    dns_servers: int = 1,
    fe_os: str = "linux",
    lb_pair: bool = False,
) -> Topology:
    """The walkthrough's network for one topology, with `fes` new front ends.

    `lb_forwarding=False` leaves routing off at a two-armed LB, so that the
    `routing` phase has something to turn on. `dns="ad"` gives the zone
    `dns_servers` DNS servers (dns01, dns02, ...) that converge as domain
    controllers do (lab/dns.py). `fe_os="windows"` makes the front ends, the
    legacy one included, Windows hosts (the WinRM stand-in, lab/hostsvc.py).
    `lb_pair=True` builds two LB hosts (lb01, lb02) with their own addresses; the
    FEs' gateway is then the pair's floating FE_NET.40 (the routing phase's
    keepalived holds it on the active host); see the routes below.
    """
    check_name(lab)
    if kind not in TOPOLOGIES:
        raise UsageError(f"unknown topology {kind!r} (choose one of: {', '.join(TOPOLOGIES)})")
    if not 1 <= fes <= MAX_FES:
        raise UsageError(f"--fes must be between 1 and {MAX_FES}, not {fes}")
    if dns not in DNS_KINDS:
        raise UsageError(f"--dns must be one of {', '.join(DNS_KINDS)}, not {dns!r}")
    if fe_os not in FE_OS:
        raise UsageError(f"--fe-os must be one of {', '.join(FE_OS)}, not {fe_os!r}")
    windows_fes = fe_os == "windows"
    if dns == "bind":
        dns_servers = 1
    elif not 2 <= dns_servers <= MAX_DNS_SERVERS:
        raise UsageError(
            f"--dns-servers must be between 2 and {MAX_DNS_SERVERS}, not {dns_servers}"
        )
    client = Network("client", "br-client", CLIENT_NET, f"{CLIENT_NET}.0/24")
    networks = [client]
    two_armed = kind == "two-armed-routed"
    if two_armed:
        networks.append(Network("fe", "br-fe", FE_NET, f"{FE_NET}.0/24"))
    # On two-armed, hosts on the client side reach the FE network through the
    # LB's outside address, as a router would send them in production. A pair's
    # floating addresses exist only once the tool has started keepalived (routing
    # phase), but preflight already logs on to the FEs: the client side goes
    # through the preferred host's own address, and the FEs answer the admin host
    # through its own back-end address (a management path, as a site's management
    # network would be); everything else from the FEs takes the floating gateway.
    gateway = f"{CLIENT_NET}.{PAIR_HOSTS[0][1] if lb_pair else 39}"
    to_fe_net = ((f"{FE_NET}.0/24", gateway),) if two_armed else ()
    fe_routes: tuple[tuple[str, str], ...] = (("default", f"{FE_NET}.40"),)
    if lb_pair:
        fe_routes += ((f"{CLIENT_NET}.{ADMIN_OCTET}/32", f"{FE_NET}.{PAIR_HOSTS[0][1]}"),)

    def on_client(name: str, role: Role, last_octet: int) -> LabHost:
        iface = Interface("client", "eth0", f"{CLIENT_NET}.{last_octet}")
        return LabHost(name, role, (iface,), to_fe_net)

    hosts = [
        on_client("admin", "admin", ADMIN_OCTET),
        on_client("client01", "client", 101),
        on_client("client02", "windows-client", 102),
        replace(on_client("ocsfe00", "legacy-fe", 30), windows=windows_fes),
        *(on_client(f"dns{i:02d}", "dns", 52 + i) for i in range(1, dns_servers + 1)),
        on_client("dc01", "directory", 10),
    ]
    lbs = PAIR_HOSTS if lb_pair else (("lb01", 39),)
    for lb_name, octet in lbs:
        lb_ifaces = [Interface("client", "eth0", f"{CLIENT_NET}.{octet}")]
        if two_armed:
            lb_ifaces.append(Interface("fe", "eth1", f"{FE_NET}.{octet if lb_pair else 40}"))
        hosts.append(
            LabHost(lb_name, "lb", tuple(lb_ifaces), (), forwarding=two_armed and lb_forwarding)
        )
    for i in range(1, fes + 1):
        name = f"ocsfe{i:02d}"
        if two_armed:
            iface = Interface("fe", "eth0", f"{FE_NET}.{40 + i}")
            hosts.append(LabHost(name, "fe", (iface,), fe_routes, windows=windows_fes))
        else:
            hosts.append(replace(on_client(name, "fe", 40 + i), windows=windows_fes))
    return Topology(lab, kind, tuple(networks), tuple(hosts))
