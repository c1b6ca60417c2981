"""Every walkthrough rule: its rule id, the line of the value at fault and its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import ONE_ARMED, TWO_ARMED, issues_of, line_of, load_text, only_issue, variant


def test_out_of_path_is_refused_with_the_issues_message(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("mode: full-proxy ", "mode: out-of-path "))
    issue = only_issue(tmp_path, text, "lb.mode.out-of-path")
    assert issue.line == line_of(text, "mode: out-of-path")
    assert issue.column == 9
    assert issue.path == "load_balancer.mode"
    rendered = issue.render()
    assert rendered.startswith(
        f"{tmp_path / 'pool.yaml'}:{issue.line}:9: load_balancer.mode: "
        "out-of-path (direct server return) is not supported by this profile"
    )
    assert rendered.endswith("[lb.mode.out-of-path]")


def test_dnat_only_is_refused_because_snat_is_required(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("mode: full-proxy ", "mode: dnat-only "))
    issue = only_issue(tmp_path, text, "lb.mode.dnat-only")
    assert issue.line == line_of(text, "mode: dnat-only")
    assert issue.path == "load_balancer.mode"
    assert "SNAT is required" in issue.message
    assert "bypass the load balancer" in issue.message


def test_unknown_topology_names_the_supported_ones(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("topology: one-armed ", "topology: three-armed "))
    issue = only_issue(tmp_path, text, "lb.topology.unknown")
    assert issue.line == line_of(text, "topology: three-armed")
    assert issue.path == "load_balancer.topology"
    assert "one-armed, two-armed-routed, two-armed-transparent" in issue.message


def test_unknown_mode(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("mode: full-proxy ", "mode: nat "))
    issue = only_issue(tmp_path, text, "lb.mode.unknown")
    assert issue.line == line_of(text, "mode: nat")


def test_topology_the_profile_does_not_support(tmp_path: Path) -> None:
    profile = (Path(__file__).resolve().parents[2] / "profiles" / "generic-tls.yaml").read_text()
    profile = profile.replace(
        "supported_topologies: [one-armed, two-armed-routed, two-armed-transparent]",
        "supported_topologies: [one-armed]",
    )
    (tmp_path / "one-armed-only.yaml").write_text(profile)
    text = variant(TWO_ARMED, ("profile: ocs2007r2 ", "profile: ./one-armed-only.yaml "))
    issue = only_issue(tmp_path, text, "lb.topology.unsupported")
    assert issue.line == line_of(text, "topology: two-armed-routed")
    assert issue.path == "load_balancer.topology"


def test_two_armed_needs_a_backend_address(tmp_path: Path) -> None:
    text = variant(TWO_ARMED, ("  backend_address: 10.0.1.40/24", "  # no backend arm"))
    issue = only_issue(tmp_path, text, "lb.backend-address.missing")
    assert issue.path == "load_balancer.backend_address"
    # a missing key points at its parent mapping
    assert issue.line == line_of(text, "driver: engine")


def test_transparent_two_armed_needs_a_backend_address_too(tmp_path: Path) -> None:
    text = variant(
        TWO_ARMED,
        ("topology: two-armed-routed", "topology: two-armed-transparent"),
        ("  backend_address: 10.0.1.40/24", "  # no backend arm"),
    )
    only_issue(tmp_path, text, "lb.backend-address.missing")


def test_two_armed_front_end_on_the_vip_subnet(tmp_path: Path) -> None:
    text = variant(TWO_ARMED, ("address: 10.0.1.42", "address: 10.0.0.42"))
    issue = only_issue(tmp_path, text, "fe.subnet.same-as-vip")
    assert issue.line == line_of(text, "address: 10.0.0.42")
    assert issue.column == 14
    assert issue.path == "front_ends[1].address"


def test_transparent_front_end_on_the_vip_subnet(tmp_path: Path) -> None:
    text = variant(
        TWO_ARMED,
        ("topology: two-armed-routed", "topology: two-armed-transparent"),
        ("address: 10.0.1.41", "address: 10.0.0.41"),
    )
    issue = only_issue(tmp_path, text, "fe.subnet.same-as-vip")
    assert issue.path == "front_ends[0].address"


def test_routed_front_end_outside_the_backend_network(tmp_path: Path) -> None:
    text = variant(TWO_ARMED, ("address: 10.0.1.42", "address: 10.0.2.42"))
    issue = only_issue(tmp_path, text, "fe.subnet.outside-backend")
    assert issue.line == line_of(text, "address: 10.0.2.42")
    assert issue.path == "front_ends[1].address"


def test_routed_backend_network_overlapping_the_vip_network(tmp_path: Path) -> None:
    text = variant(TWO_ARMED, ("backend_address: 10.0.1.40/24", "backend_address: 10.0.0.50/24"))
    issue = only_issue(tmp_path, text, "lb.backend-address.same-network")
    assert issue.line == line_of(text, "backend_address: 10.0.0.50/24")


def test_one_armed_front_end_outside_the_vip_network(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("address: 10.0.1.41", "address: 10.9.1.41"))
    issue = only_issue(tmp_path, text, "fe.subnet.outside-vip")
    assert issue.path == "front_ends[0].address"
    assert issue.line == line_of(text, "address: 10.9.1.41")


def test_one_armed_with_a_backend_address(tmp_path: Path) -> None:
    text = variant(
        ONE_ARMED,
        (
            "  snat_addresses: [10.0.0.40]",
            "  backend_address: 10.0.0.41/16\n  snat_addresses: [10.0.0.40]",
        ),
    )
    issue = only_issue(tmp_path, text, "lb.backend-address.one-armed")
    assert issue.line == line_of(text, "backend_address: 10.0.0.41/16")


def test_addresses_need_their_network_prefix(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("vip: 10.0.0.40/16", "vip: 10.0.0.40"))
    issue = only_issue(tmp_path, text, "lb.address.prefix")
    assert issue.path == "load_balancer.vip"
    assert issue.line == line_of(text, "vip: 10.0.0.40")


def test_duplicate_front_end_names(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("- name: ocsfe02", "- name: OCSFE01"))
    issue = only_issue(tmp_path, text, "host.name.duplicate")
    assert issue.path == "front_ends[1].name"
    assert issue.line == line_of(text, "- name: OCSFE01")
    assert "front_ends[0]" in issue.message


def test_a_client_may_not_reuse_a_front_end_name(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("- name: client02", "- name: ocsfe00"))
    issue = only_issue(tmp_path, text, "host.name.duplicate")
    assert issue.path == "test_clients[1].name"


def test_duplicate_front_end_addresses(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("address: 10.0.1.42", "address: 10.0.1.41"))
    issue = only_issue(tmp_path, text, "host.address.duplicate")
    assert issue.path == "front_ends[1].address"
    assert issue.line == line_of(text, "address: 10.0.1.41", occurrence=2)


def test_duplicate_front_end_fqdns(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("fqdn: ocsfe02.contoso.com", "fqdn: ocsfe01.contoso.com"))
    issue = only_issue(tmp_path, text, "fe.fqdn.duplicate")
    assert issue.path == "front_ends[1].fqdn"


def test_a_front_end_on_the_vip(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("address: 10.0.1.42", "address: 10.0.0.40"))
    issues = issues_of(tmp_path, text)
    vip = [i for i in issues if i.rule == "host.address.is-vip"]
    assert [(i.path, i.line) for i in vip] == [
        ("front_ends[1].address", line_of(text, "address: 10.0.0.40"))
    ]


def test_too_few_snat_addresses_says_how_many_are_needed(tmp_path: Path) -> None:
    text = variant(
        ONE_ARMED, ("expected_peak_connections: 20000", "expected_peak_connections: 130001")
    )
    issue = only_issue(tmp_path, text, "lb.snat.too-few")
    assert issue.path == "load_balancer.snat_addresses"
    assert issue.line == line_of(text, "snat_addresses:")
    assert "at least 3 needed" in issue.message  # ceil(130001 / 65000) = 3
    assert "130,001" in issue.message


def test_exactly_enough_snat_addresses(tmp_path: Path) -> None:
    text = variant(
        ONE_ARMED,
        ("expected_peak_connections: 20000", "expected_peak_connections: 130000"),
        ("snat_addresses: [10.0.0.40]", "snat_addresses: [10.0.0.40, 10.0.0.38]"),
    )
    assert load_text(tmp_path, text).pool.load_balancer.expected_peak_connections == 130000


def test_duplicate_snat_addresses_do_not_count_twice(tmp_path: Path) -> None:
    text = variant(
        ONE_ARMED,
        ("expected_peak_connections: 20000", "expected_peak_connections: 130000"),
        ("snat_addresses: [10.0.0.40]", "snat_addresses: [10.0.0.40, 10.0.0.40]"),
    )
    rules = {i.rule for i in issues_of(tmp_path, text)}
    assert rules == {"lb.snat.too-few", "lb.snat.duplicate"}


def test_snat_address_must_face_the_front_ends(tmp_path: Path) -> None:
    text = variant(TWO_ARMED, ("snat_addresses: [10.0.1.40]", "snat_addresses: [10.0.0.40]"))
    issue = only_issue(tmp_path, text, "lb.snat.network")
    assert issue.path == "load_balancer.snat_addresses[0]"


def test_snat_address_taken_by_a_host(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("snat_addresses: [10.0.0.40]", "snat_addresses: [10.0.0.101]"))
    issue = only_issue(tmp_path, text, "lb.snat.conflict")
    assert "client01" in issue.message


@pytest.mark.parametrize("weight", ["-1", "257"])
def test_weight_out_of_range(tmp_path: Path, weight: str) -> None:
    text = ONE_ARMED.replace("weight: 1", f"weight: {weight}", 1)  # the first front end
    issue = only_issue(tmp_path, text, "fe.weight.range")
    assert issue.path == "front_ends[0].weight"
    assert issue.line == line_of(text, f"weight: {weight}")
    assert "from 0 to 256" in issue.message


def test_all_weights_zero(tmp_path: Path) -> None:
    text = ONE_ARMED.replace("weight: 1", "weight: 0")
    issue = only_issue(tmp_path, text, "fe.weight.all-zero")
    assert issue.path == "front_ends"


def test_one_zero_weight_is_fine(tmp_path: Path) -> None:
    text = ONE_ARMED.replace("weight: 1", "weight: 0", 1)
    assert [fe.weight for fe in load_text(tmp_path, text).pool.front_ends] == [0, 1]


def test_unknown_key_is_an_error_at_the_key(tmp_path: Path) -> None:
    text = ONE_ARMED.replace("weight: 1", "wieght: 1", 1)  # the first front end
    issue = only_issue(tmp_path, text, "schema.unknown-key")
    assert issue.path == "front_ends[0].wieght"
    assert (issue.line, issue.column) == (line_of(text, "wieght: 1"), 5)
    assert "did you mean 'weight'" in issue.message


def test_unknown_key_inside_a_transport(tmp_path: Path) -> None:
    text = variant(
        ONE_ARMED,
        ("{kind: ssh, credentials: lb-admin}", "{kind: ssh, credentials: lb-admin, prot: 2222}"),
    )
    issue = only_issue(tmp_path, text, "schema.unknown-key")
    assert issue.path == "load_balancer.host.transport.prot"
    assert issue.line == line_of(text, "prot: 2222")
    assert "did you mean 'port'" in issue.message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    text = ONE_ARMED + "\nfirewall: true\n"
    issue = only_issue(tmp_path, text, "schema.unknown-key")
    assert (issue.path, issue.line, issue.column) == ("firewall", line_of(text, "firewall:"), 1)


def test_missing_required_key(tmp_path: Path) -> None:
    text = variant(
        ONE_ARMED,
        ("  sip_domain: contoso.com            # certificates must carry sip.<sip_domain>\n", ""),
    )
    issue = only_issue(tmp_path, text, "schema.missing-key")
    assert issue.path == "pool.sip_domain"
    assert issue.line == line_of(text, "fqdn: ocspool.contoso.com")


def test_unknown_transport_kind(tmp_path: Path) -> None:
    text = variant(
        ONE_ARMED, ("{kind: ssh, credentials: lb-admin}", "{kind: telnet, credentials: lb-admin}")
    )
    issue = only_issue(tmp_path, text, "schema.not-allowed")
    assert issue.path == "load_balancer.host.transport"


def test_unknown_credential_reference(tmp_path: Path) -> None:
    text = variant(
        ONE_ARMED, ("{kind: ssh, credentials: lb-admin}", "{kind: ssh, credentials: lb-admn}")
    )
    issue = only_issue(tmp_path, text, "credentials.unknown")
    assert issue.path == "load_balancer.host.transport.credentials"
    assert issue.line == line_of(text, "credentials: lb-admn")
    assert "did you mean 'lb-admin'" in issue.message


def test_winrm_credential_without_password(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("    password: {env: OCS_CLIENT_PASSWORD}\n", ""))
    issues = [i for i in issues_of(tmp_path, text) if i.rule == "credentials.winrm-password"]
    assert [i.path for i in issues] == [
        "test_clients[0].transport.credentials",
        "test_clients[1].transport.credentials",
    ]


def test_passphrase_without_key_file(tmp_path: Path) -> None:
    text = variant(
        ONE_ARMED, ("    key_file: ~/.ssh/id_ed25519", "    passphrase: {env: KEY_PASS}")
    )
    issue = only_issue(tmp_path, text, "credentials.passphrase-without-key")
    assert issue.path == "credentials.lb-admin.passphrase"


def test_inline_secret_is_refused_and_never_echoed(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("password: {env: OCS_CLIENT_PASSWORD}", "password: Hunter2-s3cret"))
    issues = issues_of(tmp_path, text)
    assert [i.rule for i in issues] == ["secret.inline"]
    issue = issues[0]
    assert issue.path == "credentials.client-admin.password"
    assert issue.line == line_of(text, "Hunter2-s3cret")
    assert all("Hunter2" not in i.render() for i in issues)


def test_inline_tsig_secret_is_refused(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("secret: {env: OCSSCALE_TSIG_SECRET}", "secret: c2VjcmV0a2V5"))
    issue = only_issue(tmp_path, text, "secret.inline")
    assert issue.path == "dns.tsig.secret"
    assert "c2VjcmV0a2V5" not in issue.render()


def test_secret_reference_names_one_source(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("{env: OCS_CLIENT_PASSWORD}", "{env: A, file: /b}"))
    only_issue(tmp_path, text, "secret.reference")


def test_dns_zone_must_contain_the_pool_fqdn(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("zone: contoso.com", "zone: fabrikam.com"))
    issue = only_issue(tmp_path, text, "dns.zone.outside")
    assert issue.path == "dns.zone"
    assert issue.line == line_of(text, "zone: fabrikam.com")


def test_rfc2136_needs_tsig_and_servers(tmp_path: Path) -> None:
    text = variant(
        ONE_ARMED,
        ("  servers: [10.0.0.10]\n", ""),
        (
            "  tsig:\n    name: ocsscale\n    algorithm: hmac-sha256\n"
            "    secret: {env: OCSSCALE_TSIG_SECRET}\n",
            "",
        ),
    )
    rules = sorted(i.rule for i in issues_of(tmp_path, text))
    assert rules == ["dns.servers.missing", "dns.tsig.missing"]


def test_cutover_ttl_above_ttl(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("cutover_ttl: 60", "cutover_ttl: 7200"))
    issue = only_issue(tmp_path, text, "dns.cutover-ttl")
    assert issue.line == line_of(text, "cutover_ttl: 7200")


def test_unsupported_version(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("version: 1", "version: 2"))
    issue = only_issue(tmp_path, text, "version.unsupported")
    assert (issue.path, issue.line) == ("version", line_of(text, "version: 2"))


def test_unknown_profile(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("profile: ocs2007r2 ", "profile: ocs2099 "))
    issue = only_issue(tmp_path, text, "profile.unknown")
    assert (issue.path, issue.line) == ("profile", line_of(text, "profile: ocs2099"))
    assert "generic-tls, ocs2007r2" in issue.message


def test_bad_fqdn(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("fqdn: ocsfe01.contoso.com", "fqdn: ocsfe01"))
    issue = only_issue(tmp_path, text, "name.fqdn")
    assert issue.path == "front_ends[0].fqdn"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Schema problems (unknown key, inline secret) do not hide the rule problems."""
    text = variant(
        ONE_ARMED,
        ("mode: full-proxy ", "mode: out-of-path "),
        ("expected_peak_connections: 20000", "expected_peak_connections: 200000"),
        ("address: 10.0.1.42", "address: 10.0.0.40"),
        ("password: {env: OCS_CLIENT_PASSWORD}", "password: hunter2"),
        ("{kind: ssh, credentials: lb-admin}", "{kind: ssh, credentials: lb-admin, prot: 1}"),
    )
    issues = issues_of(tmp_path, text)
    rules = {i.rule for i in issues}
    assert {
        "lb.mode.out-of-path",
        "lb.snat.too-few",
        "host.address.is-vip",
        "secret.inline",
        "schema.unknown-key",
    } <= rules
    assert [i.line for i in issues] == sorted(i.line for i in issues)


_VIP, _FE1, _A42 = "vip: 10.0.0.40/16", "front_ends[1].address", "address: 10.0.1.42"
_BACKEND = "backend_address: 10.0.1.40/24"


@pytest.mark.parametrize(
    ("base", "old", "new", "rule", "path"),
    [
        ("one", _VIP, "vip: 0.0.0.0/16", "address.wildcard", "load_balancer.vip"),
        ("one", _VIP, "vip: 255.255.255.255/16", "address.broadcast", "load_balancer.vip"),
        ("one", _VIP, "vip: 10.0.255.255/16", "address.broadcast", "load_balancer.vip"),
        ("one", _VIP, "vip: 224.0.0.40/16", "address.multicast", "load_balancer.vip"),
        ("one", _A42, "address: 0.0.0.0", "address.wildcard", _FE1),
        ("one", _A42, "address: 239.0.1.42", "address.multicast", _FE1),
        ("one", _A42, "address: 10.0.255.255", "fe.address.broadcast", _FE1),
        ("one", "[10.0.0.40]", "[255.255.255.255]", "address.broadcast",
         "load_balancer.snat_addresses[0]"),
        ("two", _BACKEND, "backend_address: 10.0.1.255/24", "address.broadcast",
         "load_balancer.backend_address"),
        ("two", _A42, "address: 10.0.1.255", "fe.address.broadcast", _FE1),
    ],
)  # fmt: skip
def test_an_address_is_one_machines(
    tmp_path: Path, base: str, old: str, new: str, rule: str, path: str
) -> None:
    """The wildcard, a broadcast or a multicast address is nobody's: the engine would
    listen on every address, a probe would reach no one host."""
    text = variant(ONE_ARMED if base == "one" else TWO_ARMED, (old, new))
    issue = only_issue(tmp_path, text, rule)
    assert (issue.path, issue.line) == (path, line_of(text, new))
    assert issue.render().endswith(f"[{rule}]")
    assert issue.render().startswith(f"{tmp_path / 'pool.yaml'}:{issue.line}:")


def test_a_31_or_32_prefix_has_no_broadcast_address(tmp_path: Path) -> None:
    text = variant(TWO_ARMED, ("backend_address: 10.0.1.40/24", "backend_address: 10.0.1.41/31"))
    rules = {i.rule for i in issues_of(tmp_path, text)}
    assert "address.broadcast" not in rules and "fe.address.broadcast" not in rules
