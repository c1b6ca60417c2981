"""`ocsscale lab load` in a real one-armed lab: the load runs inside the client's
namespace and resolves the pool name as that client does.

Before any cutover the lab's DNS points the pool name at the legacy FE, so every
request must be answered by ocsfe00; no LB is configured, so the VIP is silent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ocsscale.runner.client_load import outside_drill
from ocsscale.runner.journal import Journal
from ocsscale_lab.load import LabLoad
from tests.lab.conftest import RunningLab, ocsscale_cli
from tests.lab.fe_support import output, pool_copy, tool


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


def test_run_client_load_comes_from_every_test_client_the_windows_one_too(
    one_armed_lab: RunningLab, tmp_path: Path
) -> None:
    """`run --client-load`: the admin machine, the Linux client over SSH and the Windows
    client (client02, the WinRM stand-in) running its bursts itself; before any cutover
    the pool name leads every one of them to the legacy FE, and nothing fails."""
    pool = pool_copy(one_armed_lab, tmp_path / "run")
    result = tool(one_armed_lab, pool, "run", "--phase", "preflight", "--yes", "--client-load", "4")
    assert result.returncode == 0, output(result)
    journal = Journal.open(pool.parent / ".ocsscale")
    try:
        (load,) = [r["load"] for r in journal.runs() if r.get("load")]
    finally:
        journal.close()
    assert load["not_loaded"] == {}, load["not_loaded"]
    outside = outside_drill(load["by_phase"])
    assert set(outside) == {"admin", "client01", "client02"}, outside
    for source, tally in outside.items():
        assert tally["requests"] > 0 and tally["failed"] == 0, (source, load["by_phase"])
    windows = load["clients"]["client02"]
    # the admin's targets, port for port; a TLS handshake where the admin speaks TLS
    admin = {t["port"]: t["kind"] for t in load["clients"]["admin"]["targets"]}
    kinds = {t["port"]: t["kind"] for t in windows["targets"]}
    assert kinds == {p: "tcp" if k == "tcp" else "tls" for p, k in admin.items()}
    legacy = one_armed_lab.address("ocsfe00")
    assert set(windows["totals"]["by_address"]) == {legacy}  # resolved on client02
    tls = [t for key, t in windows["by_target"].items() if key.startswith("tls ")]
    assert tls and all(t["by_server"] == {"ocsfe00": t["ok"]} for t in tls), windows["by_target"]
