"""`load_balancer.driver`: a union by `kind`, each driver with settings of its own."""

from __future__ import annotations

from pathlib import Path

from .helpers import ONE_ARMED, issues_of, line_of, load_text, variant

ENGINE = "  driver: engine                     # engine (bundled) | haproxy | manual"


def _driver(block: str) -> str:
    return variant(ONE_ARMED, (ENGINE, block))


def test_a_bare_name_is_the_driver_with_its_defaults(tmp_path: Path) -> None:
    lb = load_text(tmp_path, ONE_ARMED).pool.load_balancer
    assert lb.driver.kind == "engine"
    assert lb.driver.service_control == "systemctl {action} {service}"
    haproxy = load_text(tmp_path, _driver("  driver: haproxy")).pool.load_balancer.driver
    assert haproxy.kind == "haproxy" and haproxy.config_path == "/etc/haproxy/haproxy.cfg"


def test_each_driver_owns_its_settings(tmp_path: Path) -> None:
    text = _driver(
        "  driver:\n    kind: haproxy\n    config_path: /srv/lb/haproxy.cfg\n"
        "    runtime_socket: /run/lb.sock"
    )
    driver = load_text(tmp_path, text).pool.load_balancer.driver
    assert (driver.config_path, driver.runtime_socket) == ("/srv/lb/haproxy.cfg", "/run/lb.sock")
    manual = load_text(tmp_path, _driver("  driver: {kind: manual, vendor: Kemp}"))
    assert manual.pool.load_balancer.driver.vendor == "kemp"


def test_the_manual_vendor_is_a_choice_and_the_old_spelling_still_reads(tmp_path: Path) -> None:
    for written, read in (("WebMux", "webmux"), ("F5", "f5"), ("netscaler", "netscaler")):
        text = _driver(f"  driver: {{kind: manual, vendor: {written}}}")
        assert load_text(tmp_path, text).pool.load_balancer.driver.vendor == read
    assert load_text(tmp_path, _driver("  driver: manual")).pool.load_balancer.driver.vendor == (
        "webmux"
    )
    text = _driver("  driver:\n    kind: manual\n    vendor: Barracuda-s3cr3t")
    issues = issues_of(tmp_path, text)
    assert [(i.rule, i.path) for i in issues] == [
        ("lb.vendor.unknown", "load_balancer.driver.vendor")
    ]
    assert issues[0].line == line_of(text, "vendor:")
    message = issues[0].message
    assert "webmux, f5, kemp, netscaler, generic" in message
    assert "s3cr3t" not in message  # the value is not echoed


def test_a_setting_of_another_driver_is_an_unknown_key_with_its_line(tmp_path: Path) -> None:
    text = _driver("  driver:\n    kind: engine\n    config_path: /etc/haproxy/haproxy.cfg")
    issues = issues_of(tmp_path, text)
    assert [(i.rule, i.path) for i in issues] == [
        ("schema.unknown-key", "load_balancer.driver.config_path")
    ]
    assert issues[0].line == line_of(text, "config_path:")


def test_an_unknown_driver_names_the_known_ones(tmp_path: Path) -> None:
    issues = issues_of(tmp_path, _driver("  driver: {kind: f5}"))
    assert len(issues) == 1
    assert issues[0].path.startswith("load_balancer.driver")
    assert "engine" in issues[0].message and "haproxy" in issues[0].message


def test_service_control_must_say_where_the_action_goes(tmp_path: Path) -> None:
    text = _driver("  driver:\n    kind: engine\n    service_control: systemctl restart x")
    issues = issues_of(tmp_path, text)
    assert [i.rule for i in issues] == ["lb.driver.service-control"]
    assert issues[0].line == line_of(text, "service_control:")


def test_paths_on_the_lb_host_are_absolute(tmp_path: Path) -> None:
    issues = issues_of(tmp_path, _driver("  driver: {kind: engine, farm_path: farm.yaml}"))
    assert [i.rule for i in issues] == ["lb.driver.path"]
