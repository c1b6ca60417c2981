"""keepalived's configuration for one host of a load-balancer pair (a pure function).

One `vrrp_instance` per host, spoken by unicast between the two hosts' own fixed
addresses (no multicast: many networks and every cloud drop it). Its virtual
addresses are the VIP, `backend_address` and the SNAT addresses: they float
together, so the front ends only ever see addresses the pool file names,
whichever host is active (README, "A pair of load balancers").

Timing (the target: the VIP answers from the standby within 3 s of the active LB's
process stopping): the track script runs every second and one failure puts the
instance in FAULT; leaving MASTER, keepalived sends an advert with priority 0, on
which the backup takes over after its skew time (under 1 s at advert_int 1). A cut
link has no such advert: the backup waits for 3 missed adverts plus the skew
(about 3.6 s at advert_int 1).

The secret is revealed only into the text returned (written 0600 on the LB host);
VRRPv2's PASS authentication uses its first 8 characters, as keepalived does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface

from ...errors import StepFailed
from ...secrets import Secret

#: VRRPv2 PASS authentication carries at most 8 characters (keepalived truncates)
AUTH_PASS_CHARS = 8
PRIORITY_PREFERRED = 150
PRIORITY_OTHER = 100
#: the track script: every TRACK_INTERVAL s, FAULT after TRACK_FALL failures, back
#: after TRACK_RISE good runs
TRACK_INTERVAL = 1
TRACK_TIMEOUT = 1
TRACK_FALL = 1
TRACK_RISE = 2
TRACK_SCRIPT_NAME = "ocsscale_lb_serving"

_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,14}\Z")
_INSTANCE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
# what a keepalived token may hold without quoting: no blank, quote, comment or brace
_AUTH_CHAR = re.compile(r"^[\x21-\x7e]+\Z")
_AUTH_REFUSED = set('"#!{}\\')


@dataclass(frozen=True)
class Floating:
    """One address that moves with the VIP, and the host's interface it goes on."""

    address: IPv4Interface
    interface: str


@dataclass(frozen=True)
class VrrpHost:
    """What one host's keepalived.conf needs (secret aside)."""

    instance: str  # the vrrp_instance's name (the farm's)
    host: str  # this host's name (the config's router_id, for its log)
    interface: str  # where VRRP speaks: the host's interface on the VIP's network
    source: IPv4Address  # this host's own address on that network
    peer: IPv4Address  # the other host's own address there
    preferred: bool  # this host holds the VIP when both are up
    preempt: bool
    router_id: int  # VRRP's virtual_router_id, 1..255
    advert_interval: int  # seconds
    floating: tuple[Floating, ...]  # the VIP first
    #: absolute path of the script that fails when the LB is not serving; None while
    #: nothing serves yet (the routing phase floats only the FEs' gateway)
    track_script: str | None = None


def _check(host: VrrpHost) -> None:
    if not _INSTANCE.match(host.instance) or not _INSTANCE.match(host.host.replace(".", "_")):
        raise StepFailed("the pair's instance or host name is not usable in keepalived.conf")
    for ifname in [host.interface, *(f.interface for f in host.floating)]:
        if not _IFNAME.match(ifname):
            raise StepFailed(f"{host.host}: an interface name keepalived cannot take")
    if not 1 <= host.router_id <= 255 or not 1 <= host.advert_interval <= 255:
        raise StepFailed(f"{host.host}: the VRRP router id or advert interval is out of range")
    if host.source == host.peer:
        raise StepFailed(f"{host.host}: the pair's two hosts have the same address")
    if not host.floating:
        raise StepFailed(f"{host.host}: no address floats between the pair")
    path = host.track_script
    if path is not None and (
        not path.startswith("/") or not _AUTH_CHAR.match(path) or set(path) & _AUTH_REFUSED
    ):
        raise StepFailed(f"{host.host}: the track script's path is not usable in keepalived.conf")


def auth_pass(secret: Secret) -> str:
    """The VRRP password keepalived is given: the secret's first 8 characters. An
    error never quotes it."""
    value = secret.reveal()[:AUTH_PASS_CHARS]
    if not value or not _AUTH_CHAR.match(value) or set(value) & _AUTH_REFUSED:
        raise StepFailed(
            f"the VRRP secret ({secret.source}) must begin with {AUTH_PASS_CHARS} printable "
            'ASCII characters other than blanks and " # ! { } \\ (its value is not shown)'
        )
    return value


def render(host: VrrpHost, secret: Secret) -> str:
    """keepalived.conf for `host` (StepFailed when a value cannot be written safely)."""
    _check(host)
    password = auth_pass(secret)
    state = "MASTER" if host.preferred and host.preempt else "BACKUP"
    priority = PRIORITY_PREFERRED if host.preferred else PRIORITY_OTHER
    lines = [
        "# Written by ocsscale: the VRRP of a load-balancer pair (the VIP floats).",
        "global_defs {",
        f"    router_id {host.host.replace('.', '_')}",
        "    enable_script_security",
        "    script_user root",
        "}",
        "",
    ]
    if host.track_script is not None:
        lines += [
            f"vrrp_script {TRACK_SCRIPT_NAME} {{",
            f"    script {host.track_script}",
            f"    interval {TRACK_INTERVAL}",
            f"    timeout {TRACK_TIMEOUT}",
            f"    fall {TRACK_FALL}",
            f"    rise {TRACK_RISE}",
            "}",
            "",
        ]
    lines += [
        f"vrrp_instance {host.instance} {{",
        f"    state {state}",
        f"    interface {host.interface}",
        f"    virtual_router_id {host.router_id}",
        f"    priority {priority}",
        f"    advert_int {host.advert_interval}",
    ]
    if not host.preempt:
        lines.append("    nopreempt")
    lines += [
        f"    unicast_src_ip {host.source}",
        "    unicast_peer {",
        f"        {host.peer}",
        "    }",
        "    authentication {",
        "        auth_type PASS",
        f"        auth_pass {password}",
        "    }",
        "    virtual_ipaddress {",
        *(f"        {f.address.with_prefixlen} dev {f.interface}" for f in host.floating),
        "    }",
    ]
    if host.track_script is not None:
        lines += ["    track_script {", f"        {TRACK_SCRIPT_NAME}", "    }"]
    lines += ["}", ""]
    return "\n".join(lines)


def masked(text: str, secret: Secret) -> str:
    """`text` (a keepalived.conf) with the VRRP password masked, for evidence."""
    password = secret.reveal()[:AUTH_PASS_CHARS]
    return text.replace(f"auth_pass {password}", "auth_pass ********") if password else text


def track_script(ports: tuple[int, ...], vip: str) -> str:
    """A shell script that fails unless something listens on the VIP's first farm
    port on this host (the LB process serving). It asks the kernel's socket table
    (`ss`), never the VIP over the network: on the standby the VIP is the active
    host's, and a connection to it would prove the wrong host."""
    if not ports:
        raise StepFailed("the farm has no port to watch")
    port = int(ports[0])
    address = str(IPv4Address(vip))
    return (
        "#!/bin/sh\n"
        "# Written by ocsscale: fails when the load balancer does not listen on the VIP.\n"
        f"ss -Hltn \"sport = :{port}\" | awk '{{print $4}}' | "
        f"grep -qxF -e '{address}:{port}' -e '*:{port}' -e '0.0.0.0:{port}'\n"
    )
