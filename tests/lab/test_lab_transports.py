"""The lab's pool file drives ocsscale's own transports from the admin host."""

from __future__ import annotations

import pytest

from ocsscale.config.loader import load_pool
from ocsscale.transports.factory import connect
from ocsscale_lab import hostsvc, services
from ocsscale_lab.topology import POOL_FQDN

from .conftest import RunningLab, ocsscale_cli

pytestmark = pytest.mark.lab


def test_transports_from_the_lab_pool_file(one_armed_lab: RunningLab) -> None:
    lab = one_armed_lab
    loaded = load_pool(lab.state.pool_file)
    legacy = lab.address("ocsfe00")

    def drive() -> tuple[list[str], list[str]]:
        fe = connect(loaded.pool.host("ocsfe01"), loaded)
        windows = connect(loaded.pool.host("client02"), loaded)
        try:
            fe.restart_services([hostsvc.POOLMEMBER])
            return fe.resolve(POOL_FQDN), windows.resolve(POOL_FQDN)
        finally:
            fe.close()
            windows.close()

    service = services.load(lab.state.directory, "ocsfe01", hostsvc.POOLMEMBER)
    before = services.pid_of(lab.state.directory, service)
    from_fe, from_windows = lab.inside("admin", drive)
    assert from_fe == [legacy]
    assert from_windows == [legacy]
    after = services.pid_of(lab.state.directory, service)
    assert after is not None and after != before


def test_plan_runs_on_the_admin_host(one_armed_lab: RunningLab) -> None:
    lab = one_armed_lab
    result = ocsscale_cli(
        "lab", "exec", "admin", "--name", lab.state.name, "--",
        "ocsscale", "-c", str(lab.state.pool_file), "plan",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "ocsfe01" in result.stdout
