"""The manual driver's checklists in each vendor's words (providers/lb/vendors.py,
templates/lb-vendors/): every value an appliance needs is in the lines a person
reads and in the `data` a machine reads, and the two agree."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import pytest
from typer.testing import CliRunner

from ocsscale.cli.main import app
from ocsscale.config import load_pool
from ocsscale.config.lb_settings import VENDORS, Vendor
from ocsscale.operator import NoOperator
from ocsscale.providers.lb import open_driver
from ocsscale.providers.lb.base import ADMIN_STATES, CheckTiming, FarmSpec, LbSite, Member
from ocsscale.providers.lb.manual import ManualDriver, routing_checklist
from ocsscale.providers.lb.vendors import (
    farm_checklist,
    member_checklist,
    revert_checklist,
    vendor_file,
    vendors_dir,
)
from ocsscale.providers.plugin import Ports
from tests.config.helpers import ONE_ARMED, variant, write

#: words only that vendor's checklist uses (the product's own terms)
OWN_WORDS = {
    "webmux": ["“generic TCP”", "“generic no healthcheck TCP”", "“Setup” screen", "add-addr/port"],
    "f5": [
        "Ratio Least Connections (member)",
        "Fast L4",
        "Idle Timeout 1800 seconds",
        "Availability Requirement: All",
        "SNAT Pool",
        "Performance (Layer 4)",
    ],
    "kemp": ["Virtual Service", "Real Server", "weighted least connection", "Transparency off"],
    "netscaler": ["add lb vserver", "serviceGroup", "LEASTCONNECTION", "-usip NO", "USNIP"],
    "generic": ["weighted least connections", "Source NAT on"],
}
STATE_WORDS = {
    "f5": {"ready": "State Enabled", "drain": "State Disabled", "maint": "State Forced Offline"},
    "kemp": {"ready": "Enable", "drain": "Drain Time", "maint": "Disable"},
    "netscaler": {
        "ready": "enable server",
        "drain": "-graceFul YES",
        "maint": "disable server",
    },
    "webmux": {"ready": "enable it", "drain": "drain it", "maint": "disable it"},
    "generic": {"ready": "enable it", "drain": "drain it", "maint": "out of service"},
}


def farm(**changes: Any) -> FarmSpec:
    """Three front ends at 2:1:1, two SNAT addresses, the R2 profile's ports."""
    values: dict[str, Any] = {
        "name": "ocspool",
        "vip": "198.18.1.40",
        "vip_prefix": 24,
        "ports": (5061, 5060, 135, 443, 444, 5065, 5069, 5071, 5072, 5073, 5074, 8404, 80),
        "check_ports": (5061, 444),
        "idle_timeout": 1800,
        "members": (
            Member("ocsfe01", "198.18.2.11", 2),
            Member("ocsfe02", "198.18.2.12", 1),
            Member("ocsfe03", "198.18.2.13", 1),
        ),
        "snat_addresses": ("198.18.2.40", "198.18.2.41"),
    }
    return FarmSpec(**{**values, **changes})


REQUIRED = (5061, 135, 443, 444, 5065, 5071, 5072, 5073, 5074)


def has_number(text: str, number: int) -> bool:
    return re.search(rf"(?<![\d.]){number}(?!\d|\.\d)", text) is not None


def has_address(text: str, address: str) -> bool:
    return re.search(rf"(?<![\d.]){re.escape(address)}(?!\d|\.\d)", text) is not None


def member_lines(lines: Sequence[str], member: dict[str, Any]) -> list[str]:
    """The lines that name the member with its address."""
    found = [ln for ln in lines if member["name"] in ln and has_address(ln, member["address"])]
    assert found, f"no line names {member['name']} with {member['address']}: {lines}"
    return found


def weighed(lines: Sequence[str], member: dict[str, Any]) -> bool:
    """A line names the member with its address and its weight."""
    return any(has_number(ln, member["weight"]) for ln in member_lines(lines, member))


def test_the_pool_files_vendor_choices_are_the_shipped_files() -> None:
    """config/ holds the names (the choice is a pool-file rule), templates/ the files:
    a file without a choice, or a choice without a file, is caught here."""
    shipped = {p.stem for p in vendors_dir().glob("*.yaml")}
    assert shipped == set(VENDORS) == set(get_args(Vendor))


def test_every_vendor_file_names_its_sources() -> None:
    for vendor in VENDORS:
        spec = vendor_file(vendor)
        assert spec.vendor == vendor and spec.sources
        for source in spec.sources:
            assert source.url.startswith(("https://", "walkthrough: ")) and source.title


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_farm_checklist_says_everything_its_data_holds(vendor: str) -> None:
    spec = farm()
    checklist = farm_checklist(vendor, spec, REQUIRED)
    data, lines = checklist.data, checklist.lines
    text = "\n".join(lines)
    # the spec's shape (section 1 of the shared interfaces)
    assert data["kind"] == "farm" and data["vendor"] == vendor
    assert (data["vip"], data["vip_prefix"]) == ("198.18.1.40", 24)
    assert data["ports"] == list(spec.ports) and data["check_ports"] == [5061, 444]
    assert data["required_ports"] == list(REQUIRED)
    assert data["optional_ports"] == [5060, 5069, 8404, 80]
    assert data["idle_timeout"] == 1800 and data["snat"] is True
    assert data["scheduling"] == "weighted-least-connections"
    assert data["snat_addresses"] == ["198.18.2.40", "198.18.2.41"]
    assert data["members"] == [
        {"name": "ocsfe01", "address": "198.18.2.11", "weight": 2},
        {"name": "ocsfe02", "address": "198.18.2.12", "weight": 1},
        {"name": "ocsfe03", "address": "198.18.2.13", "weight": 1},
    ]
    # ... and every value of it is in the lines a person reads
    assert has_address(text, data["vip"])
    for port in data["ports"] + data["check_ports"] + data["optional_ports"]:
        assert has_number(text, port), port
    for address in data["snat_addresses"]:
        assert has_address(text, address), address
    assert has_number(text, data["idle_timeout"])
    for member in data["members"]:
        assert weighed(lines, member), member
    # in the product's own words
    for words in OWN_WORDS[vendor]:
        assert words in text, words
    assert checklist.title.startswith("Enter these settings on the ")


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_check_ports_are_named_as_checks(vendor: str) -> None:
    """The health-check sentence names both check ports (not just the port list)."""
    lines = farm_checklist(vendor, farm(check_ports=(5061, 444)), REQUIRED).lines
    checks = [ln for ln in lines if re.search(r"check|[Mm]onitor", ln)]
    assert any(has_number(ln, 5061) and has_number(ln, 444) for ln in checks), checks


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_revert_and_member_checklists_carry_their_data(vendor: str) -> None:
    spec = farm()
    revert = revert_checklist(vendor, spec)
    assert revert.data == {
        "kind": "farm-revert",
        "vendor": vendor,
        "product": vendor_file(vendor).product,
        "name": "ocspool",
        "vip": "198.18.1.40",
        "ports": list(spec.ports),
        "members": farm_checklist(vendor, spec, REQUIRED).data["members"],
    }
    text = "\n".join(revert.lines)
    assert has_address(text, spec.vip) and all(has_number(text, p) for p in spec.ports)
    for member in revert.data["members"]:
        member_lines(revert.lines, member)
    for state in ADMIN_STATES:
        told = member_checklist(vendor, spec, "ocsfe02", state)
        assert told.data == {
            "kind": "member-state",
            "vendor": vendor,
            "product": vendor_file(vendor).product,
            "member": "ocsfe02",
            "address": "198.18.2.12",
            "state": state,
        }
        assert "ocsfe02" in told.title
        (line,) = member_lines(told.lines, {"name": "ocsfe02", "address": "198.18.2.12"})
        assert STATE_WORDS[vendor][state] in line, (state, line)
    with pytest.raises(KeyError):
        member_checklist(vendor, spec, "ocsfe09", "drain")


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("enable", [True, False])
def test_the_routing_checklist(vendor: str, enable: bool) -> None:
    front_ends = [
        {"name": "ocsfe01", "address": "198.18.2.11"},
        {"name": "ocsfe02", "address": "198.18.2.12"},
    ]
    lines, data = routing_checklist(
        vendor,
        enable=enable,
        backend_address="198.18.2.1/24",
        vip="198.18.1.40/24",
        front_ends=front_ends,
    )
    assert {k: data[k] for k in ("kind", "vendor", "enable", "backend_address", "vip")} == {
        "kind": "routing",
        "vendor": vendor,
        "enable": enable,
        "backend_address": "198.18.2.1",
        "vip": "198.18.1.40",
    }
    assert data["front_ends"] == front_ends and data["title"]
    text = "\n".join(lines)
    assert has_address(text, "198.18.2.1") and has_address(text, "198.18.1.40")
    for fe in front_ends:  # the default gateway, front end by front end
        assert any(has_address(ln, "198.18.2.1") for ln in member_lines(lines, fe))
    if enable:
        assert re.search(r"(?i)no (VIP|virtual|lb vserver)|not configure any virtual", text)
        assert "135" in text  # the walkthrough's proof: telnet to the directory on 135
    else:
        assert re.search(r"(?i)disable|clear|delete|off", text)


def test_routing_takes_the_pool_files_front_ends_and_old_spellings() -> None:
    loaded = load_pool(Path(__file__).resolve().parents[3] / "examples" / "two-armed-routed.yaml")
    lb = loaded.pool.load_balancer
    lines, data = routing_checklist(
        "WebMux",
        enable=True,
        backend_address=lb.backend_address,
        vip=lb.vip,
        front_ends=loaded.pool.front_ends,
    )
    assert data["vendor"] == "webmux" and "“Enable Routing”" in "\n".join(lines)
    assert [fe["name"] for fe in data["front_ends"]] == [fe.name for fe in loaded.pool.front_ends]
    assert data["backend_address"] == str(lb.backend_address.ip)
    with pytest.raises(Exception, match="one of webmux, f5, kemp, netscaler, generic"):
        routing_checklist("cisco", enable=True, backend_address="198.18.2.1", vip="", front_ends=[])


@pytest.mark.parametrize("vendor", VENDORS)
def test_hostile_values_are_text_never_template(vendor: str) -> None:
    """Long names, many members, template syntax in a name: rendered as written."""
    long = "x" * 63
    members = tuple(
        Member(f"{long[:60]}{n:03d}", f"198.18.{2 + n // 250}.{n % 250 + 1}", n % 7 + 1)
        for n in range(120)
    )
    hostile = Member("{{ 7*191 }}{% for x in range(9**9) %}", "198.18.9.9", 3)
    spec = farm(name=long, members=(*members, hostile))
    checklist = farm_checklist(vendor, spec, REQUIRED)
    text = "\n".join(checklist.lines)
    assert "{{ 7*191 }}" in text and "1337" not in text
    for member in checklist.data["members"]:
        assert weighed(checklist.lines, member), member
    assert long in text or vendor in ("webmux", "generic")  # names its objects by the pool
    revert = revert_checklist(vendor, spec)
    assert all(m.name in "\n".join(revert.lines) for m in spec.members)
    told = member_checklist(vendor, spec, hostile.name, "maint")
    assert hostile.name in "\n".join(told.lines)


class Answering:
    """A person at the console who reads what is shown and answers "done"."""

    def __init__(self) -> None:
        self.told: list[tuple[str, list[str], dict[str, Any] | None]] = []

    def tell(self, title: str, lines: Sequence[str], data: dict[str, Any] | None = None) -> None:
        self.told.append((title, list(lines), data))

    def ask(self, question: str, choices: Sequence[str], default: str | None = None) -> str:
        return "done"

    def text(self, question: str, default: str = "") -> str:
        raise AssertionError(question)


def manual_pool(tmp_path: Path, vendor: str) -> Path:
    text = variant(
        ONE_ARMED,
        (
            "  driver: engine                     # engine (bundled) | haproxy | manual",
            f"  driver: {{kind: manual, vendor: {vendor}}}",
        ),
    )
    return write(tmp_path, text)


@pytest.mark.parametrize("vendor", ["f5", "Kemp", "netscaler"])
def test_the_driver_tells_lines_with_data_and_emits_both(tmp_path: Path, vendor: str) -> None:
    loaded = load_pool(manual_pool(tmp_path, vendor))
    operator, events = Answering(), []
    ports = Ports(operator=operator, emit=lambda kind, data: events.append((kind, dict(data))))
    site = LbSite.from_pool(loaded.pool, loaded.profile)
    driver = open_driver(loaded.pool.load_balancer.driver, site, ports)
    assert isinstance(driver, ManualDriver) and driver.settings.vendor == vendor.lower()
    assert vendor_file(vendor.lower()).product in driver.target()
    planned = FarmSpec.from_pool(loaded.pool, loaded.profile)
    driver.apply_farm(planned, driver.read_farm())
    driver.set_member("ocsfe01", "drain")
    driver.revert(driver.undo_for({}))
    kinds = [data["kind"] for _, _, data in operator.told if data]
    assert kinds == ["farm", "member-state", "farm-revert"] and len(operator.told) == 3
    farm_data = operator.told[0][2]
    assert farm_data is not None and farm_data["required_ports"] == loaded.profile.required_ports
    assert farm_data["optional_ports"] == loaded.profile.optional_ports
    assert [kind for kind, _ in events] == ["checklist"] * 3
    for (title, lines, data), (_, event) in zip(operator.told, events, strict=True):
        assert event == {"title": title, "steps": lines, "data": data}


def test_a_revert_journaled_with_an_old_vendor_text_speaks_the_pool_files(tmp_path: Path) -> None:
    loaded = load_pool(manual_pool(tmp_path, "kemp"))
    operator = Answering()
    site = LbSite.from_pool(loaded.pool, loaded.profile)
    driver = open_driver(loaded.pool.load_balancer.driver, site, Ports(operator=operator))
    driver.revert({**driver.undo_for({}), "vendor": "lab appliance"})
    driver.revert({**driver.undo_for({}), "vendor": "F5"})
    assert [data["vendor"] for _, _, data in operator.told if data] == ["kemp", "f5"]


def test_no_operator_keeps_the_data_it_was_told() -> None:
    nobody = NoOperator()
    nobody.tell("t", ["a"], data={"kind": "farm"})
    nobody.tell("u", ["b"])
    assert nobody.told == [("t", ["a"]), ("u", ["b"])]
    assert nobody.told_data == [{"kind": "farm"}, None]


@pytest.mark.parametrize(
    ("vendor", "words"),
    [
        ("f5", "Ratio Least Connections (member)"),
        ("kemp", "weighted least connection; Transparency off"),
        ("netscaler", "LEASTCONNECTION with weights"),
        ("WebMux", "“generic TCP” on 5061 and 444"),
    ],
)
def test_plan_shows_the_vendors_words(tmp_path: Path, vendor: str, words: str) -> None:
    pool = manual_pool(tmp_path, vendor)
    result = CliRunner().invoke(
        app, ["-c", str(pool), "plan", "--phase", "configure-lb"], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 0, result.output
    assert words in " ".join(result.output.split())


def _timing_line(lines: Sequence[str]) -> str:
    found = [ln for ln in lines if "timing" in ln.lower()]
    assert len(found) == 1, lines
    return found[0]


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_check_timing_is_in_the_data_and_in_the_lines(vendor: str) -> None:
    """load_balancer.checks reach every vendor's checklist: `data["checks"]` for a
    machine, and the same four values in the line a person reads."""
    for timing in (CheckTiming(), CheckTiming(interval=2.0, timeout=1.5, fall=3, rise=4)):
        checklist = farm_checklist(vendor, farm(checks=timing), REQUIRED)
        assert checklist.data["checks"] == timing.view()
        line = _timing_line(checklist.lines)
        for value in (f"{timing.interval:g} s", f"{timing.timeout:g} s"):
            assert value in line, (value, line)
        assert f"after {timing.fall} failed checks" in line or f"{timing.fall} failed" in line
        assert f"{timing.rise} good ones" in line or f"{timing.rise} passed ones" in line


def test_each_vendor_says_the_timing_in_its_own_units() -> None:
    fast = farm()  # the defaults: 0.5 s, 0.3 s, fall 2, rise 2
    slow = farm(checks=CheckTiming(interval=2.0, timeout=1.5, fall=3, rise=4))
    line = _timing_line(farm_checklist("netscaler", fast, REQUIRED).lines)
    assert "-interval 500 MSEC -resptimeout 300 MSEC -retries 2 -successRetries 2" in line
    assert line.count("set lb monitor ocspool_tcp_") == 2
    even = farm(checks=CheckTiming(interval=0.5, timeout=0.5, fall=2, rise=2))
    line = _timing_line(farm_checklist("netscaler", even, REQUIRED).lines)
    assert "-interval 500 MSEC -resptimeout 499 MSEC" in line
    assert "499 MSEC instead of this pool's 500" in line
    # the BIG-IP counts whole seconds and needs the Interval under the Timeout
    line = _timing_line(farm_checklist("f5", fast, REQUIRED).lines)
    assert "Interval 1 seconds, Timeout 2 seconds" in line and "Time Until Up 1 seconds" in line
    line = _timing_line(farm_checklist("f5", slow, REQUIRED).lines)
    # out within 3 x (2 + 1.5) = 10.5 s: Timeout 11; up 3 x 2 s after the first good check
    assert "Interval 2 seconds, Timeout 11 seconds" in line and "Time Until Up 6 seconds" in line
    # the LoadMaster's smallest values, and its rule Interval >= Retry Count x Timeout + 1
    line = _timing_line(farm_checklist("kemp", fast, REQUIRED).lines)
    assert "Timeout 4 seconds, Retry Count 2, Check Interval 9 seconds" in line
    line = _timing_line(farm_checklist("kemp", slow, REQUIRED).lines)
    assert "Timeout 4 seconds, Retry Count 3, Check Interval 13 seconds" in line
    # the WebMux: a timeout only; its interval and count are not settings, and it says so
    line = _timing_line(farm_checklist("webmux", fast, REQUIRED).lines)
    assert "“generic TCP” service to 1 s" in line and "3 consecutive failed checks" in line
    line = _timing_line(farm_checklist("generic", fast, REQUIRED).lines)
    assert "out within 1 s, one whose link is cut within 1.6 s" in line


PAIR_WORDS = {
    "f5": ["Sync-Failover device group", "traffic-group-1", "Auto Failback enabled"],
    "kemp": ["HA Mode First HA", "HA Virtual ID 51", "Prefer First HA"],
    "netscaler": ["add ha node", "-haSync ENABLED", "STAYPRIMARY"],
    "webmux": ["Synchronize the farm configuration", "preemption on"],
    "generic": ["Synchronize the configuration", "floating addresses"],
}


def _pair(preempt: bool = True) -> Any:
    from ocsscale.config.lb_settings import KeepalivedSettings
    from ocsscale.config.model import SecretRef
    from ocsscale.providers.lb.base import PairHost, PairSite

    return PairSite(
        hosts=(PairHost("lbA", ("198.18.1.37/24",)), PairHost("lbB", ("198.18.1.38/24",))),
        preferred="lbA",
        preempt=preempt,
        router_id=51,
        advert_interval=1,
        secret=SecretRef(env="OCS_VRRP_SECRET"),
        keepalived=KeepalivedSettings(),
        floating=("198.18.1.40/24", "198.18.2.40/24"),
    )


@pytest.mark.parametrize("vendor", VENDORS)
def test_an_appliance_pair_in_the_vendors_words(vendor: str) -> None:
    single = farm_checklist(vendor, farm(), REQUIRED)
    paired = farm_checklist(vendor, farm(), REQUIRED, _pair())
    assert paired.lines[: len(single.lines)] == single.lines
    added = " ".join(paired.lines[len(single.lines) :])
    for word in PAIR_WORDS[vendor]:
        assert word in added, (word, added)
    # the partner, each unit's own address and every floating address are named
    assert "lbB" in added and has_address(added, "198.18.1.38")
    assert has_address(added, "198.18.1.40") and has_address(added, "198.18.2.40")
    assert paired.data["pair"]["preferred"] == "lbA" and "pair" not in single.data
    # no preemption: said in the vendor's words too
    no_failback = " ".join(farm_checklist(vendor, farm(), REQUIRED, _pair(False)).lines)
    assert no_failback != " ".join(paired.lines)
