"""The systemd unit the engine driver writes on a real LB host."""

from __future__ import annotations

from ocsscale.providers.lb.templates import render


def test_the_unit_brings_the_vip_back_checks_the_farm_then_serves() -> None:
    unit = render(
        "engine.service.j2",
        command="/usr/local/bin/ocsscale",
        farm_path="/etc/ocsscale/lb/farm.yaml",
        description="ocsscale load balancer for ocspool.contoso.com",
        vip="10.0.0.40/16",
        vip_interface="eth0",
    )
    lines = [line for line in unit.splitlines() if line and not line.startswith("#")]
    start = [line for line in lines if line.startswith("ExecStart")]
    # order matters: the VIP (not persistent) before the check that refuses a foreign VIP
    assert start == [
        "ExecStartPre=-/sbin/ip addr add 10.0.0.40/16 dev eth0",
        "ExecStartPre=/usr/local/bin/ocsscale lb check --farm /etc/ocsscale/lb/farm.yaml",
        "ExecStart=/usr/local/bin/ocsscale lb serve --farm /etc/ocsscale/lb/farm.yaml",
    ]
    assert "ExecReload=/bin/kill -HUP $MAINPID" in lines
    assert "WantedBy=multi-user.target" in lines


def test_each_driver_module_imports_on_its_own() -> None:
    """The drivers import their settings from config/ (and the manual driver the
    profiles): importing a driver, or the settings, first must not meet a half-loaded
    module."""
    import subprocess
    import sys

    drivers = [f"ocsscale.providers.lb.{m}" for m in ("engine", "haproxy", "manual", "vendors")]
    for module in [*drivers, "ocsscale.config.lb_settings"]:
        done = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-800:]


def test_the_farm_carries_the_pool_files_check_timing_and_reads_it_back() -> None:
    """load_balancer.checks become the farm's health inter/downinter/timeout/fall/rise,
    which the engine's farm model accepts; the view reads them back in the pool
    file's terms, and a farm that does not set them shows the engine's defaults."""
    import dataclasses
    from pathlib import Path

    from ocsscale.config.lb_settings import EngineSettings
    from ocsscale.config.loader import load_pool
    from ocsscale.engine.loader import parse_farm
    from ocsscale.providers.lb.base import CheckTiming, LbSite, view_diff
    from ocsscale.providers.lb.engine import EngineDriver, check_view
    from ocsscale.providers.plugin import Ports

    def no_host(name: str) -> None:
        raise AssertionError(f"rendering must not connect to {name}")

    repo = Path(__file__).resolve().parents[3]
    loaded = load_pool(repo / "examples" / "one-armed.yaml")
    site = LbSite.from_pool(loaded.pool, loaded.profile)
    driver = EngineDriver(EngineSettings(kind="engine"), site, Ports(no_host))
    farm = dataclasses.replace(site.farm, checks=CheckTiming(0.75, 0.3, 3, 4))
    health = parse_farm(driver.render_farm(farm)).health
    assert (health.inter, health.downinter, health.timeout, health.fall, health.rise) == (
        0.75,
        0.75,
        0.3,
        3,
        4,
    )
    assert health.ports == [5061, 444]
    assert check_view(health.model_dump()) == farm.checks.view()
    # the engine's own defaults where the farm is silent: drift against the plan
    assert view_diff({"checks": site.farm.checks.view()}, {"checks": check_view({})}) == [
        "checks interval: 0.25 on the LB, 0.5 planned",
        "checks timeout: 0.5 on the LB, 0.3 planned",
    ]
