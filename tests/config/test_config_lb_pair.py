"""`load_balancer.pair`: two LB hosts with a floating VIP; what cannot work is refused
with its rule id and the line of the value at fault."""

from __future__ import annotations

from pathlib import Path

from ocsscale.config.model import LbPair

from .helpers import ONE_ARMED, TWO_ARMED, issues_of, line_of, load_text, only_issue, variant

SINGLE = """  host:                              # where the LB is administered
    name: lb01
    address: 10.0.0.39
    transport: {kind: ssh, credentials: lb-admin}
"""

PAIR = """  pair:
    hosts:
      - name: lb01
        address: 10.0.0.37
        transport: {kind: ssh, credentials: lb-admin}
        addresses: [10.0.0.37/16]
      - name: lb02
        address: 10.0.0.38
        transport: {kind: ssh, credentials: lb-admin}
        addresses: [10.0.0.38/16]
    preferred: lb01
    preempt: true
    router_id: 51
    secret: {env: OCS_VRRP_SECRET}
"""

PAIR_TWO_ARMED = PAIR.replace("[10.0.0.37/16]", "[10.0.0.37/24, 10.0.1.37/24]").replace(
    "[10.0.0.38/16]", "[10.0.0.38/24, 10.0.1.38/24]"
)


def one_armed(*edits: tuple[str, str]) -> str:
    return variant(variant(ONE_ARMED, (SINGLE, PAIR)), *edits)


def two_armed(*edits: tuple[str, str]) -> str:
    return variant(variant(TWO_ARMED, (SINGLE, PAIR_TWO_ARMED)), *edits)


def test_a_pair_loads_in_both_topologies(tmp_path: Path) -> None:
    for text in (one_armed(), two_armed()):
        pool = load_text(tmp_path, text).pool
        pair = pool.load_balancer.pair
        assert isinstance(pair, LbPair)
        assert [h.name for h in pool.load_balancer.lb_hosts()] == ["lb01", "lb02"]
        assert pair.peer_of("lb01").name == "lb02"
        assert pair.advert_interval == 1 and pair.preempt
        assert pair.secret is not None and pair.secret.describe() == "env:OCS_VRRP_SECRET"
        # the pair's hosts are hosts of the file: credentials are checked, names known
        assert pool.host("lb02").name == "lb02"
    two = load_text(tmp_path, two_armed()).pool.load_balancer
    assert [str(a) for a in two.floating()] == ["10.0.0.40", "10.0.1.40"]


def test_host_together_with_pair_is_refused(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, (SINGLE, SINGLE + PAIR))
    issue = only_issue(tmp_path, text, "lb.pair.host")
    assert issue.path == "load_balancer.host"
    assert issue.line == line_of(text, "name: lb01")  # the host mapping's first key


def test_the_same_host_twice_is_refused(tmp_path: Path) -> None:
    text = one_armed(
        ("address: 10.0.0.38\n", "address: 10.0.0.37\n"),
        ("[10.0.0.38/16]", "[10.0.0.39/16]"),
    )
    issue = only_issue(tmp_path, text, "lb.pair.same-host")
    assert issue.path == "load_balancer.pair.hosts[1].address"
    assert issue.line == line_of(text, "address: 10.0.0.37", 2)
    same_name = one_armed(("- name: lb02", "- name: lb01"), ("preferred: lb01", "preferred: lb01"))
    issue = only_issue(tmp_path, same_name, "lb.pair.same-host")
    assert issue.path == "load_balancer.pair.hosts[1].name"
    assert issue.line == line_of(same_name, "- name: lb01", 2)


def test_a_host_with_no_address_on_the_vip_network_is_refused(tmp_path: Path) -> None:
    text = one_armed(("[10.0.0.38/16]", "[192.0.2.38/24]"))
    issue = only_issue(tmp_path, text, "lb.pair.network")
    assert issue.path == "load_balancer.pair.hosts[1].addresses"
    assert issue.line == line_of(text, "[192.0.2.38/24]")
    assert "lb02" in issue.message and "10.0.0.0/16" in issue.message


def test_two_armed_needs_an_address_on_the_front_end_network(tmp_path: Path) -> None:
    text = two_armed(("[10.0.0.37/24, 10.0.1.37/24]", "[10.0.0.37/24]"))
    issue = only_issue(tmp_path, text, "lb.pair.network")
    assert issue.path == "load_balancer.pair.hosts[0].addresses"
    assert issue.line == line_of(text, "[10.0.0.37/24]")
    assert "front ends' network" in issue.message and "10.0.1.0/24" in issue.message


def test_a_floating_address_is_not_a_hosts_own(tmp_path: Path) -> None:
    text = two_armed(("[10.0.0.38/24, 10.0.1.38/24]", "[10.0.0.38/24, 10.0.1.40/24]"))
    issue = only_issue(tmp_path, text, "lb.pair.address.floating")
    assert issue.path == "load_balancer.pair.hosts[1].addresses[1]"
    assert issue.line == line_of(text, "10.0.1.40/24]")


def test_a_fixed_address_of_another_machine_is_refused(tmp_path: Path) -> None:
    text = one_armed(("[10.0.0.38/16]", "[10.0.0.101/16]"))
    issue = only_issue(tmp_path, text, "lb.pair.address.conflict")
    assert "client01" in issue.message


def test_router_id_out_of_range(tmp_path: Path) -> None:
    for bad in ("0", "256", "-3"):
        text = one_armed(("router_id: 51", f"router_id: {bad}"))
        issue = only_issue(tmp_path, text, "lb.pair.router-id.range")
        assert issue.path == "load_balancer.pair.router_id"
        assert issue.line == line_of(text, f"router_id: {bad}")
        assert "1 to 255" in issue.message
    text = one_armed(("router_id: 51", 'router_id: "51"'))
    only_issue(tmp_path, text, "value.not-a-number")


def test_a_missing_secret_is_refused(tmp_path: Path) -> None:
    text = one_armed(("    secret: {env: OCS_VRRP_SECRET}\n", ""))
    issue = only_issue(tmp_path, text, "lb.pair.secret.missing")
    assert issue.path == "load_balancer.pair"
    assert issue.line == line_of(text, "hosts:")


def test_an_inline_secret_is_refused_and_never_shown(tmp_path: Path) -> None:
    text = one_armed(("secret: {env: OCS_VRRP_SECRET}", "secret: hunter2-vrrp"))
    issues = issues_of(tmp_path, text)
    issue = only_issue(tmp_path, text, "secret.inline")
    assert issue.path == "load_balancer.pair.secret"
    assert issue.line == line_of(text, "secret: hunter2-vrrp")
    assert all("hunter2" not in i.render() for i in issues)


def test_preferred_must_be_one_of_the_two(tmp_path: Path) -> None:
    text = one_armed(("preferred: lb01", "preferred: lb03"))
    issue = only_issue(tmp_path, text, "lb.pair.preferred")
    assert issue.path == "load_balancer.pair.preferred"
    assert issue.line == line_of(text, "preferred: lb03")
    assert "lb01, lb02" in issue.message


def test_a_pair_is_exactly_two_hosts(tmp_path: Path) -> None:
    lb02 = PAIR[PAIR.index("      - name: lb02") : PAIR.index("    preferred")]
    text = one_armed((lb02, ""))
    issues = issues_of(tmp_path, text)
    assert [i.path for i in issues] == ["load_balancer.pair.hosts"]
    three = one_armed((lb02, lb02 + lb02.replace("lb02", "lb03").replace(".38", ".36")))
    assert [i.path for i in issues_of(tmp_path, three)] == ["load_balancer.pair.hosts"]


def test_a_fixed_address_needs_its_prefix(tmp_path: Path) -> None:
    text = one_armed(("[10.0.0.38/16]", "[10.0.0.38]"))
    issue = only_issue(tmp_path, text, "lb.address.prefix")
    assert issue.path == "load_balancer.pair.hosts[1].addresses[0]"


def test_check_shows_the_pair_and_the_secret_by_reference_only(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ocsscale.cli.main import app

    path = tmp_path / "pool.yaml"
    path.write_text(two_armed())
    result = CliRunner().invoke(app, ["-c", str(path), "check"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "lb01 (10.0.0.37/24, 10.0.1.37/24)" in result.output
    assert "lb01 preferred, preempt on, VRRP router id 51" in result.output
    assert "secret env:OCS_VRRP_SECRET" in result.output
    assert "floating    10.0.0.40, 10.0.1.40" in result.output
