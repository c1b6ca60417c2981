"""decommission's legacy.stop_services in the lab, through the real CLI on the admin host
and SSH to the legacy FE (ocsfe00), whose services run under the lab's service manager:
stopped and disabled (a host restart leaves them down), and the rollback puts back each
service's start mode as it was (one of them was disabled before) and starts them; a
service left disabled after the rollback fails the rollback's proof.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ocsscale.actions.base import Context
from ocsscale.actions.legacy import LegacyStopServices
from ocsscale.config.loader import load_pool
from ocsscale.errors import StepFailed
from ocsscale.runner.plugins import load_actions
from ocsscale.transports.factory import HostPool
from ocsscale_lab import hostsvc, services, svc

from .conftest import RunningLab
from .fe_support import entries, nothing_to_undo, output, pool_copy, tool

pytestmark = pytest.mark.lab

LEGACY = "ocsfe00"
PLAYBOOK = """\
version: 1
phases:
  - id: decommission
    title: Stop the legacy front end's services
    section: test
    steps:
      - id: stop-services
        action: legacy.stop_services
        args: {legacy: ocsfe00}
"""


def _state(lab: RunningLab) -> dict[str, tuple[bool, str]]:
    """Each service of the legacy FE: (running, start mode), read by the lab itself."""
    out = {}
    for name in (hostsvc.POOLMEMBER, hostsvc.FOCUS):
        service = services.load(lab.state.directory, LEGACY, name)
        out[name] = (
            services.pid_of(lab.state.directory, service) is not None,
            services.start_mode(lab.state.directory, service),
        )
    return out


def _verify_reverted(lab: RunningLab, pool: Path, undo: Any) -> Any:
    """The rollback's proof once more, from the admin host over SSH."""

    def go() -> Any:
        load_actions()
        loaded = load_pool(pool)
        with HostPool(loaded) as hosts:
            ctx = Context(pool=loaded.pool, profile=loaded.profile, host=hosts)
            return LegacyStopServices(ctx, {"legacy": LEGACY}).verify_reverted(undo)

    return lab.inside("admin", go)


def test_decommission_and_rollback_put_back_each_start_mode(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    lab = one_armed_lab
    lab_dir = lab.state.directory
    pool = pool_copy(lab, tmp_path / "run")
    playbook = tmp_path / "decommission.yaml"
    playbook.write_text(PLAYBOOK)
    focus = services.load(lab_dir, LEGACY, hostsvc.FOCUS)
    # before: the Focus runs but is disabled (started by hand): the rollback must keep that
    services.set_start_mode(lab_dir, focus, "disabled")
    before = _state(lab)
    assert before == {hostsvc.POOLMEMBER: (True, "enabled"), hostsvc.FOCUS: (True, "disabled")}
    try:
        result = tool(
            lab, pool, "run", "--phase", "decommission", "--playbook", str(playbook), "--yes",
            "--no-hold",
        )  # fmt: skip
        assert result.returncode == 0, output(result)
        assert _state(lab) == {n: (False, "disabled") for n in before}
        (step,) = [e for e in entries(pool) if e["action"] == "legacy.stop_services"]
        assert step["status"] == "done"
        recorded = step["evidence"]["before"]
        assert recorded[hostsvc.POOLMEMBER]["start_mode"] == "enabled"
        assert recorded[hostsvc.FOCUS]["start_mode"] == "disabled"
        # a restart of the host leaves disabled services down
        assert svc.control(lab_dir, LEGACY, "boot", "all")[0] == 0
        assert _state(lab) == {n: (False, "disabled") for n in before}

        result = tool(lab, pool, "rollback", "--yes")
        assert result.returncode == 0, output(result)
        assert _state(lab) == before  # each start mode as it was, and running again
        assert nothing_to_undo(pool)
        undo = {"host": LEGACY, "services": recorded}
        assert _verify_reverted(lab, pool, undo)["services"][hostsvc.FOCUS]["start_mode"] == (
            "disabled"
        )

        # started, but left disabled by hand: running, as the old proof read it, yet wrong
        poolmember = services.load(lab_dir, LEGACY, hostsvc.POOLMEMBER)
        services.set_start_mode(lab_dir, poolmember, "disabled")
        with pytest.raises(
            StepFailed, match=r"ocs-poolmember \(start mode disabled, was enabled\)"
        ):
            _verify_reverted(lab, pool, undo)

        # an undo record of the previous version (no start mode): enabled as before
        old = {"host": LEGACY, "services": {hostsvc.POOLMEMBER: {"active": True, "enabled": True}}}

        def revert_old() -> Any:
            load_actions()
            loaded = load_pool(pool)
            with HostPool(loaded) as hosts:
                ctx = Context(pool=loaded.pool, profile=loaded.profile, host=hosts)
                action = LegacyStopServices(ctx, {"legacy": LEGACY})
                action.revert(old)
                return action.verify_reverted(old)

        lab.inside("admin", revert_old)
        assert _state(lab)[hostsvc.POOLMEMBER] == (True, "enabled")
    finally:
        # as `lab up` left them: enabled and running
        for name in before:
            service = services.load(lab_dir, LEGACY, name)
            services.set_start_mode(lab_dir, service, "enabled")
            services.start(lab_dir, service)
