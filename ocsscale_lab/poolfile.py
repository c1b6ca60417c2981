"""The lab's own pool file: the running lab described for `ocsscale -c FILE ...`.

Credentials are references only (the lab key file, a password file, the TSIG
secret file), as in any pool file; the Windows client is reached over HTTPS
with the lab CA as trust anchor.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import appliance, dns, hostsvc, lbhost
from .state import LabState
from .topology import DOMAIN, FE_NET, POOL_FQDN, VIP, LabHost, Topology


def _q(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML scalar


def _ssh(state: LabState, host: LabHost) -> list[str]:
    return [
        "kind: ssh",
        "credentials: lab-root",
        "port: 22",
        f"known_hosts: {_q(str(state.ssh_dir / 'known_hosts'))}",
        "trust_unknown_host_keys: false",
        f"service_command: {_q(hostsvc.service_command(state, host))}",
        f"service_control: {_q(hostsvc.service_command(state, host, '{action}'))}",
        'hosts_file: "/etc/hosts"',
    ]


def _winrm(state: LabState) -> list[str]:
    return [
        "kind: winrm",
        "credentials: lab-windows",
        f"port: {hostsvc.WINRM_PORT}",
        "scheme: https",
        "auth: ntlm",
        f"ca_bundle: {_q(str(state.ca_dir / 'ca.pem'))}",
        "verify_tls: true",
    ]


def host_lines(state: LabState, host: LabHost, indent: str, item: bool = False) -> list[str]:
    """A host entry; `item` makes it a list item (`- name: ...`)."""
    transport = _winrm(state) if host.os == "windows" else _ssh(state, host)
    pad = indent + "  " if item else indent
    lines = [
        f"{indent}{'- ' if item else ''}name: {host.name}",
        f"{pad}fqdn: {host.fqdn}",
        f"{pad}address: {host.address}",
    ]
    if host.role == "fe":
        lines.append(f"{pad}weight: 1")
    return lines + [f"{pad}transport:"] + [f"{pad}  {line}" for line in transport]


def _dns_provider(state: LabState, dns_host: LabHost, dc: LabHost) -> list[str]:
    """rfc2136 to the lab's BIND; with `--dns ad`, the Windows provider on the
    domain controller dc01 (its WinRM stand-in changes dns01's records)."""
    if state.dns != "ad":
        return [
            "  provider: rfc2136",
            "  tsig:",
            f"    name: {dns.TSIG_NAME}",
            f"    algorithm: {dns.TSIG_ALGORITHM}",
            f"    secret: {{file: {_q(str(tsig_secret_file(state)))}}}",
        ]
    return [
        "  provider: windows  # an AD-integrated zone: each DNS server has its own serial",
        "  host:",
        f"    name: {dc.name}",
        f"    fqdn: {dc.fqdn}",
        f"    address: {dc.address}",
        "    transport:",
        *(f"      {line}" for line in _winrm(state)),
    ]


def render(state: LabState, topo: Topology) -> str:
    legacy = topo.by_role("legacy-fe")[0]
    lb = topo.by_role("lb")[0]
    dns_host = topo.by_role("dns")[0]
    dc = topo.by_role("directory")[0]
    two_armed = topo.kind == "two-armed-routed"
    link = state.bin_dir / "lab-link"
    # the LB's arm on the FE network (a pair's floats: FE_NET.40, as the FEs' gateway)
    inside = (f"{FE_NET}.40" if state.lb_pair else lb.interfaces[1].address) if two_armed else None
    lines = [
        f"# ocsscale pool file for lab {topo.lab!r} ({topo.kind}); written by `ocsscale lab up`.",
        "# Use it from the admin host:",
        f"#   ocsscale lab exec admin -n {topo.lab} -- ocsscale -c {state.pool_file} plan",
        "version: 1",
        "",
        "pool:",
        f"  fqdn: {POOL_FQDN}",
        f"  sip_domain: {DOMAIN}",
        f"  ca_bundle: {_q(str(state.ca_dir / 'ca.pem'))}",
        "",
        f"profile: {hostsvc.PROFILE}",
        "",
        "legacy_fe:",
        *host_lines(state, legacy, "  "),
        "",
        "front_ends:",
    ]
    for fe in topo.by_role("fe"):
        lines += host_lines(state, fe, "  ", item=True)
    lines += ["", "test_clients:"]
    for client in topo.by_role("client") + topo.by_role("windows-client"):
        lines += host_lines(state, client, "  ", item=True)
    lines += [
        "",
        "directory:",
        f"  name: {dc.name}",
        f"  fqdn: {dc.fqdn}",
        f"  address: {dc.address}",
        "  port: 135",
        "",
        "load_balancer:",
        *(
            appliance.driver_lines("  ")
            if state.lb == "appliance"
            else lbhost.driver_lines(state, topo, state.lb, "  ", state.lb_pair)
        ),
        f"  topology: {topo.kind}",
        "  mode: full-proxy",
        f"  vip: {VIP}/24",
    ]
    if inside:
        lines.append(f"  backend_address: {inside}/24")
    lines += [
        f"  snat_addresses: [{inside or VIP}]",
        "  expected_peak_connections: 20000",
        "  failover:  # the drill pulls an FE's cable at the lab's switch, not over its own link",
        f"    link_down_command: {_q(f'{link} --host {{name}} down')}",
        f"    link_up_command: {_q(f'{link} --host {{name}} up')}",
        *_lb_hosts(state, topo, lb),
        "",
        "dns:",
        *_dns_provider(state, dns_host, dc),
        f"  servers: [{dns_host.address}]",
        f"  zone: {DOMAIN}",
        f"  ttl: {dns.POOL_TTL}",
        f"  cutover_ttl: {dns.CUTOVER_TTL}",
        f"  watch_window: {dns.WATCH_WINDOW}",
        f"  watch_interval: {dns.WATCH_INTERVAL}",
        "",
        "run:  # the run lease under this lab's directory (not another lab's)",
        "  lease:",
        *(["    host: admin  # the appliance keeps no lease"] if state.lb == "appliance" else []),
        f"    dir: {_q(str(lbhost.paths(state, topo)['leases']))}",
        "",
        "credentials:",
        "  lab-root:",
        "    username: root",
        f"    key_file: {_q(str(state.ssh_dir / 'id_ed25519'))}",
        "  lab-windows:",
        f"    username: {_q(hostsvc.WINDOWS_LOGON)}",
        f"    password: {{file: {_q(str(hostsvc.windows_password_file(state)))}}}",
    ]
    return "\n".join(lines) + "\n"


def _lb_hosts(state: LabState, topo: Topology, lb: LabHost) -> list[str]:
    if state.lb == "appliance":
        return []  # a packet-forwarding appliance is no host the tool logs on to
    if state.lb_pair:
        return lbhost.pair_lines(state, topo, "  ")
    return ["  host:", *host_lines(state, lb, "    ")]


def tsig_secret_file(state: LabState) -> Path:
    return state.secrets_dir / "tsig-secret"


def write(state: LabState, topo: Topology) -> Path:
    state.pool_file.write_text(render(state, topo), encoding="utf-8")
    return state.pool_file
