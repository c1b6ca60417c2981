"""The pool file's `dns` key: one shape per provider, each validated with its
position, and every provider credential resolved in the pre-run check."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsscale.config.model import ManualDns, Rfc2136Dns, WindowsDns
from ocsscale.errors import SecretError, UsageError
from ocsscale.operator import NoOperator
from ocsscale.providers.dns.manual import ManualProvider
from ocsscale.providers.plugin import Ports
from ocsscale.transports.factory import check_credentials

from .helpers import ONE_ARMED, issues_of, line_of, load_text, only_issue, variant

RFC2136_BLOCK = ONE_ARMED[ONE_ARMED.index("dns:\n") : ONE_ARMED.index("\n# Credentials")]

WINDOWS_BLOCK = """dns:
  provider: windows
  zone: contoso.com
  ttl: 3600
  cutover_ttl: 60
  tool: dnscmd
  host:
    name: dc01
    address: 10.0.0.10
    transport: {kind: winrm, credentials: dns-admin}
"""

MANUAL_BLOCK = """dns:
  provider: manual
  servers: [10.0.0.10]
  zone: contoso.com
"""

DNS_CREDENTIAL = "  dns-admin:\n    username: CONTOSO\\dnsadmin\n    password: {env: OCS_DNS_PW}\n"


def with_dns(block: str, credential: str = DNS_CREDENTIAL) -> str:
    text = variant(ONE_ARMED, (RFC2136_BLOCK, block.rstrip("\n")))
    return variant(text, ("credentials:\n", "credentials:\n" + credential))


def test_each_provider_has_its_own_model(tmp_path: Path) -> None:
    assert isinstance(load_text(tmp_path, ONE_ARMED).pool.dns, Rfc2136Dns)
    windows = load_text(tmp_path, with_dns(WINDOWS_BLOCK)).pool.dns
    assert isinstance(windows, WindowsDns)
    assert windows.tool == "dnscmd" and windows.host.os == "windows"
    manual = load_text(tmp_path, with_dns(MANUAL_BLOCK, "")).pool.dns
    assert isinstance(manual, ManualDns) and manual.ttl == 3600 and manual.cutover_ttl == 60


def test_the_windows_dns_server_is_a_host_of_the_pool(tmp_path: Path) -> None:
    pool = load_text(tmp_path, with_dns(WINDOWS_BLOCK)).pool
    assert pool.host("dc01").transport.kind == "winrm"


def test_hmac_sha256_is_the_default_and_md5_only_when_named(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("    algorithm: hmac-sha256\n", ""))
    assert load_text(tmp_path, text).pool.dns.tsig.algorithm == "hmac-sha256"
    text = variant(ONE_ARMED, ("algorithm: hmac-sha256", "algorithm: hmac-md5"))
    assert load_text(tmp_path, text).pool.dns.tsig.algorithm == "hmac-md5"


def test_unknown_provider_is_named_with_its_position(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("provider: rfc2136", "provider: route53"))
    issue = only_issue(tmp_path, text, "schema.not-allowed")
    assert issue.path == "dns"
    assert "rfc2136, windows, manual" in issue.message
    assert "route53" not in issue.message


def test_a_key_of_another_provider_is_refused_where_it_is(tmp_path: Path) -> None:
    block = MANUAL_BLOCK + "  tool: dnscmd\n"
    issue = only_issue(tmp_path, with_dns(block, ""), "schema.unknown-key")
    assert issue.path == "dns.tool"
    assert issue.line == line_of(with_dns(block, ""), "  tool: dnscmd")


def test_windows_dns_server_needs_winrm(tmp_path: Path) -> None:
    block = WINDOWS_BLOCK.replace("kind: winrm", "kind: ssh")
    issue = only_issue(tmp_path, with_dns(block), "dns.windows.transport")
    assert issue.path == "dns.host"


def test_windows_tool_choices(tmp_path: Path) -> None:
    block = WINDOWS_BLOCK.replace("tool: dnscmd", "tool: nsupdate")
    issue = only_issue(tmp_path, with_dns(block), "schema.not-allowed")
    assert issue.path == "dns.tool"
    assert issue.line == line_of(with_dns(block), "tool: nsupdate")


def test_windows_dns_credential_must_exist(tmp_path: Path) -> None:
    issue = only_issue(tmp_path, with_dns(WINDOWS_BLOCK, ""), "credentials.unknown")
    assert issue.path == "dns.host.transport.credentials"


def test_a_domain_controller_may_be_directory_and_dns_server(tmp_path: Path) -> None:
    text = with_dns(WINDOWS_BLOCK)
    directory = text[text.index("directory:") :].split("\n\n", 1)[0]
    assert "name: dc01" in directory and "10.0.0.10" in directory
    load_text(tmp_path, text)  # no duplicate name or address


def test_manual_without_servers_is_refused_when_it_is_used(tmp_path: Path) -> None:
    block = MANUAL_BLOCK.replace("  servers: [10.0.0.10]\n", "")
    pool = load_text(tmp_path, with_dns(block, "")).pool  # valid: only the cutover needs them
    with pytest.raises(UsageError) as caught:
        ManualProvider.from_settings(pool.dns, Ports(operator=NoOperator()))
    assert "dns.servers" in caught.value.message


def test_tsig_secret_is_resolved_in_the_pre_run_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_text(tmp_path, ONE_ARMED)
    monkeypatch.delenv("OCSSCALE_TSIG_SECRET", raising=False)
    with pytest.raises(SecretError) as caught:
        check_credentials(loaded, ["dns:contoso.com"])
    assert "TSIG key ocsscale" in caught.value.message
    assert "OCSSCALE_TSIG_SECRET" in caught.value.message
    monkeypatch.setenv("OCSSCALE_TSIG_SECRET", "c2VjcmV0")
    check_credentials(loaded, ["dns:contoso.com"])


def test_windows_dns_host_credential_is_resolved_in_the_pre_run_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_text(tmp_path, with_dns(WINDOWS_BLOCK))
    monkeypatch.delenv("OCS_DNS_PW", raising=False)
    with pytest.raises(SecretError) as caught:
        check_credentials(loaded, ["dns:contoso.com", "dc01"])
    assert "host dc01" in caught.value.message and "OCS_DNS_PW" in caught.value.message


def test_inline_tsig_secret_is_still_refused(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("secret: {env: OCSSCALE_TSIG_SECRET}", "secret: hunter2hunter2"))
    issues = issues_of(tmp_path, text)
    assert [i.rule for i in issues] == ["secret.inline"]
    assert all("hunter2" not in i.render() for i in issues)


def test_the_cutover_keys_have_defaults_and_are_checked_where_they_are(tmp_path: Path) -> None:
    dns = load_text(tmp_path, ONE_ARMED).pool.dns
    assert (dns.names, dns.acknowledge) == ([], [])
    assert (dns.watch_window, dns.watch_interval, dns.watch_failures) == (300, 10, 0)
    block = MANUAL_BLOCK + "  names: [web.contoso.com.]\n  acknowledge: [meet.contoso.com]\n"
    manual = load_text(tmp_path, with_dns(block, "")).pool.dns
    assert manual.names == ["web.contoso.com"] and manual.acknowledge == ["meet.contoso.com"]

    text = with_dns(MANUAL_BLOCK + "  watch_window: 0\n", "")
    issue = only_issue(tmp_path, text, "dns.watch.range")
    assert issue.path == "dns.watch_window" and issue.line == line_of(text, "  watch_window: 0")
    text = with_dns(MANUAL_BLOCK + "  names: [web, ok.contoso.com]\n", "")
    issue = only_issue(tmp_path, text, "name.fqdn")
    assert issue.path.startswith("dns.names") and "fully qualified" in issue.message


def test_how_each_provider_proves_a_change(tmp_path: Path) -> None:
    from ocsscale.actions.dns_propagation import convergence, deadline_seconds

    rfc2136 = load_text(tmp_path, ONE_ARMED).pool.dns
    assert (convergence(rfc2136), deadline_seconds(rfc2136)) == ("serial", 30.0)
    windows = load_text(tmp_path, with_dns(WINDOWS_BLOCK)).pool.dns
    assert (convergence(windows), deadline_seconds(windows)) == ("replication", 300.0)
    manual = load_text(tmp_path, with_dns(MANUAL_BLOCK)).pool.dns
    assert convergence(manual) == "serial"
    ad = with_dns(MANUAL_BLOCK + "  ad_integrated: true\n  propagation_timeout: 900\n")
    manual_ad = load_text(tmp_path, ad).pool.dns
    assert (convergence(manual_ad), deadline_seconds(manual_ad)) == ("replication", 900.0)


def test_verify_servers_and_exclusions_are_checked(tmp_path: Path) -> None:
    block = WINDOWS_BLOCK + "  verify_servers: [10.0.0.10, DC02.contoso.com.]\n"
    dns = load_text(tmp_path, with_dns(block + "  verify_exclude: [dc09.contoso.com]\n")).pool.dns
    assert dns.verify_servers == ["10.0.0.10", "dc02.contoso.com"]
    assert dns.verify_exclude == ["dc09.contoso.com"]
    both = with_dns(block + "  verify_exclude: [dc02.contoso.com]\n")
    assert "verify_exclude" in only_issue(tmp_path, both, "dns.verify.excluded-listed").render()
    bad = with_dns(WINDOWS_BLOCK + "  verify_exclude: [not a name]\n")
    assert any(i.rule == "name.fqdn" for i in issues_of(tmp_path, bad))
    for wrong in ("0", "86401", '"300"'):
        text = with_dns(WINDOWS_BLOCK + f"  propagation_timeout: {wrong}\n")
        assert issues_of(tmp_path, text)
    quoted = with_dns(MANUAL_BLOCK + '  ad_integrated: "yes"\n')
    assert any(i.rule == "value.not-a-bool" for i in issues_of(tmp_path, quoted))
    # only manual is told: windows always is AD-integrated, rfc2136 never
    assert issues_of(tmp_path, with_dns(WINDOWS_BLOCK + "  ad_integrated: true\n"))


def test_which_names_move_with_the_pool_name(tmp_path: Path) -> None:
    from ocsscale.config.dnsnames import cutover_names

    block = MANUAL_BLOCK + "  names: [web.contoso.com]\n  keep: [_sip._tls.contoso.com.]\n"
    loaded = load_text(tmp_path, with_dns(block, ""))
    names = cutover_names(loaded.pool, loaded.profile)
    assert [n["name"] for n in names["a"]] == ["sip.contoso.com", "web.contoso.com"]
    assert [n["name"] for n in names["srv"]] == [
        "_sipinternaltls._tcp.contoso.com",
        "_sipinternal._tcp.contoso.com",
    ]
    assert names["kept"] == ["_sip._tls.contoso.com"]
    assert (names["srv_from"], names["srv_to"]) == ("ocsfe00.contoso.com", "ocspool.contoso.com")


@pytest.mark.parametrize(
    ("extra", "rule"),
    [
        ("  keep: [ocspool.contoso.com]\n", "dns.keep.pool-name"),
        ("  keep: [intranet.contoso.com]\n", "dns.keep.unknown"),
        ("  names: [web.fabrikam.com]\n", "dns.names.outside"),
        ("  keep: [_sip._tls]\n", "name.fqdn"),
    ],
)
def test_dns_keep_and_names_are_checked(tmp_path: Path, extra: str, rule: str) -> None:
    issue = only_issue(tmp_path, with_dns(MANUAL_BLOCK + extra, ""), rule)
    assert issue.path.startswith("dns.names" if "names" in extra else "dns.keep"), issue.path


def test_a_name_outside_the_zone_may_be_kept(tmp_path: Path) -> None:
    block = MANUAL_BLOCK + "  names: [web.fabrikam.com]\n  keep: [web.fabrikam.com]\n"
    load_text(tmp_path, with_dns(block, ""))  # no issue: the operator moves it


def test_init_documents_every_dns_key_with_its_default(tmp_path: Path) -> None:
    """`ocsscale init`'s file: the DNS keys added for issue 17 are there, the live ones
    with the model's default, the commented ones valid once uncommented."""
    from ruamel.yaml import YAML

    from ocsscale.config.init_template import render_pool_file

    text = render_pool_file("ocs2007r2", "one-armed")
    dns = YAML(typ="safe").load(text)["dns"]
    defaults = Rfc2136Dns.model_fields
    for key in ("verify_servers", "verify_exclude", "keep"):
        assert dns[key] == defaults[key].get_default(call_default_factory=True), key
    for key in ("propagation_timeout", "srv_target"):  # unset by default: commented
        assert key not in dns and defaults[key].default is None
        assert f"\n  # {key}: " in text, key
    assert "\n  # ad_integrated: true" in text and "provider manual only" in text
    assert "default 30 when serials are" in text and "300 on an AD-integrated zone" in text
    uncommented = text.replace("  # propagation_timeout:", "  propagation_timeout:").replace(
        "  # srv_target:", "  srv_target:"
    )
    loaded = load_text(tmp_path, uncommented).pool.dns
    assert loaded.propagation_timeout == 300 and loaded.srv_target == "ocspool.contoso.com"
    manual = uncommented.replace("provider: rfc2136", "provider: manual").replace(
        "  # ad_integrated:", "  ad_integrated:"
    )
    manual = (
        manual.split("  tsig:\n", 1)[0]
        + "\n"
        + manual.split("secret: {env: OCSSCALE_TSIG_SECRET}\n", 1)[1]
    )
    assert load_text(tmp_path, manual).pool.dns.ad_integrated is True
