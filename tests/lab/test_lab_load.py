"""`ocsscale lab load` in a real one-armed lab: the load runs inside the client's
namespace and resolves the pool name as that client does.

Before any cutover the lab's DNS points the pool name at the legacy FE, so every
request must be answered by ocsfe00; no LB is configured, so the VIP is silent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ocsscale.lab.load import LabLoad
from tests.lab.conftest import RunningLab, ocsscale_cli


def leftover_load_dirs(lab: RunningLab) -> list[Path]:
    return sorted(lab.state.directory.glob("load-*"))


def test_load_through_the_name_is_answered_by_the_legacy_fe(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    out = tmp_path / "load.json"
    name = one_armed_lab.state.name
    result = ocsscale_cli(
        "lab", "load", "-n", name, "--through", "name", "--duration", "3", "--rate", "20",
        "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert set(report["clients"]) == {"client01"}  # the Linux test clients
    totals = report["totals"]
    assert totals["requests"] > 0
    assert totals["failed"] == 0, report["clients"]["client01"]["failures"]
    assert totals["by_server"] == {"ocsfe00": totals["requests"]}
    client = report["clients"]["client01"]
    assert client["totals"]["by_address"] == {one_armed_lab.address("ocsfe00"): totals["requests"]}
    kinds = {t["kind"]: t["port"] for t in client["targets"]}
    assert kinds == {"sip-tls": 5061, "tls": 444, "tcp": 5065}
    for tally in client["by_target"].values():
        assert tally["ok"] > 0 and tally["by_server"] == {"ocsfe00": tally["ok"]}
    assert "0 failed" in result.stdout and "ocsfe00" in result.stdout
    assert not leftover_load_dirs(one_armed_lab)


def test_the_vip_is_silent_without_a_load_balancer(one_armed_lab: RunningLab) -> None:
    name = one_armed_lab.state.name
    result = ocsscale_cli(
        "lab", "load", "-n", name, "--through", "vip", "--duration", "1", "--rate", "5"
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Nothing answered on the VIP" in result.stdout
    assert "0 failed" not in result.stdout


def test_bounds_are_refused_before_anything_starts(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    name = one_armed_lab.state.name
    out = tmp_path / "never.json"
    cases = [
        (["--duration", "601", "--rate", "1"], "over the limit of 600"),
        (["--duration", "3", "--rate", "201"], "over the limit of 200"),
        (["--duration", "0", "--rate", "1"], "more than 0"),
        (["--duration", "3", "--rate", "1", "--through", "dns"], "--through must be one of"),
    ]
    for args, message in cases:
        result = ocsscale_cli("lab", "load", "-n", name, *args, "-o", str(out))
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr
        assert "Traceback" not in result.stderr
    assert not out.exists()
    nowhere = ocsscale_cli(
        "lab", "load", "-n", name, "--duration", "1", "--rate", "1",
        "-o", str(tmp_path / "missing" / "load.json"),
    )  # fmt: skip
    assert nowhere.returncode == 2 and "does not exist" in nowhere.stderr
    assert not leftover_load_dirs(one_armed_lab)


def test_a_background_load_takes_marks_and_stops_on_request(one_armed_lab: RunningLab) -> None:
    """How the drill and the cutover use it: start, mark each step, stop."""
    load = LabLoad(one_armed_lab.state, duration=120, rate=20, through="name")
    load.start()  # returns once the client's load runs
    try:
        load.mark("step-one")
        time.sleep(1.5)  # let some requests happen (a pause, not an assertion on time)
        load.mark("step-two")
        time.sleep(1.5)
    finally:
        reports = load.stop()
    report = reports["client01"]
    assert report.stopped_by == "caller"
    assert [m["label"] for m in report.marks] == ["step-one", "step-two"]
    assert report.labels["step-one"]["ok"] > 0
    assert report.labels["step-two"]["ok"] > 0
    assert report.failed == 0
    assert not leftover_load_dirs(one_armed_lab)
