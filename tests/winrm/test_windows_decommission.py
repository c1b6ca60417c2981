"""decommission's legacy.stop_services on a Windows legacy FE (a WinRM stand-in with the
OCS front-end services): each service's start mode recorded before, set Disabled, put
back exactly (Manual stays Manual) by the rollback, which proves both the start mode
and the state; Start-Service refuses a Disabled service as Windows does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from windows_pool import WindowsPool, windows_pool

from ocsscale.actions.legacy import LegacyStopServices
from ocsscale.errors import CheckFailed, CommandFailed, StepFailed

pytestmark = pytest.mark.timeout(180)


@pytest.fixture()
def pool(tmp_path: Path) -> Iterator[WindowsPool]:
    with windows_pool(tmp_path, windows_legacy=True) as made:
        yield made


def _services(pool: WindowsPool) -> dict[str, dict[str, object]]:
    return json.loads((pool.standins["fe00"].sandbox / "services.json").read_text())


def _set(pool: WindowsPool, name: str, **values: object) -> None:
    path = pool.standins["fe00"].sandbox / "services.json"
    states = json.loads(path.read_text())
    states[name].update(values)
    path.write_text(json.dumps(states))


def _log(pool: WindowsPool) -> list[str]:
    path = pool.standins["fe00"].sandbox / "services.log"
    return [line.split(" ", 1)[1] for line in path.read_text().splitlines()]


def test_stop_disables_and_the_rollback_puts_back_each_start_mode(pool: WindowsPool) -> None:
    before = _services(pool)
    ctx, hosts = pool.context()
    with hosts:
        action = LegacyStopServices(ctx, {})
        current = action.read()
        # found by display name, W3SVC by name, the running agent that depends on RTCSRV
        assert {"RTCSRV", "RTCMONAGENT", "W3SVC", "CONTOSOAGENT"} <= set(current)
        assert current["RTCMONAGENT"]["start_mode"] == "Manual"
        undo = action.undo_record(current)
        assert undo["services"]["RTCSRV"]["start_mode"] == "Auto"
        evidence = action.verify(action.apply(current))
        configs = [e.split()[1] for e in _log(pool) if e.startswith("config ")]
        for dependant, dependency in [("CONTOSOAGENT", "RTCSRV"), ("RTCRGS", "RTCHOST")]:
            # disabled before what it depends on is stopped (which stops it too)
            assert configs.index(dependant) < configs.index(dependency)
        after = _services(pool)
        assert all(after[n]["status"] == "Stopped" for n in current)
        assert all(after[n]["start_mode"] == "Disabled" for n in current)
        assert action.diff(action.read()) == []  # a second run finds nothing to do
        assert evidence["after"]["RTCSRV"]["start_mode"] == "Disabled"

        action.revert(undo)
        proof = action.verify_reverted(undo)
        action.revert(undo)  # safe twice
    restored = _services(pool)
    for name in current:
        assert restored[name]["start_mode"] == before[name]["start_mode"], name
        assert restored[name]["status"] == before[name]["status"], name
    assert restored["RTCMONAGENT"]["start_mode"] == "Manual"  # not blindly Automatic
    assert proof["services"]["RTCSRV"] == {
        "active": True,
        "stopped": False,
        "start_mode": "Auto",
        "enabled": True,
    }
    log = _log(pool)
    starts = [e.split()[1] for e in log if e.startswith("start ")]
    for dependant, dependency in [("RTCRGS", "RTCHOST"), ("RTCHOST", "RTCSRV")]:
        assert starts.index(dependency) < starts.index(dependant)  # dependencies first


def test_a_service_left_disabled_after_the_revert_fails_the_proof(pool: WindowsPool) -> None:
    ctx, hosts = pool.context()
    with hosts:
        action = LegacyStopServices(ctx, {})
        current = action.read()
        undo = action.undo_record(current)
        action.verify(action.apply(current))
        action.revert(undo)
        # by hand: started again, but left Disabled (it runs until the next reboot)
        _set(pool, "RTCSRV", start_mode="Disabled")
        states = _services(pool)
        # what the proof read before (running only) holds...
        assert all(
            (states[n]["status"] == "Running") == s["active"] for n, s in undo["services"].items()
        )
        # ...the start mode does not
        with pytest.raises(StepFailed, match=r"RTCSRV \(start mode Disabled, was Auto\)"):
            action.verify_reverted(undo)
        _set(pool, "RTCSRV", start_mode="Auto", status="Stopped")
        with pytest.raises(StepFailed, match=r"RTCSRV \(not running\)"):
            action.verify_reverted(undo)


def test_start_service_refuses_a_disabled_service(pool: WindowsPool) -> None:
    _set(pool, "RTCOVC", status="Stopped")
    ctx, hosts = pool.context()
    with hosts:
        host = ctx.host("fe00")
        with pytest.raises(CommandFailed) as info:
            host.set_service("RTCOVC", "Disabled", running=True)  # type: ignore[attr-defined]
        assert "Cannot start service RTCOVC on computer '.'" in info.value.message
        assert "because it is disabled" in info.value.message
        assert _services(pool)["RTCOVC"]["start_mode"] == "Disabled"
        assert _services(pool)["RTCOVC"]["status"] == "Stopped"
        answer = host.set_service("RTCOVC", "Manual", running=True)  # type: ignore[attr-defined]
    assert answer == {"name": "RTCOVC", "status": "Running", "start_mode": "Manual"}


def test_an_unreadable_start_mode_fails_closed(pool: WindowsPool) -> None:
    # a display string (a localized host's "Automatique") is not Win32_Service's value
    _set(pool, "RTCHOST", start_mode="Automatique")
    ctx, hosts = pool.context()
    with hosts:
        action = LegacyStopServices(ctx, {})
        with pytest.raises(StepFailed, match="unreadable state of service RTCHOST"):
            action.read()
        _set(pool, "RTCHOST", start_mode="Auto")
        current = action.read()
        undo = action.undo_record(current)
        _set(pool, "RTCHOST", start_mode="")  # WMI did not answer
        with pytest.raises(StepFailed, match="unreadable state of service RTCHOST"):
            action.verify_reverted(undo)


def test_a_start_mode_that_cannot_be_put_back_stops_before_any_change(
    pool: WindowsPool,
) -> None:
    _set(pool, "RTCHOST", start_mode="System")
    before = _services(pool)
    ctx, hosts = pool.context()
    with hosts:
        action = LegacyStopServices(ctx, {})
        with pytest.raises(CheckFailed, match=r"cannot put back the start mode of RTCHOST"):
            action.apply(action.read())
    assert _services(pool) == before


def test_an_undo_record_of_the_previous_version_still_reverts(pool: WindowsPool) -> None:
    """The previous version recorded {active, enabled, start_mode} on Windows."""
    ctx, hosts = pool.context()
    with hosts:
        action = LegacyStopServices(ctx, {})
        current = action.read()
        old = {
            "host": "fe00",
            "services": {
                n: {"active": s["active"], "enabled": s["enabled"], "start_mode": s["start_mode"]}
                for n, s in current.items()
            },
        }
        action.verify(action.apply(current))
        action.revert(old)
        action.verify_reverted(old)
    assert _services(pool)["RTCMONAGENT"]["start_mode"] == "Manual"
