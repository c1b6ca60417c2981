"""`lab up --fault HOST:KIND` specs are checked before anything is built (no root needed)."""

from __future__ import annotations

import pytest

from ocsscale.errors import UsageError
from ocsscale_lab import faults
from ocsscale_lab.faults import Fault
from ocsscale_lab.topology import build

TOPO = build("spec", "one-armed", 2)


def test_faults_parse_and_round_trip_through_the_lab_state() -> None:
    specs = [
        "ocsfe01:bad-san",
        "ocsfe02:close:444",
        "ocsfe02:tls10",
        "ocsfe01:tls10-3des",
        "client01:hosts-readonly",
        "client02:hosts-readonly",
        "client02:powershell-1.0",
        "client02:locale-de",
        "client02:hosts-moved",
    ]
    parsed = faults.parse_all(specs, TOPO, "ocs2007r2")
    assert parsed == [
        Fault("ocsfe01", "bad-san"),
        Fault("ocsfe02", "close", 444),
        Fault("ocsfe02", "tls10"),
        Fault("ocsfe01", "tls10-3des"),
        Fault("client01", "hosts-readonly"),
        Fault("client02", "hosts-readonly"),
        Fault("client02", "powershell-1.0"),
        Fault("client02", "locale-de"),
        Fault("client02", "hosts-moved"),
    ]
    assert [str(f) for f in parsed] == specs
    assert faults.from_state(specs) == parsed
    assert faults.closed_ports(parsed, "ocsfe02") == [444]
    assert faults.has(parsed, "client02", "hosts-readonly")
    assert not faults.has(parsed, "ocsfe02", "bad-san")
    assert faults.has(parsed, "ocsfe02", "tls10") and not faults.has(parsed, "ocsfe01", "tls10")
    assert faults.has(parsed, "ocsfe01", "tls10-3des")


def test_a_front_end_gets_one_tls_fault() -> None:
    with pytest.raises(UsageError, match="ocsfe01 gets tls10 or tls10-3des, not both"):
        faults.parse_all(["ocsfe01:tls10", "ocsfe01:tls10-3des"], TOPO, "ocs2007r2")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ocsfe01", "write HOST:KIND"),
        ("ocsfe09:bad-san", "has no host 'ocsfe09'"),
        ("client01:bad-san", "runs no pool member"),
        ("dc01:tls10", "runs no pool member"),
        ("client01:tls10-3des", "runs no pool member"),
        ("ocsfe01:close:22", "one of the profile's ports"),
        ("ocsfe01:close:x", "one of the profile's ports"),
        ("ocsfe01:close:²", "one of the profile's ports"),  # a digit to isdigit(), not to int()
        ("admin:hosts-readonly", "not a host the tool pins"),
        ("dc01:hosts-readonly", "not a host the tool pins"),
        ("ocsfe01:melt", "unknown kind 'melt'"),
        ("client01:powershell-1.0", "not a Windows host"),
        ("client01:locale-de", "not a Windows host"),
        ("client01:hosts-moved", "not a Windows host"),
        ("ocsfe01:locale-de", "not a Windows host"),
    ],
)
def test_bad_fault_specs_are_usage_errors(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        faults.parse(spec, TOPO, "ocs2007r2")


def test_the_same_fault_twice_is_refused() -> None:
    with pytest.raises(UsageError, match="twice"):
        faults.parse_all(["ocsfe01:bad-san", "ocsfe01:bad-san"], TOPO, "ocs2007r2")


@pytest.mark.parametrize("kind", ["locale-de", "powershell-1.0", "hosts-readonly"])
def test_windows_faults_apply_to_windows_front_ends(kind: str) -> None:
    windows = build("fcheck", fe_os="windows")
    for host in ("ocsfe00", "ocsfe01"):
        assert faults.parse(f"{host}:{kind}", windows, "ocs2007r2").kind == kind
    assert faults.parse("ocsfe01:bad-san", windows, "ocs2007r2").kind == "bad-san"
