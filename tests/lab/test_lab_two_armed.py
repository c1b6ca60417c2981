"""Two-armed routed lab: clients reach the FE network only through the LB host."""

from __future__ import annotations

import socket

import pytest

from ocsscale_lab import system

from .conftest import RunningLab

pytestmark = pytest.mark.lab


def _banner(address: str, port: int, timeout: float = 5.0) -> str:
    with socket.create_connection((address, port), timeout=timeout) as sock:
        return sock.makefile("r").readline().strip()


def test_client_reaches_fe_network_through_the_lb(two_armed_lab: RunningLab) -> None:
    lab = two_armed_lab
    fe = lab.topo.host("ocsfe01")
    assert fe.address.startswith("198.19.0.")
    route = system.ip("route", "get", fe.address, ns=lab.topo.ns("client01"))
    assert "via 198.18.0.39" in route
    banner = lab.inside("client01", lambda: _banner(fe.address, 5065))
    assert "server=ocsfe01" in banner
    assert "peer=198.18.0.101" in banner  # routed, not NATed

    # Proof that the LB carries it: with forwarding off, the FE is unreachable.
    lb_ns = lab.topo.ns("lb01")
    system.sysctl(lb_ns, "net.ipv4.ip_forward", "0")
    try:
        with pytest.raises(OSError):
            lab.inside("client01", lambda: _banner(fe.address, 5065, timeout=1.0))
    finally:
        system.sysctl(lb_ns, "net.ipv4.ip_forward", "1")
    assert "server=ocsfe01" in lab.inside("client01", lambda: _banner(fe.address, 5065))


def test_directory_reachable_on_135_from_fes_across_the_lb(two_armed_lab: RunningLab) -> None:
    lab = two_armed_lab
    for fe in lab.topo.by_role("fe"):
        line = lab.inside(fe.name, lambda: _banner(lab.address("dc01"), 135))
        assert line.startswith("ocsscale-directory server=dc01")
        assert f"peer={fe.address}:" in line


def test_fes_see_each_other_without_nat(two_armed_lab: RunningLab) -> None:
    lab = two_armed_lab
    one, two = lab.topo.by_role("fe")[:2]
    banner = lab.inside(one.name, lambda: _banner(two.address, 5065))
    assert f"server={two.name}" in banner and f"peer={one.address}" in banner
