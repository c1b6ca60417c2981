"""`ocsscale lab up`: build the whole lab, start its servers, write its pool file.

Order matters only for the journal: every object is recorded before it is
made (state.py), so a crash at any point leaves something `lab down` can
remove. A failure during `up` takes the half-built lab down at once.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from . import (
    appliance,
    dns,
    down,
    faults,
    hostsvc,
    lbhost,
    network,
    poolfile,
    services,
    sshd,
    system,
)
from . import ca as labca
from . import state as labstate
from .faults import Fault
from .services import Service
from .state import LabState
from .system import LabError
from .topology import LabHost, Topology, TopologyKind, build

Echo = Callable[[str], None]
REQUIRED_PROGRAMS = {sshd.SSHD: "openssh-server", dns.NAMED: "bind9"}
#: `--dns ad`: seconds before a change reaches the other DNS servers (intra-site AD)
DEFAULT_DNS_REPLICATION = 3.0
MAX_DNS_REPLICATION = 600.0


def check_prerequisites(lb: str = "engine", lb_pair: bool = False) -> None:
    system.require_root_linux()
    needed = dict(REQUIRED_PROGRAMS)
    if lb_pair:
        needed[lbhost.KEEPALIVED] = "keepalived"
    if lb == "haproxy":
        needed[lbhost.HAPROXY] = "haproxy"
    if lb == "appliance":
        needed[appliance.NFT] = "nftables"
    missing = [pkg for prog, pkg in needed.items() if not os.access(prog, os.X_OK)]
    if missing:
        raise labstate.UsageError(
            f"the lab needs {', '.join(missing)}",
            hint=f"apt-get install {' '.join(missing)}",
        )


def up(
    name: str,
    kind: TopologyKind,
    fes: int,
    *,
    lb_forwarding: bool = True,
    fault_specs: list[str] | None = None,
    lb: str = "engine",
    dns_kind: str = "bind",
    dns_servers: int = 2,
    dns_replication: float = DEFAULT_DNS_REPLICATION,
    fe_os: str = "linux",
    lb_pair: bool = False,
    echo: Echo = print,
) -> LabState:
    """Build lab `name`; `fault_specs` are `HOST:KIND` faults (see faults.py); `lb` is
    the load balancer installed, unconfigured, on the LB host (lbhost.LB_KINDS);
    `dns_kind` "ad" plays an AD-integrated zone on `dns_servers` DNS servers whose
    changes reach the others `dns_replication` seconds late (lab/dns.py); `fe_os`
    "windows" makes the front ends, the legacy one included, Windows hosts."""
    if not 0 <= dns_replication <= MAX_DNS_REPLICATION:
        raise labstate.UsageError(
            f"--dns-replication must be from 0 to {MAX_DNS_REPLICATION:g} seconds"
        )
    # validates before any change
    topo = build(
        name,
        kind,
        fes,
        lb_forwarding=lb_forwarding,
        dns=dns_kind,
        dns_servers=dns_servers,
        fe_os=fe_os,
        lb_pair=lb_pair,
    )
    lab_faults = faults.parse_all(list(fault_specs or []), topo, hostsvc.PROFILE)
    if lb not in lbhost.LB_KINDS:
        raise labstate.UsageError(f"--lb must be one of {', '.join(lbhost.LB_KINDS)}, not {lb!r}")
    if lb_pair and lb not in lbhost.PAIR_KINDS:
        raise labstate.UsageError(
            f"--lb-pair pairs {' or '.join(lbhost.PAIR_KINDS)} hosts with keepalived, not {lb!r}"
        )
    check_prerequisites(lb, lb_pair)
    with labstate.machine_lock():
        state = labstate.create(
            name,
            kind,
            fes,
            lb_forwarding,
            [str(f) for f in lab_faults],
            lb=lb,
            dns=(dns_kind, len(topo.by_role("dns")), dns_replication if dns_kind == "ad" else 0.0),
            fe_os=fe_os,
            lb_pair=lb_pair,
        )
        try:
            _build(state, topo, lab_faults)
        except BaseException:
            echo(f"lab {name}: start failed; removing what was built")
            down.teardown(state)
            raise
    return state


def _build(state: LabState, topo: Topology, lab_faults: list[Fault]) -> None:
    for d in (state.secrets_dir, state.ssh_dir, state.ca_dir):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    hostsvc.write_wrappers(state)

    network.add_blackhole(state)
    network.add_backup_mount_point(state)
    network.build_switch(state, topo)
    for index, host in enumerate(topo.hosts):
        network.build_host(state, topo, index, host)

    to_start = _write_host_files(state, topo, lab_faults)
    _start_all(state, to_start)
    _install_lb(state, topo)
    poolfile.write(state, topo)
    state.complete = True
    state.save()


def _write_host_files(state: LabState, topo: Topology, lab_faults: list[Fault]) -> list[Service]:
    """Keys, certificates and configuration for every server; what to start."""
    sshd.make_client_key(state.ssh_dir, topo.lab)
    to_start: list[Service] = []
    known_hosts: list[str] = []
    for host in topo.hosts:
        if host.runs_sshd:
            service, known = sshd.write_host(
                topo,
                host,
                state.host_dir(host.name),
                state.ssh_dir,
                hosts_readonly=faults.has(lab_faults, host.name, "hosts-readonly"),
            )
            to_start.append(service)
            known_hosts.append(known)
    (state.ssh_dir / "known_hosts").write_text("\n".join(known_hosts) + "\n")
    _admin_ssh_client(state, topo)

    ca = labca.create_ca(state.ca_dir, common_name=f"ocsscale lab {topo.lab} CA")
    dns_host = topo.by_role("dns")[0]
    if state.dns == "ad":
        cut_off = [f.host for f in lab_faults if f.kind == "no-replication"]
        to_start += dns.ad_services(
            topo, state.host_dir, poolfile.tsig_secret_file(state), state.dns_replication, cut_off
        )
    else:
        to_start.append(
            dns.write_config(
                topo, state.host_dir(dns_host.name) / "named", poolfile.tsig_secret_file(state)
            )
        )
    for host in topo.hosts:
        if host.runs_poolmember:
            to_start.extend(
                hostsvc.poolmember(
                    state,
                    topo,
                    host,
                    ca,
                    bad_san=faults.has(lab_faults, host.name, "bad-san"),
                    closed=tuple(faults.closed_ports(lab_faults, host.name)),
                    tls10=faults.has(lab_faults, host.name, "tls10"),
                    tls10_3des=faults.has(lab_faults, host.name, "tls10-3des"),
                )
            )
        elif host.role == "directory":
            to_start.append(hostsvc.directory(topo, host))
            if state.dns == "ad":  # the domain controller is the Windows DNS server
                to_start.append(hostsvc.winrm(state, topo, host, ca))
        if host.os == "windows":  # the Windows client, and Windows front ends
            to_start.append(_windows_host(state, topo, host, ca, lab_faults))
    return to_start


def _windows_host(
    state: LabState, topo: Topology, host: LabHost, ca: labca.LabCA, lab_faults: list[Fault]
) -> Service:
    return hostsvc.winrm(
        state,
        topo,
        host,
        ca,
        hosts_readonly=faults.has(lab_faults, host.name, "hosts-readonly"),
        powershell="1.0" if faults.has(lab_faults, host.name, "powershell-1.0") else None,
        locale="de" if faults.has(lab_faults, host.name, "locale-de") else "en",
        hosts_moved=faults.has(lab_faults, host.name, "hosts-moved"),
    )


def _install_lb(state: LabState, topo: Topology) -> None:
    """Define the LB service (recorded, so `lab down` stops it); configure-lb starts it.
    The appliance is powered on with the lab: its firmware starts now, with no farm."""
    if state.lb == "appliance":
        firmware = appliance.install(state, topo)
        _start_all(state, [firmware])
        appliance.wait_applied(appliance.paths(state, topo)["view"], 0)
        return
    first_port = hostsvc.load_profile(hostsvc.PROFILE).check_ports[0]
    if state.lb_pair:
        lbhost.write_vrrp_secret(state)
    for service in lbhost.services(state, topo, state.lb, first_port, state.lb_pair):
        services.define(state.directory, service)
        state.record("service", host=service.host, service=service.name)


def _admin_ssh_client(state: LabState, topo: Topology) -> None:
    # /etc/netns/<ns>/ssh is bind-mounted over /etc/ssh in the admin namespace
    # only: `ssh ocsfe01` there uses the lab key and known_hosts.
    if not Path("/etc/ssh").is_dir():
        return
    admin_ssh = network.ETC_NETNS / topo.ns("admin") / "ssh"
    admin_ssh.mkdir(parents=True, exist_ok=True)
    (admin_ssh / "ssh_config").write_text(sshd.admin_ssh_config(state.ssh_dir))
    shutil.copy(state.ssh_dir / "known_hosts", admin_ssh / "ssh_known_hosts")


def _start_all(state: LabState, to_start: list[Service]) -> None:
    """Start every server at once, then wait for each to listen."""
    if not sshd.PRIVSEP_DIR.is_dir():
        (labstate.LAB_ROOT / labstate.PRIVSEP_MARKER).touch()
        sshd.PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    started: list[tuple[Service, int]] = []
    for service in to_start:
        services.define(state.directory, service)
        state.record("service", host=service.host, service=service.name)
        started.append((service, services.spawn(state.directory, service)))
    for service, pid in started:
        services.wait_ready(state.directory, service, pid)


__all__ = ["LabError", "up"]
