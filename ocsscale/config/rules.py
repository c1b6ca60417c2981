"""The walkthrough's rules, applied to a pool file that already has the right shape.

Each rule yields ConfigIssues with a rule id and the position of the value at
fault; `check_pool` runs them all so every problem is reported at once.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Network

from ..errors import ConfigIssue
from ..yamlpos import YamlDocument, format_path
from . import dnsnames
from .model import HostSpec, Pool, ServerSpec
from .profiles import Profile

Path_ = tuple[str | int, ...]
Rule = Callable[[Pool, Profile, YamlDocument], Iterator[ConfigIssue]]
LB = ("load_balancer",)

_MODE_REASONS = {
    "out-of-path": (
        "lb.mode.out-of-path",
        "out-of-path (direct server return) is not supported by this profile: replies "
        "must come back through the load balancer; use full-proxy",
    ),
    "dnat-only": (
        "lb.mode.dnat-only",
        "dnat-only is not supported by this profile: SNAT is required. With DNAT alone the "
        "front end sees the client's own address as the source, so its replies bypass the "
        "load balancer and are never translated back; use full-proxy (SNAT + DNAT)",
    ),
}


def topology_rules(pool: Pool, profile: Profile, doc: YamlDocument) -> Iterator[ConfigIssue]:
    lb = pool.load_balancer
    if lb.topology not in profile.supported_topologies:
        yield doc.issue(
            (*LB, "topology"),
            "lb.topology.unsupported",
            f"{lb.topology} is not supported by this profile "
            f"(supported: {', '.join(profile.supported_topologies)})",
        )
    if lb.mode not in profile.supported_modes:
        rule, message = _MODE_REASONS.get(
            lb.mode,
            (
                "lb.mode.unsupported",
                f"{lb.mode} is not supported by this profile "
                f"(supported: {', '.join(profile.supported_modes)})",
            ),
        )
        yield doc.issue((*LB, "mode"), rule, message)


def network_rules(pool: Pool, profile: Profile, doc: YamlDocument) -> Iterator[ConfigIssue]:
    """Where the front ends sit relative to the VIP and the LB's back-end arm."""
    lb = pool.load_balancer
    vip_net = lb.vip.network
    fes = [(("front_ends", i, "address"), fe.address) for i, fe in enumerate(pool.front_ends)]
    arms = [lb.vip.network]
    if lb.backend_address is not None:
        arms.append(lb.backend_address.network)
    for path, address in fes:
        # /31 and /32 have no broadcast address (RFC 3021)
        arm = next((n for n in arms if n.prefixlen <= 30 and address == n.broadcast_address), None)
        if arm is not None:
            yield doc.issue(
                path,
                "fe.address.broadcast",
                f"{address} is the broadcast address of {arm}, not one machine's",
            )
    if lb.topology == "one-armed":
        if lb.backend_address is not None:
            yield doc.issue(
                (*LB, "backend_address"),
                "lb.backend-address.one-armed",
                "a one-armed load balancer has a single arm: remove backend_address "
                "or choose a two-armed topology",
            )
        for path, address in fes:
            if address not in vip_net:
                yield doc.issue(
                    path,
                    "fe.subnet.outside-vip",
                    f"{address} is outside the VIP network {vip_net}: in a one-armed "
                    "topology the front ends share the load balancer's network",
                )
        return
    if lb.backend_address is None:
        yield doc.issue(
            (*LB, "backend_address"),
            "lb.backend-address.missing",
            f"{lb.topology} needs backend_address: the load balancer's address on the "
            "front-end network, with its prefix (e.g. 10.0.1.40/24)",
        )
    back_net = lb.backend_address.network if lb.backend_address is not None else None
    routed = lb.topology == "two-armed-routed"
    if routed and back_net is not None and back_net.overlaps(vip_net):
        yield doc.issue(
            (*LB, "backend_address"),
            "lb.backend-address.same-network",
            f"backend network {back_net} overlaps the VIP network {vip_net}: a routed "
            "two-armed load balancer joins two different networks",
        )
    for path, address in fes:
        if address in vip_net:
            yield doc.issue(
                path,
                "fe.subnet.same-as-vip",
                f"{address} is inside the VIP network {vip_net}: in a two-armed topology "
                "the front ends sit behind the load balancer on another subnet",
            )
        elif routed and back_net is not None and address not in back_net:
            yield doc.issue(
                path,
                "fe.subnet.outside-backend",
                f"{address} is outside the back-end network {back_net}: the front ends "
                "must be reachable on the load balancer's back-end arm",
            )


def snat_rules(pool: Pool, profile: Profile, doc: YamlDocument) -> Iterator[ConfigIssue]:
    lb = pool.load_balancer
    per_address = profile.snat_connections_per_address
    needed = max(1, math.ceil(lb.expected_peak_connections / per_address))
    have = len(set(lb.snat_addresses))
    if have < needed:
        yield doc.issue(
            (*LB, "snat_addresses"),
            "lb.snat.too-few",
            f"{have} SNAT address{'es' if have != 1 else ''} for "
            f"{lb.expected_peak_connections:,} expected peak connections: at least {needed} "
            f"needed (each source address gives about {per_address:,} connections)",
        )
    seen: set[IPv4Address] = set()
    # The LB talks to the front ends from its SNAT addresses, so they belong on the
    # network it shares with them: the VIP network (one-armed), else the back-end arm.
    if lb.topology == "one-armed" or lb.backend_address is None:
        nets: list[IPv4Network] = [lb.vip.network]
    elif lb.topology == "two-armed-routed":
        nets = [lb.backend_address.network]
    else:
        nets = [lb.backend_address.network, lb.vip.network]
    host_addresses = {h.address: h.name for _, h in _machines(pool)}
    for i, address in enumerate(lb.snat_addresses):
        path = (*LB, "snat_addresses", i)
        if address in seen:
            yield doc.issue(path, "lb.snat.duplicate", f"{address} is listed twice")
        seen.add(address)
        if not any(address in net for net in nets):
            where = " or ".join(str(n) for n in nets)
            yield doc.issue(
                path,
                "lb.snat.network",
                f"{address} is not on the network the load balancer shares with the "
                f"front ends ({where})",
            )
        if address in host_addresses:
            yield doc.issue(
                path,
                "lb.snat.conflict",
                f"{address} is already the address of {host_addresses[address]}",
            )


def pair_rules(pool: Pool, profile: Profile, doc: YamlDocument) -> Iterator[ConfigIssue]:
    """A load-balancer pair that can work: two distinct hosts, each with its own
    address on every network the VIP floats on, one of them preferred, a VRRP secret
    by reference, and no single `host` besides."""
    lb = pool.load_balancer
    pair = lb.pair
    if pair is None:
        return
    where = (*LB, "pair")
    if lb.host is not None:
        yield doc.issue(
            (*LB, "host"),
            "lb.pair.host",
            "load_balancer.host and load_balancer.pair name the LB hosts twice: with a "
            "pair, its two hosts are the load balancer; remove host",
        )
    if pair.secret is None:
        yield doc.issue(
            where,
            "lb.pair.secret.missing",
            "a pair's VRRP adverts are authenticated: add secret: {env: VARIABLE} or {file: PATH}",
        )
    names = [h.name for h in pair.hosts]
    if pair.preferred not in names:
        yield doc.issue(
            (*where, "preferred"),
            "lb.pair.preferred",
            f"preferred names one of the pair's hosts ({', '.join(names)})",
        )
    first, second = pair.hosts
    second_at = (*where, "hosts", 1)
    mine = {a.ip for a in first.addresses} | {first.address}
    theirs = {a.ip for a in second.addresses} | {second.address}
    if first.name.lower() == second.name.lower():
        yield doc.issue(
            (*second_at, "name"),
            "lb.pair.same-host",
            f"both hosts of the pair are {first.name}: a pair is two machines",
        )
    elif mine & theirs:
        shared = ", ".join(sorted(str(a) for a in mine & theirs))
        yield doc.issue(
            (*second_at, "address"),
            "lb.pair.same-host",
            f"both hosts of the pair have {shared}: a pair is two machines, each with "
            "its own addresses",
        )
    floating = set(lb.floating())
    others = {h.address: h.name for _, h in _machines(pool)} | {
        pool.directory.address: pool.directory.name
    }
    nets = [("the VIP's network", lb.vip.network)]
    if lb.topology != "one-armed" and lb.backend_address is not None:
        nets.append(("the front ends' network (backend_address)", lb.backend_address.network))
    for i, host in enumerate(pair.hosts):
        at = (*where, "hosts", i, "addresses")
        for j, address in enumerate(host.addresses):
            if address.ip in floating:
                yield doc.issue(
                    (*at, j),
                    "lb.pair.address.floating",
                    f"{address.ip} floats between the pair's hosts (VIP, backend_address, "
                    "SNAT): list only this host's own fixed addresses",
                )
            elif address.ip in others:
                yield doc.issue(
                    (*at, j),
                    "lb.pair.address.conflict",
                    f"{address.ip} is already the address of {others[address.ip]}",
                )
        for what, net in nets:
            if not any(a.ip in net for a in host.addresses):
                yield doc.issue(
                    at,
                    "lb.pair.network",
                    f"{host.name} has no fixed address on {what} {net}: the VIP and its "
                    "addresses float there, and VRRP speaks between the hosts' own "
                    "addresses on it",
                )


def _machines(pool: Pool) -> list[tuple[Path_, HostSpec]]:
    """The servers and clients that are distinct machines (the LB's own host and
    the Windows DNS server, often the directory server itself, excluded)."""
    return [(p, h) for p, h in pool.all_hosts() if p[0] not in ("load_balancer", "dns")]


def uniqueness_rules(pool: Pool, profile: Profile, doc: YamlDocument) -> Iterator[ConfigIssue]:
    lb = pool.load_balancer
    names: dict[str, Path_] = {}
    entries: list[tuple[Path_, str]] = [(p, h.name) for p, h in pool.all_hosts()]
    dns_host = getattr(pool.dns, "host", None)
    same_machine = (
        dns_host is not None
        and dns_host.name.lower() == pool.directory.name.lower()
        and dns_host.address == pool.directory.address
    )
    if not same_machine:  # a domain controller that is also the DNS server keeps its name
        entries.append((("directory",), pool.directory.name))
    for path, name in entries:
        key = name.lower()
        if key in names:
            yield doc.issue(
                (*path, "name"),
                "host.name.duplicate",
                f"the name {name} is already used at {_fmt(names[key])}: hosts are "
                "addressed by name in plans and the journal",
            )
        else:
            names[key] = path
    addresses: dict[IPv4Address, Path_] = {}
    machines: list[tuple[Path_, IPv4Address]] = [(p, h.address) for p, h in _machines(pool)]
    machines.append((("directory",), pool.directory.address))
    for path, address in machines:
        if address in addresses:
            yield doc.issue(
                (*path, "address"),
                "host.address.duplicate",
                f"{address} is already the address of {_fmt(addresses[address])}",
            )
        else:
            addresses[address] = path
        if address == lb.vip.ip:
            yield doc.issue(
                (*path, "address"),
                "host.address.is-vip",
                f"{address} is the VIP: the VIP belongs to the load balancer alone",
            )
        if lb.backend_address is not None and address == lb.backend_address.ip:
            yield doc.issue(
                (*path, "address"),
                "lb.backend-address.conflict",
                f"{address} is the load balancer's backend_address",
            )
    fqdns: dict[str, Path_] = {}
    servers: list[tuple[Path_, ServerSpec]] = [(("legacy_fe",), pool.legacy_fe)]
    servers += [(("front_ends", i), fe) for i, fe in enumerate(pool.front_ends)]
    for path, server in servers:
        key = (server.fqdn or "").lower()
        if key in fqdns:
            yield doc.issue(
                (*path, "fqdn"),
                "fe.fqdn.duplicate",
                f"{server.fqdn} is already the FQDN of {_fmt(fqdns[key])}",
            )
        fqdns.setdefault(key, path)


def front_end_rules(pool: Pool, profile: Profile, doc: YamlDocument) -> Iterator[ConfigIssue]:
    if not pool.front_ends:
        yield doc.issue(("front_ends",), "fe.none", "list at least one new front end")
    elif all(fe.weight == 0 for fe in pool.front_ends):
        yield doc.issue(
            ("front_ends",),
            "fe.weight.all-zero",
            "every front end has weight 0, so the load balancer would send nothing: "
            "give at least one a weight above 0",
        )
    if not pool.test_clients:
        yield doc.issue(
            ("test_clients",),
            "clients.none",
            "list at least one test client: the front ends and the VIP are validated from them",
        )


def port_rules(pool: Pool, profile: Profile, doc: YamlDocument) -> Iterator[ConfigIssue]:
    """`pool.ports` may only say how this pool differs on the profile's own ports."""
    for port, requirement in pool.pool.ports.items():
        where = ("pool", "ports", port)
        if port not in profile.ports:
            yield doc.issue(
                where,
                "pool.ports.unknown",
                f"{port} is not a port of profile {profile.name} "
                f"({', '.join(map(str, profile.ports))})",
                at_key=True,
            )
        elif port in profile.check_ports and requirement != "required":
            yield doc.issue(
                where,
                "pool.ports.check-port",
                f"{port} carries the load balancer's health check: it cannot be {requirement}",
            )


#: keys of a credential that, written with nothing after them (YAML's null), would be
#: read as absent: a key log-in quietly becomes a password one, or none
_MUST_NOT_BE_EMPTY = {
    "key_file": "name the key file",
    "password": "write {env: VARIABLE} or {file: PATH}",
    "passphrase": "write {env: VARIABLE} or {file: PATH}",
}


def _empty_keys(doc: YamlDocument) -> dict[str, list[str]]:
    """Credential name -> the keys written in the file with no value."""
    written = doc.data.get("credentials") if isinstance(doc.data, dict) else None
    empty: dict[str, list[str]] = {}
    for name, cred in (written or {}).items():
        if isinstance(cred, dict):
            keys = [k for k in _MUST_NOT_BE_EMPTY if k in cred and cred[k] is None]
            if keys:
                empty[str(name)] = keys
    return empty


def credential_rules(pool: Pool, profile: Profile, doc: YamlDocument) -> Iterator[ConfigIssue]:
    known = sorted(pool.credentials)
    empty = _empty_keys(doc)
    for written, keys in empty.items():
        for key in keys:
            yield doc.issue(
                ("credentials", written, key),
                "credentials.empty",
                f"an empty {key}: {_MUST_NOT_BE_EMPTY[key]}, or remove the key",
            )
    for path, host in pool.all_hosts():
        name = host.credentials
        if name is None:
            continue
        where = (*path, "transport", "credentials")
        if name not in pool.credentials:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            listed = ", ".join(known) or "none"
            yield doc.issue(
                where,
                "credentials.unknown",
                f"no credential named '{name}' under credentials (defined: {listed}){hint}",
            )
            continue
        if name in empty:
            continue  # what it lacks is said once, where it is written
        cred = pool.credentials[name]
        auth = getattr(host.transport, "auth", None)
        if host.transport.kind == "winrm" and auth != "kerberos" and cred.password is None:
            yield doc.issue(
                where,
                "credentials.winrm-password",
                f"WinRM with {auth} authentication needs a password, and credential "
                f"'{name}' has none",
            )
    for name, cred in pool.credentials.items():
        if cred.passphrase is not None and cred.key_file is None and name not in empty:
            yield doc.issue(
                ("credentials", name, "passphrase"),
                "credentials.passphrase-without-key",
                "a passphrase unlocks a key_file, and this credential has none",
            )


def dns_rules(pool: Pool, profile: Profile, doc: YamlDocument) -> Iterator[ConfigIssue]:
    dns = pool.dns
    zone = dns.zone.lower()
    fqdn = pool.pool.fqdn.lower()
    if fqdn == zone or not fqdn.endswith("." + zone):
        yield doc.issue(
            ("dns", "zone"),
            "dns.zone.outside",
            f"the pool FQDN {pool.pool.fqdn} is not a name inside the zone {dns.zone}, "
            "so the cutover could not update it there",
        )
    if dns.provider == "rfc2136" and not dns.servers:
        # (manual verifies on them too, and says so when it is used: a pool file
        # that never reaches the cutover need not list them)
        yield doc.issue(
            ("dns", "servers"),
            "dns.servers.missing",
            "rfc2136 needs the zone's authoritative servers to update and to check",
        )
    if dns.provider == "rfc2136" and getattr(dns, "tsig", None) is None:
        yield doc.issue(
            ("dns",),
            "dns.tsig.missing",
            "rfc2136 updates are signed: add tsig {name, algorithm, secret: {env: ...}}",
        )
    for i, server in enumerate(dns.verify_exclude):
        if server in dns.verify_servers:
            yield doc.issue(
                ("dns", "verify_exclude", i),
                "dns.verify.excluded-listed",
                f"{server} is both in verify_servers and in verify_exclude: name it in one",
            )
    yield from _moving_names_rules(pool, profile, doc)
    if dns.cutover_ttl > dns.ttl:
        yield doc.issue(
            ("dns", "cutover_ttl"),
            "dns.cutover-ttl",
            f"cutover_ttl ({dns.cutover_ttl}) is above ttl ({dns.ttl}): it is lowered "
            "ahead of cutover so a revert spreads quickly",
        )


def lease_rules(pool: Pool, profile: Profile, doc: YamlDocument) -> Iterator[ConfigIssue]:
    """The lease lives on a Linux host the tool logs in to (or `admin`, this machine)."""
    name = pool.run.lease.host
    if name is None or name == "admin":
        return
    where = ("run", "lease", "host")
    try:
        spec = pool.host(name)
    except KeyError:
        known = ", ".join(["admin", *(h.name for _, h in pool.all_hosts())])
        yield doc.issue(
            where, "run.lease.host", f"no host named {name} in this pool file (hosts: {known})"
        )
        return
    if spec.os != "linux" or spec.transport.kind == "winrm":
        yield doc.issue(
            where,
            "run.lease.host",
            f"the lease lives in a directory on a Linux host reached over ssh (or local); "
            f"{name} is a {spec.os} host",
        )


def decommission_rules(pool: Pool, profile: Profile, doc: YamlDocument) -> Iterator[ConfigIssue]:
    """A peer written as a bare name must be a host of this file (a name with a dot
    that is not one is looked up in the zone at the drain)."""
    for i, peer in enumerate(pool.decommission.peers):
        if "." in peer or pool.address_of(peer) is not None:
            continue
        yield doc.issue(
            ("decommission", "peers", i),
            "decommission.peer.unknown",
            f"no host named {peer} in this pool file: give a peer's address, the name of a "
            "host of this file, or its fully qualified name",
        )


def check_timing_rules(pool: Pool, profile: Profile, doc: YamlDocument) -> Iterator[ConfigIssue]:
    """load_balancer.checks against itself and against the failover drill's patience."""
    checks, drill = pool.load_balancer.checks, pool.load_balancer.failover
    at = (*LB, "checks")
    if checks.timeout > checks.interval:
        # HAProxy connects a check for at most min(timeout connect, inter): a longer
        # timeout would be written and never used
        yield doc.issue(
            (*at, "timeout"),
            "lb.checks.timeout",
            f"the check timeout ({checks.timeout:g} s) must not exceed the interval "
            f"({checks.interval:g} s): HAProxy cuts a check's connect at the interval",
        )
    for count, what, took in (
        ("fall", "taken out of the farm", checks.out_within()),
        ("rise", "put back", checks.back_within()),
    ):
        if took > drill.detect_timeout:
            yield doc.issue(
                (*at, count),
                "lb.checks.detect",
                f"with these checks a member may take {took:g} s to be {what} "
                f"({count} x (interval + timeout)), longer than "
                f"load_balancer.failover.detect_timeout ({drill.detect_timeout:g} s): the "
                "failover drill would fail; check more often or raise detect_timeout",
            )


def _fmt(path: Path_) -> str:
    return format_path(path)


ALL_RULES: tuple[Rule, ...] = (
    topology_rules,
    network_rules,
    snat_rules,
    pair_rules,
    uniqueness_rules,
    front_end_rules,
    port_rules,
    credential_rules,
    dns_rules,
    lease_rules,
    decommission_rules,
    check_timing_rules,
)


def check_pool(pool: Pool, profile: Profile, doc: YamlDocument) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for rule in ALL_RULES:
        issues.extend(rule(pool, profile, doc))
    return issues


def _moving_names_rules(pool: Pool, profile: Profile, doc: YamlDocument) -> Iterator[ConfigIssue]:
    """Every name the cutover moves is inside the zone (the provider changes only
    there); dns.keep names a name the cutover considers, never the pool FQDN."""
    dns, zone = pool.dns, pool.dns.zone.lower()
    sip = dnsnames.is_sip(profile)
    considered = dnsnames.a_names(pool, sip) + dnsnames.srv_names(pool, sip)
    keep = dnsnames.kept(pool)
    for i, name in enumerate(dns.keep):
        key = name.rstrip(".").lower()
        if key == pool.pool.fqdn.lower():
            yield doc.issue(
                ("dns", "keep", i),
                "dns.keep.pool-name",
                f"{name} is the pool FQDN: the cutover moves it, it cannot be kept",
            )
        elif key not in considered:
            yield doc.issue(
                ("dns", "keep", i),
                "dns.keep.unknown",
                f"{name} is not a name the cutover moves (sip.<domain>, dns.names, the "
                "SIP SRV records): nothing to keep",
            )
    for name in considered[1:]:
        if name in keep or name == zone or name.endswith("." + zone):
            continue
        listed = [i for i, n in enumerate(dns.names) if n.rstrip(".").lower() == name]
        where = ("dns", "names", listed[0]) if listed else ("dns", "zone")
        yield doc.issue(
            where,
            "dns.names.outside",
            f"{name} moves with the pool name but is not inside the zone {dns.zone}: "
            "the cutover could not update it there; list it in dns.keep (and move it "
            "yourself) to leave it",
        )
