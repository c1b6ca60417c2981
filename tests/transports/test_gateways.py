"""Default gateways read back: `ip -4 route show default` and WMI's DefaultIPGateway
parsed, failing closed on anything else; the WinRM stand-in's answer from a routing
table in /proc/net/route's format."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsscale.errors import TransportError
from ocsscale.transports.gateways import parse_ip_route, parse_windows
from ocsscale_lab.winrm_host.winnet import default_gateways as standin_gateways


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("default via 198.18.2.40 dev eth0 \n", ["198.18.2.40"]),
        ("default via 10.0.1.40 dev eth0 proto dhcp src 10.0.1.41 metric 100\n", ["10.0.1.40"]),
        ("", []),
        (
            "default via 10.0.1.40 dev eth0 metric 100\ndefault via 10.0.1.1 dev eth1 metric 200\n",
            ["10.0.1.40", "10.0.1.1"],
        ),
        (
            "default proto static metric 100 \n"
            "\tnexthop via 10.0.1.40 dev eth0 weight 1 \n"
            "\tnexthop via 10.0.1.1 dev eth1 weight 1 \n",
            ["10.0.1.40", "10.0.1.1"],
        ),
    ],
)
def test_ip_route_gateways_are_read(output: str, expected: list[str]) -> None:
    assert parse_ip_route("ocsfe01", output) == expected


@pytest.mark.parametrize(
    "output",
    [
        "default dev ppp0 scope link\n",  # no gateway: not the LB's address, not a guess
        "unreachable default\n",
        "default via fe80::1 dev eth0\n",
        "Error: ip: command not understood\n",
        "default via\n",
    ],
)
def test_anything_else_is_unreadable_not_skipped(output: str) -> None:
    with pytest.raises(TransportError, match="ocsfe01: unreadable default route"):
        parse_ip_route("ocsfe01", output)


def test_wmi_gateways_keep_ipv4_and_refuse_garbage() -> None:
    assert parse_windows("fe", {"gateways": ["10.0.1.40", "fe80::1", "10.0.1.40"]}) == ["10.0.1.40"]
    assert parse_windows("fe", {"gateways": "10.0.1.40"}) == ["10.0.1.40"]  # one, unwrapped
    assert parse_windows("fe", {"gateways": []}) == []
    for bad in ({"gateways": ["10.0.1"]}, {"gateways": [5]}, {"gateways": {"a": 1}}):
        with pytest.raises(TransportError, match="fe: unreadable"):
            parse_windows("fe", bad)


def test_the_standin_answers_the_default_routes_of_its_routing_table(tmp_path: Path) -> None:
    table = tmp_path / "route"
    table.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t280212C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t000212C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "eth1\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n"
    )
    # 280212C6 is 198.18.2.40 in the host's byte order; the device route has no gateway
    assert standin_gateways(table) == {"gateways": ["198.18.2.40"]}
