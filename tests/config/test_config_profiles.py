from __future__ import annotations

from pathlib import Path

import pytest

from ocsscale.config import load_pool
from ocsscale.config.profiles import ProfileNotFound, list_profiles, load_profile
from ocsscale.errors import ConfigError
from ocsscale.resources import resource_path

from .helpers import ONE_ARMED, REPO, line_of, variant, write


def test_ocs2007r2_holds_the_walkthroughs_facts() -> None:
    p = load_profile("ocs2007r2")
    # the walkthrough's farm ports, plus 80 (Phone Edition updates)
    assert p.ports == [5061, 5060, 135, 443, 444, 5065, 5069, 5071, 5072, 5073, 5074, 8404, 80]
    assert p.optional_ports == [5060, 5069, 8404, 80]
    assert p.required_ports == [5061, 135, 443, 444, 5065, 5071, 5072, 5073, 5074]
    assert "Monitoring Server" in p.port_note(5069) and "WebMux" in p.port_note(8404)
    assert p.check_ports == [5061, 444]
    assert p.others_follow_checks is True
    assert 5060 in p.following_ports() and 5061 not in p.following_ports()
    assert p.idle_timeout == 1800
    assert p.balance == "wlc"
    assert p.snat_connections_per_address == 65000
    assert p.supported_modes == ["full-proxy"]
    assert set(p.supported_topologies) == {
        "one-armed",
        "two-armed-routed",
        "two-armed-transparent",
    }
    assert (p.sip_ports.tls, p.sip_ports.tcp) == (5061, 5060)
    assert p.https_ports == [443, 444]
    assert p.services.for_os("windows") == ["W3SVC"]
    assert p.services.windows_display_names == ["Office Communications Server*"]
    assert p.services.for_os("linux") == ["ocs-poolmember", "ocs-focus"]
    cert = p.certificate
    assert (cert.subject, cert.san, cert.wildcard, cert.eku) == (
        "pool-fqdn",
        ["fe-fqdn", "sip.<domain>"],
        False,
        "serverAuth",
    )


def test_generic_tls_is_one_port() -> None:
    p = load_profile("generic-tls")
    assert (p.ports, p.check_ports, p.tls_ports) == ([443], [443], [443])


def test_list_profiles() -> None:
    assert [p.name for p in list_profiles()] == ["generic-tls", "ocs2007r2"]


def test_resource_path_finds_the_repository_data() -> None:
    assert resource_path("profiles") == REPO / "profiles"
    assert (resource_path("templates") / "pool.yaml.j2").is_file()
    with pytest.raises(ValueError):
        resource_path("../etc")


def test_unknown_profile_name() -> None:
    with pytest.raises(ProfileNotFound) as caught:
        load_profile("nope")
    assert "ocs2007r2" in caught.value.message


def test_a_profile_file_of_ones_own(tmp_path: Path) -> None:
    text = (REPO / "profiles" / "generic-tls.yaml").read_text()
    text = text.replace("name: generic-tls", "name: my-service").replace("[443]", "[8443]")
    (tmp_path / "mine.yaml").write_text(text)
    pool = variant(ONE_ARMED, ("profile: ocs2007r2 ", "profile: mine.yaml "))
    loaded = load_pool(write(tmp_path, pool))  # relative to the pool file's directory
    assert loaded.profile.name == "my-service"
    assert loaded.profile.ports == [8443]


def test_profile_file_errors_name_the_profile_file(tmp_path: Path) -> None:
    text = (REPO / "profiles" / "generic-tls.yaml").read_text()
    text = text.replace("check_ports: [443]", "check_ports: [444]")
    text = text.replace("idle_timeout: 300", "idle_timeout: 300\nidle_timout: 5")
    (tmp_path / "broken.yaml").write_text(text)
    pool = variant(ONE_ARMED, ("profile: ocs2007r2 ", "profile: ./broken.yaml "))
    with pytest.raises(ConfigError) as caught:
        load_pool(write(tmp_path, pool))
    by_rule = {i.rule: i for i in caught.value.issues}
    assert set(by_rule) == {"schema.unknown-key", "profile.port.not-in-ports"}
    unknown = by_rule["schema.unknown-key"]
    assert unknown.file == str(tmp_path / "broken.yaml")
    assert (unknown.path, unknown.line) == ("idle_timout", line_of(text, "idle_timout"))
    assert "check_ports names 444" in by_rule["profile.port.not-in-ports"].message


def test_an_installed_package_uses_its_own_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ocsscale.resources as resources

    (tmp_path / "profiles").mkdir()
    monkeypatch.setattr(resources, "_PACKAGE_DIR", tmp_path)
    assert resources.resource_path("profiles") == tmp_path / "profiles"
    # kinds the package does not carry still come from the repository
    assert resources.resource_path("templates") == REPO / "templates"


@pytest.mark.parametrize(
    ("edit", "rule", "path"),
    [
        (("\nports: [443]", "\nports: [443, 443]"), "profile.port.duplicate", "ports"),
        (("\nports: [443]", "\nports: [70000]"), "profile.port", "ports[0]"),
        (
            ("\nports: [443]", "\nports: [{port: 443, required: false}]"),
            "profile.port.optional-check",
            "ports[0]",
        ),
        (
            ("\nports: [443]", "\nports: [{port: 443, needed: yes}]"),
            "schema.unknown-key",
            "ports[0].needed",
        ),
        (
            ("\nports: [443]", "\nports: [{port: 443}, {port: 443, required: false}]"),
            "profile.port.duplicate",
            "ports",
        ),
        (("tls_ports: [443]", "tls_ports: [8443]"), "profile.port.not-in-ports", "tls_ports"),
        (("balance: wlc", "balance: random"), "schema.not-allowed", "balance"),
        (("name: generic-tls", "name: other"), "profile.name", "name"),
    ],
)
def test_profile_rules(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    edit: tuple[str, str],
    rule: str,
    path: str,
) -> None:
    import ocsscale.resources as resources

    shipped = tmp_path / "profiles"
    shipped.mkdir()
    text = (REPO / "profiles" / "generic-tls.yaml").read_text()
    old, new = edit
    assert text.count(old) == 1
    text = text.replace(old, new)
    (shipped / "generic-tls.yaml").write_text(text)
    monkeypatch.setattr(resources, "_PACKAGE_DIR", tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_profile("generic-tls")
    issues = [i for i in caught.value.issues if i.rule == rule]
    assert [i.path for i in issues] == [path], caught.value.render_all()
    assert issues[0].line == line_of(text, new.strip())
    assert issues[0].file == str(shipped / "generic-tls.yaml")


def test_pool_file_marks_ports_required_or_absent_for_its_pool(tmp_path: Path) -> None:
    from ocsscale.config.profiles import port_requirement

    text = variant(
        ONE_ARMED,
        (
            "  sip_domain: contoso.com ",
            "  ports: {5060: required, 8404: absent}\n  sip_domain: contoso.com ",
        ),
    )
    loaded = load_pool(write(tmp_path, text))
    pool, profile = loaded.pool, loaded.profile
    assert port_requirement(pool, profile, 5060) == "required"
    assert port_requirement(pool, profile, 8404) == "absent"
    assert port_requirement(pool, profile, 5069) == "optional"  # the profile's word
    assert port_requirement(pool, profile, 443) == "required"
    assert profile.ports[-1] == 80 and 8404 in profile.ports  # the farm still carries them


@pytest.mark.parametrize(
    ("ports", "rule", "fragment"),
    [
        ("{9999: optional}", "pool.ports.unknown", "9999 is not a port of profile ocs2007r2"),
        ("{444: absent}", "pool.ports.check-port", "444 carries the load balancer's health check"),
        ("{5060: maybe}", "schema.not-allowed", "'required', 'optional' or 'absent'"),
    ],
)
def test_pool_ports_are_validated_with_their_position(
    tmp_path: Path, ports: str, rule: str, fragment: str
) -> None:
    text = variant(
        ONE_ARMED, ("  sip_domain: contoso.com ", f"  ports: {ports}\n  sip_domain: contoso.com ")
    )
    with pytest.raises(ConfigError) as caught:
        load_pool(write(tmp_path, text))
    (issue,) = caught.value.issues
    assert issue.rule == rule and fragment in issue.message, issue.render()
    assert issue.line == line_of(text, "  ports: {") and issue.path.startswith("pool.ports")
