"""A Windows front end's services (issue 17, point 0), against WinRM stand-ins:

- the failover drill's service stop on a Windows FE is Stop-Service -Force, which stops
  the services depending on the Front-End service too; its restore starts every one of
  them again, with no start mode changed (it used to send a script the stand-in, and
  the tool's own PowerShell 2.0 allowlist, do not know, and started RTCSRV alone);
- `--bind-service`: a Windows service played by real processes, stopped before it counts
  as Stopped and started before it counts as Running; a start that fails leaves it
  Stopped with the reason (the lab's Windows FEs bind RTCSRV to their pool member).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from windows_pool import WindowsPool, windows_pool

from ocsscale.actions.lb_drill import LbFailoverDrill
from ocsscale.errors import TransportError, UndoRecordError

pytestmark = pytest.mark.timeout(180)

DEPENDANTS = {
    "RTCIMMCU", "RTCACPMCU", "RTCAVMCU", "RTCDATAMCU", "RTCHOST", "RTCRGS", "CONTOSOAGENT",
}  # fmt: skip


def _services(pool: WindowsPool, host: str) -> dict[str, dict[str, object]]:
    raw = json.loads((pool.standins[host].sandbox / "services.json").read_text())
    # a bare status is what the stand-in writes for a plain service until it changes
    return {
        n: {"status": v, "start_mode": "Auto"} if isinstance(v, str) else v for n, v in raw.items()
    }


def test_the_drill_stops_the_front_end_service_and_restores_what_it_stopped(
    tmp_path: Path,
) -> None:
    with windows_pool(tmp_path) as pool:
        before, before_fe02 = _services(pool, "fe01"), _services(pool, "fe02")
        ctx, hosts = pool.context()
        with hosts:
            drill = LbFailoverDrill(ctx, {"fe": "fe01", "mode": "service:5061"})
            record = drill.undo_record({})
            assert DEPENDANTS | {"RTCSRV"} <= set(record["windows_running"])
            assert record["windows_running"][-1] == "RTCSRV"  # dependants stop first
            drill.check_undo(record)

            drill._fault(restore=False, record=record)
            stopped = _services(pool, "fe01")
            assert {n for n, s in stopped.items() if s["status"] == "Stopped"} >= (
                DEPENDANTS | {"RTCSRV"}
            )
            assert stopped["W3SVC"]["status"] == "Running"  # not behind the check port

            drill.revert(record)
        after = _services(pool, "fe01")
        assert {n: (s["status"], s.get("start_mode")) for n, s in after.items()} == {
            n: (s["status"], s.get("start_mode")) for n, s in before.items()
        }  # every state and every start mode as before the drill
        assert _services(pool, "fe02") == before_fe02  # the other FE untouched

        bad = {**record, "windows_running": ["RTCSRV", "*"]}
        with pytest.raises(UndoRecordError, match="windows_running"):
            drill.check_undo(bad)


def test_a_bound_service_stops_and_starts_its_processes(tmp_path: Path) -> None:
    control = tmp_path / "control.sh"
    log, rc = tmp_path / "control.log", tmp_path / "control.rc"
    rc.write_text("0")
    control.write_text(f'echo "$1 $2" >> {log}\necho "no listener on 5061" >&2\nexit $(cat {rc})\n')
    args = (
        "--bind-service", "RTCSRV=ocs-poolmember,ocs-focus",
        "--service-control", f"sh {control}",
    )  # fmt: skip
    with windows_pool(tmp_path / "pool", *args) as pool:
        ctx, hosts = pool.context()
        with hosts:
            fe = hosts.get("fe01")
            assert fe.set_service("RTCHOST", "Auto", running=False)["status"] == "Stopped"
            assert not log.exists()  # an unbound service: no process touched
            fe.set_service("RTCSRV", "Auto", running=False)
            assert log.read_text().split("\n")[:2] == ["stop ocs-poolmember", "stop ocs-focus"]
            assert _services(pool, "fe01")["CONTOSOAGENT"]["status"] == "Stopped"
            assert fe.set_service("RTCSRV", "Auto", running=True)["status"] == "Running"
            assert log.read_text().split("\n")[2:4] == ["start ocs-poolmember", "start ocs-focus"]

            fe.set_service("RTCSRV", "Auto", running=False)
            rc.write_text("1")  # the process does not come up
            with pytest.raises(TransportError, match="no listener on 5061"):
                fe.set_service("RTCSRV", "Auto", running=True)
        assert _services(pool, "fe01")["RTCSRV"]["status"] == "Stopped"
