"""The lab's authoritative DNS: BIND 9 for lab.test and its reverse zones.

As in production before the migration, the pool FQDN's A record points at
the legacy FE (with a short TTL, POOL_TTL), and so does sip.lab.test, and
`_sipinternaltls._tcp` targets the legacy FE's own host name (all three move
at the cutover). Updates (RFC 2136) are accepted only when signed with the
lab's TSIG key (hmac-sha256), and so are zone transfers (the cutover's
inventory); the key's secret is written twice, both mode
0600: as a BIND `key` clause for named, and alone for the pool file's
`{file: ...}` reference.

`lab up --dns ad` plays an AD-integrated zone instead: every DNS server
(dns01, dns02, ...) is a primary of its own copy of lab.test, named in the NS
set, with its own SOA serial (they never converge), and a change made on
dns01 reaches the others only after `--dns-replication` seconds, copied by
the lab's replicator (dnsrepl.py) as AD replication would; a DNS server with
the `no-replication` fault never receives it.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .services import Service
from .templating import render, write_private
from .topology import DOMAIN, POOL_FQDN, LabHost, Topology

TSIG_NAME = "ocsscale"
TSIG_ALGORITHM = "hmac-sha256"
ZONE_TTL = 3600
#: The pool record's TTL, and the one lower-ttl brings it down to: seconds, not an
#: hour, so a lab migration waits out real TTLs and still stays short.
POOL_TTL = 10
CUTOVER_TTL = 3
#: the cutover's watch window and probe interval in the lab pool file (seconds):
#: eight rounds of probes from every client
WATCH_WINDOW = 8
WATCH_INTERVAL = 1
NAMED = "/usr/sbin/named"


@dataclass(frozen=True)
class Record:
    name: str
    type: str
    value: str
    ttl: int | None = None  # None: the zone's $TTL


@dataclass(frozen=True)
class Zone:
    name: str
    file: str


def forward_records(topo: Topology) -> list[Record]:
    records: list[Record] = []
    for host in topo.hosts:
        records.append(Record(host.name, "A", host.address))
        for iface in host.interfaces[1:]:
            records.append(Record(f"{host.name}-{iface.network}", "A", iface.address))
    legacy = topo.by_role("legacy-fe")[0]
    pool_label = POOL_FQDN.removesuffix("." + DOMAIN)
    records.append(Record(pool_label, "A", legacy.address, POOL_TTL))
    # automatic sign-in as many single-FE sites set it up: sip.<domain> at the legacy
    # FE, and the SRV record aimed at its own host name; both move with the pool name
    # at the cutover (short TTLs, as the pool record's, keep the lab's waits short)
    records.append(Record("sip", "A", legacy.address, POOL_TTL))
    records.append(Record("_sipinternaltls._tcp", "SRV", f"0 0 5061 {legacy.fqdn}.", POOL_TTL))
    return records


def reverse_zones(topo: Topology) -> dict[str, list[Record]]:
    """PTR records per /24 reverse zone (e.g. 0.18.198.in-addr.arpa)."""
    zones: dict[str, list[Record]] = {}
    for host in topo.hosts:
        for i, iface in enumerate(host.interfaces):
            a, b, c, d = iface.address.split(".")
            name = host.fqdn if i == 0 else f"{host.name}-{iface.network}.{DOMAIN}"
            zones.setdefault(f"{c}.{b}.{a}.in-addr.arpa", []).append(Record(d, "PTR", name + "."))
    return zones


#: `--dns ad`: each DNS server's own first serial (domain controllers never share one)
AD_SERIAL_STEP = 1000


def write_config(
    topo: Topology,
    directory: Path,
    tsig_secret_file: Path,
    dns_host: LabHost | None = None,
    *,
    serial: int = 1,
) -> Service:
    """Write named.conf, zone files and the TSIG key; the named service to start.
    `dns_host` (default the first) is the server; every DNS server of the lab is in
    the zone's NS set and each is the primary of its own copy (`serial` its first)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    dns_host = dns_host or topo.by_role("dns")[0]
    if tsig_secret_file.exists():  # one key for every DNS server of the lab
        secret = tsig_secret_file.read_text(encoding="utf-8").strip()
    else:
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
    key_file = directory / "tsig.key"
    write_private(
        key_file,
        f'key "{TSIG_NAME}" {{\n    algorithm {TSIG_ALGORITHM};\n    secret "{secret}";\n}};\n',
    )
    write_private(tsig_secret_file, secret + "\n")

    zone_records = {DOMAIN: forward_records(topo), **reverse_zones(topo)}
    zones = []
    for origin, records in zone_records.items():
        path = directory / f"{origin}.zone"
        path.write_text(
            render(
                "zone.j2",
                origin=origin,
                lab=topo.lab,
                ttl=ZONE_TTL,
                ns_fqdn=dns_host.fqdn,
                ns_fqdns=[h.fqdn for h in topo.by_role("dns")],
                serial=serial,
                domain=DOMAIN,
                records=records,
            ),
            encoding="utf-8",
        )
        zones.append(Zone(origin, str(path)))
    conf = directory / "named.conf"
    conf.write_text(
        render(
            "named.conf.j2",
            lab=topo.lab,
            zone=DOMAIN,
            tsig_name=TSIG_NAME,
            tsig_key_file=str(key_file),
            directory=str(directory),
            address=dns_host.address,
            zones=zones,
        ),
        encoding="utf-8",
    )
    # -f: stay in the foreground so the recorded pid is named's own; running as
    # root (no -u) lets it write zone journals in the lab directory.
    argv = (NAMED, "-f", "-4", "-n", "2", "-c", str(conf))
    return Service(dns_host.name, "named", topo.ns(dns_host.name), argv, (53,))


def ad_services(
    topo: Topology, host_dir: Any, tsig_secret_file: Path, delay: float, cut_off: list[str]
) -> list[Service]:
    """`--dns ad`: named on every DNS server (each its own serial), and the
    replicator copying dns01's changes to the others after `delay` seconds
    (never to those in `cut_off`, the `no-replication` fault)."""
    from .hostsvc import PY_ENV, python_argv

    hosts = topo.by_role("dns")
    made = [
        write_config(
            topo, host_dir(h.name) / "named", tsig_secret_file, h, serial=1 + i * AD_SERIAL_STEP
        )
        for i, h in enumerate(hosts)
    ]
    source, targets = hosts[0], [h for h in hosts[1:] if h.name not in cut_off]
    argv = python_argv(
        "ocsscale_lab.dnsrepl",
        "--zone", DOMAIN,
        "--source", source.address,
        "--targets", ",".join(h.address for h in targets) or "-",
        "--delay", f"{delay:g}",
        "--tsig-name", TSIG_NAME,
        "--tsig-algorithm", TSIG_ALGORITHM,
        "--tsig-file", str(tsig_secret_file),
    )  # fmt: skip
    # in the second DNS server's namespace: it reaches every server on the client network
    made.append(Service(hosts[1].name, "dns-replicator", topo.ns(hosts[1].name), argv, (), PY_ENV))
    return made
