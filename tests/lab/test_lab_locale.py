"""A German Windows in the lab (`--fault client02:locale-de`): the WinRM stand-in's
netstat says HERGESTELLT. The lab's front ends are Linux (no Windows FE yet), so what
is proven here: decommission's drain, reading the legacy FE (ocsfe00) over SSH with
`ss`, sees the German Windows client's connection and fails listing it, then passes
once it is gone; and the Windows host's own table, read through .NET, lists the
admin host's WinRM connection to it whatever its language."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocsscale.actions.base import Context
from ocsscale.actions.decommission import LegacyDrain
from ocsscale.config.loader import load_pool
from ocsscale.errors import CheckFailed
from ocsscale.lab import services
from ocsscale.runner.plugins import load_actions
from ocsscale.transports.factory import HostPool

from .conftest import RUN_ID, RunningLab, bring_up
from .fe_support import pool_copy

pytestmark = pytest.mark.lab

HOLD = 8.0


@pytest.fixture(scope="module")
def german_lab() -> Iterator[RunningLab]:
    yield from bring_up(f"tde{RUN_ID}", "one-armed", 1, faults=["client02:locale-de"])


def drain_sees_a_held_client(
    lab: RunningLab, pool: Path, legacy_name: str = "ocsfe00", holder: str = "client02"
) -> dict[str, Any]:
    """Decommission's drain on `legacy_name`, in the admin namespace, while the Windows
    host `holder` holds a connection to its first SIP port: what the holder saw, the
    drain's failure (None: it never listed the connection), the drain once the
    connection is gone, and the WinRM peers in the holder's own table."""
    legacy = lab.address(legacy_name)

    def go() -> dict[str, Any]:
        load_actions()
        loaded = load_pool(pool)
        with HostPool(loaded) as hosts:
            ctx = Context(pool=loaded.pool, profile=loaded.profile, host=hosts)
            drain = LegacyDrain(
                ctx, {"legacy": legacy_name, "drain_timeout": 1, "on_timeout": "fail"}
            )
            client = ctx.host(holder)
            held: dict[str, Any] = {}
            port = drain.ports[0]
            thread = threading.Thread(
                target=lambda: held.update(client.tcp_hold(legacy, port, 5.0, hold=HOLD))
            )
            thread.start()
            failed = None
            try:
                for _ in range(int(HOLD * 2)):  # until the held connection is listed
                    try:
                        drain.apply({})
                    except CheckFailed as exc:
                        failed = exc.message
                        break
                    threading.Event().wait(0.5)
            finally:
                thread.join()
            drained = drain.apply({})
            winrm = [c.remote for c in client.connections([5986])]
            return {"held": held, "failed": failed, "drained": drained, "winrm": winrm}

    return lab.inside("admin", go)


def test_the_drain_and_the_windows_table_hold_with_a_german_windows(
    german_lab: RunningLab, tmp_path: Path
) -> None:
    lab = german_lab
    pool = pool_copy(lab, tmp_path / "run")
    windows = lab.address("client02")
    admin = lab.address("admin")
    standin = services.load(lab.state.directory, "client02", "winrm")
    assert "--locale de" in " ".join(standin.argv)  # the fault is in place
    seen = drain_sees_a_held_client(lab, pool)
    assert seen["held"]["connected"], seen
    assert seen["failed"] and f"{windows} (port " in seen["failed"], seen
    assert seen["drained"]["seen"][-1]["clients"] == 0
    assert admin in seen["winrm"], seen
