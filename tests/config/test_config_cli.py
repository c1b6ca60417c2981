"""`check`, `init` and `profiles` through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ocsscale.cli.main import app
from ocsscale.config import load_pool
from ocsscale.config.init_template import write_pool_file
from ocsscale.errors import UsageError

from .helpers import EXAMPLES, ONE_ARMED, line_of, variant, write

TOPOLOGIES = ["one-armed", "two-armed-routed", "two-armed-transparent"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize("name", ["one-armed.yaml", "two-armed-routed.yaml"])
def test_check_accepts_the_examples(runner: CliRunner, name: str) -> None:
    result = runner.invoke(app, ["-c", str(EXAMPLES / name), "check"])
    assert result.exit_code == 0, result.output
    assert "ocspool.contoso.com" in result.stdout
    assert "ocs2007r2" in result.stdout
    assert "front ends  2: ocsfe01 10.0.1.41" in result.stdout
    assert "clients     2:" in result.stdout
    topology = name.removesuffix(".yaml")
    assert f"topology    {topology}" in result.stdout


def test_check_reads_ocsscale_pool_from_the_environment(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["check"], env={"OCSSCALE_POOL": str(EXAMPLES / "two-armed-routed.yaml")}
    )
    assert result.exit_code == 0, result.output
    assert "two-armed-routed" in result.stdout


def test_check_reports_every_problem_and_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    text = variant(
        ONE_ARMED,
        ("mode: full-proxy ", "mode: out-of-path "),
        ("expected_peak_connections: 20000", "expected_peak_connections: 200000"),
    )
    path = write(tmp_path, text)
    result = runner.invoke(app, ["-c", str(path), "check"])
    assert result.exit_code == 2
    mode_line = line_of(text, "mode: out-of-path")
    assert (
        f"{path}:{mode_line}:9: load_balancer.mode: out-of-path (direct server return) "
        "is not supported by this profile" in result.stderr
    )
    assert f"{path}:{line_of(text, 'snat_addresses')}:19: load_balancer.snat_addresses:" in (
        result.stderr
    )
    assert "at least 4 needed" in result.stderr
    assert "[lb.mode.out-of-path]" in result.stderr  # rule ids survive Rich markup
    assert "[lb.snat.too-few]" in result.stderr
    assert "2 problems found" in result.stderr
    assert "Traceback" not in result.output


def test_check_on_a_missing_file_suggests_init(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["-c", str(tmp_path / "pool.yaml"), "check"])
    assert result.exit_code == 2
    assert "no such pool file" in result.stderr
    assert "ocsscale init" in result.stderr


def test_check_never_echoes_an_inline_secret(runner: CliRunner, tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("password: {env: OCS_ADMIN_PASSWORD}", "password: Sup3rSecret!"))
    result = runner.invoke(app, ["-c", str(write(tmp_path, text)), "check"])
    assert result.exit_code == 2
    assert "credentials.ocs-admin.password" in result.stderr
    assert "Sup3rSecret" not in result.output


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("key_file: ~/.ssh/id_ed25519", "key_file:", "credentials.lb-admin.key_file"),
        ("password: {env: OCS_ADMIN_PASSWORD}", "password:", "credentials.ocs-admin.password"),
        (
            "key_file: ~/.ssh/id_ed25519",
            "key_file: ~/.ssh/id_ed25519\n    passphrase: ~",
            "credentials.lb-admin.passphrase",
        ),
    ],
)
def test_check_refuses_an_empty_key_file_or_secret(
    runner: CliRunner, tmp_path: Path, old: str, new: str, path: str
) -> None:
    """`key_file:` alone is YAML's null: read as "no key" it would quietly turn a key
    log-in into another one; it is refused where it is written."""
    text = variant(ONE_ARMED, (old, new))
    pool = write(tmp_path, text)
    result = runner.invoke(app, ["-c", str(pool), "check"])
    assert result.exit_code == 2, result.output
    line = line_of(text, new.splitlines()[-1].strip())
    assert f"{pool}:{line}:5: {path}: an empty" in result.stderr
    assert "[credentials.empty]" in result.stderr and "1 problem found" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("profile", ["ocs2007r2", "generic-tls"])
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_init_output_passes_check(
    runner: CliRunner, tmp_path: Path, profile: str, topology: str
) -> None:
    out = tmp_path / "pool.yaml"
    result = runner.invoke(
        app, ["init", "--profile", profile, "--topology", topology, "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "# " in out.read_text()  # commented for the reader
    checked = runner.invoke(app, ["-c", str(out), "check"])
    assert checked.exit_code == 0, checked.output
    loaded = load_pool(out)
    assert loaded.pool.load_balancer.topology == topology
    assert loaded.profile.name == profile
    assert [p.name for p in tmp_path.iterdir()] == ["pool.yaml"]  # no temp file left


def test_init_writes_to_the_config_path_by_default(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    result = runner.invoke(app, ["-c", str(target), "init"])
    assert result.exit_code == 0, result.output
    assert load_pool(target).pool.load_balancer.topology == "one-armed"


def test_init_refuses_to_overwrite_without_force(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "pool.yaml"
    out.write_text("keep me\n")
    result = runner.invoke(app, ["init", "-o", str(out)])
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert "--force" in result.stderr
    assert out.read_text() == "keep me\n"
    forced = runner.invoke(app, ["init", "-o", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert load_pool(out).pool.version == 1


def test_init_onto_a_directory_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    for args in (["init", "-o", str(tmp_path)], ["init", "-o", str(tmp_path), "--force"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "is a directory" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_never_replaces_a_file_that_appears_while_it_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocsscale.config import init_template

    out = tmp_path / "pool.yaml"
    real_render = init_template.render_pool_file

    def render_while_someone_writes(profile_ref: str, topology: str) -> str:
        out.write_text("an operator's file\n")  # between the existence check and the write
        return real_render(profile_ref, topology)

    monkeypatch.setattr(init_template, "render_pool_file", render_while_someone_writes)
    with pytest.raises(UsageError, match="already exists"):
        write_pool_file(out, "ocs2007r2", "one-armed")
    assert out.read_text() == "an operator's file\n"
    assert [p.name for p in tmp_path.iterdir()] == ["pool.yaml"]  # no temp file left


def test_init_with_a_profile_file(runner: CliRunner, tmp_path: Path) -> None:
    profile = tmp_path / "profiles" / "svc.yaml"
    profile.parent.mkdir()
    generic = (EXAMPLES.parent / "profiles" / "generic-tls.yaml").read_text()
    profile.write_text(generic.replace("name: generic-tls", "name: svc"))
    out = tmp_path / "elsewhere" / "pool.yaml"
    out.parent.mkdir()
    result = runner.invoke(app, ["init", "--profile", str(profile), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert load_pool(out).profile.name == "svc"


def test_init_rejects_an_unknown_topology(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "pool.yaml"
    result = runner.invoke(app, ["init", "--topology", "out-of-path", "-o", str(out)])
    assert result.exit_code == 2
    assert "unknown topology 'out-of-path'" in result.stderr
    assert not out.exists()


def test_write_pool_file_refuses_a_topology_the_profile_lacks(tmp_path: Path) -> None:
    generic = (EXAMPLES.parent / "profiles" / "generic-tls.yaml").read_text()
    narrow = generic.replace("[one-armed, two-armed-routed, two-armed-transparent]", "[one-armed]")
    (tmp_path / "narrow.yaml").write_text(narrow)
    with pytest.raises(UsageError, match="does not support two-armed-routed"):
        write_pool_file(tmp_path / "pool.yaml", str(tmp_path / "narrow.yaml"), "two-armed-routed")


def test_profiles_lists_both(runner: CliRunner) -> None:
    result = runner.invoke(app, ["profiles"])
    assert result.exit_code == 0, result.output
    assert "ocs2007r2" in result.stdout and "generic-tls" in result.stdout
    assert "1800 s" in result.stdout


def test_profiles_json(runner: CliRunner) -> None:
    result = runner.invoke(app, ["profiles", "--json"])
    assert result.exit_code == 0, result.output
    data = {p["name"]: p for p in json.loads(result.stdout)}
    assert data["ocs2007r2"]["check_ports"] == [5061, 444]
    assert data["ocs2007r2"]["idle_timeout"] == 1800
    assert data["generic-tls"]["ports"] == [443]


def test_profiles_show(runner: CliRunner) -> None:
    result = runner.invoke(app, ["profiles", "show", "ocs2007r2"])
    assert result.exit_code == 0, result.output
    assert "5061, 5060, 135, 443, 444, 5065, 5069, 5071, 5072, 5073, 5074, 8404" in result.stdout
    assert "65,000 connections per address" in result.stdout
    shown = runner.invoke(app, ["profiles", "show", "ocs2007r2", "--json"])
    assert json.loads(shown.stdout)["services"]["linux"] == ["ocs-poolmember", "ocs-focus"]


def test_profiles_show_unknown(runner: CliRunner) -> None:
    result = runner.invoke(app, ["profiles", "show", "nope"])
    assert result.exit_code == 2
    assert "unknown profile 'nope'" in result.stderr


def test_help_texts_teach(runner: CliRunner) -> None:
    for args, phrase in [
        (["check", "--help"], "nothing is contacted"),
        (["init", "--help"], "--force"),
        (["profiles", "--help"], "ocsscale profiles show"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 0
        assert phrase in result.stdout


def test_check_warns_naming_the_legacy_tls_servers(runner: CliRunner, tmp_path: Path) -> None:
    text = variant(
        ONE_ARMED,
        ("  sip_domain: contoso.com ", "  legacy_tls: true\n  sip_domain: contoso.com "),
        ("    fqdn: ocsfe02.contoso.com", "    fqdn: ocsfe02.contoso.com\n    legacy_tls: false"),
    )
    result = runner.invoke(app, ["-c", str(write(tmp_path, text)), "check"])
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.stdout.splitlines() if line.startswith("warning:"))
    assert "accept TLS 1.0 and SHA-1 certificates from ocsfe00, ocsfe01 " in warning
    plain = runner.invoke(app, ["-c", str(EXAMPLES / "one-armed.yaml"), "check"])
    assert "warning" not in plain.stdout


def test_legacy_tls_is_per_server_and_reaches_the_vip_through_a_front_end(tmp_path: Path) -> None:
    from ocsscale.actions.probing import legacy_tls_for

    text = variant(
        ONE_ARMED,
        ("    fqdn: ocsfe02.contoso.com", "    fqdn: ocsfe02.contoso.com\n    legacy_tls: true"),
    )
    pool = load_pool(write(tmp_path, text)).pool
    assert [s.name for s in pool.legacy_tls_servers()] == ["ocsfe02"]
    fe01, fe02 = (str(fe.address) for fe in pool.front_ends)
    assert legacy_tls_for(pool, fe02) and not legacy_tls_for(pool, fe01)
    assert not legacy_tls_for(pool, str(pool.legacy_fe.address))
    assert legacy_tls_for(pool, str(pool.load_balancer.vip))
    bad = variant(
        ONE_ARMED,
        ("  sip_domain: contoso.com ", "  legacy_tls: sometimes\n  sip_domain: contoso.com "),
    )
    with pytest.raises(UsageError) as caught:
        load_pool(write(tmp_path, bad))
    assert f"pool.yaml:{line_of(bad, 'legacy_tls')}:" in caught.value.message
    assert "pool.legacy_tls" in caught.value.message
