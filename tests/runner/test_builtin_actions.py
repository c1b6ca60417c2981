"""The core actions against the local transport."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsscale.actions.base import Context, registry
from ocsscale.config import load_pool
from ocsscale.errors import CheckFailed
from ocsscale.runner.plugins import load_actions
from ocsscale.transports.factory import HostPool

from .conftest import LocalPool


def _ctx(pool: LocalPool) -> tuple[Context, HostPool]:
    load_actions()
    loaded = load_pool(pool.pool)
    hosts = HostPool(loaded)
    ctx = Context(pool=loaded.pool, profile=loaded.profile, host=hosts, pool_path=pool.pool)
    return ctx, hosts


def _action(ctx: Context, action: str, **args: object):  # noqa: ANN202
    return registry()[action](ctx, args)


def test_host_reachable_records_and_checks_resolution(local_pool: LocalPool) -> None:
    ctx, hosts = _ctx(local_pool)
    with hosts:
        ok = _action(ctx, "host.reachable", host="client01", name="localhost", expect=["127.0.0.1"])
        evidence = ok.apply(ok.read())
        assert evidence["addresses"] == ["127.0.0.1"] and evidence["host"] == "client01"
        wrong = _action(
            ctx, "host.reachable", host="client01", name="localhost", expect=["10.9.9.9"]
        )
        with pytest.raises(CheckFailed, match="expected 10.9.9.9"):
            wrong.apply(wrong.read())


def test_restart_uses_the_profile_services_and_records_an_empty_undo(
    local_pool: LocalPool, tmp_path: Path
) -> None:
    ctx, hosts = _ctx(local_pool)
    with hosts:
        restart = _action(ctx, "host.restart_services", host="fe01")
        # fe01 is a Linux host: the profile's Linux service list
        assert [c.summary for c in restart.describe()] == ["restart ocs-poolmember, ocs-focus"]
        assert restart.undo_record(None) == {
            "restarted": ["ocs-poolmember", "ocs-focus"],
            "nothing_to_put_back": True,
        }
        assert restart.apply(None) == {"host": "fe01", "restarted": ["ocs-poolmember", "ocs-focus"]}
        none = _action(ctx, "host.restart_services", host="client01", services=[])
        assert none.diff(None) == []
        flush = _action(ctx, "host.flush_dns", host="client01")
        assert flush.undo_record(None) is None
        assert flush.apply(None) == {"host": "client01", "flushed": True}


def test_pool_check_fails_when_the_file_no_longer_validates(local_pool: LocalPool) -> None:
    ctx, hosts = _ctx(local_pool)
    check = _action(ctx, "pool.check")
    assert check.apply(None)["front_ends"] == ["fe01", "fe02"]
    local_pool.pool.write_text(
        local_pool.pool.read_text().replace("topology: one-armed", "topology: dsr")
    )
    with pytest.raises(CheckFailed, match="no longer validates"):
        check.apply(None)
