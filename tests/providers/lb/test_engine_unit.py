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
