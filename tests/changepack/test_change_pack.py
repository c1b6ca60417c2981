"""`ocsscale plan --format html|md|json`: the change pack for the approval.

Built from the pool file and the playbook alone: the examples' 10.x hosts and
the lab pool's 198.18.x hosts are only planned, never contacted. The HTML is
opened in headless Chromium (as the report's test does) and must name every
phase, host, manual step and the rollback plan; md and json carry the same.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
from pathlib import Path

import pytest

from ocsscale.report.render import duration
from ocsscale_lab.poolfile import render as lab_pool_text
from ocsscale_lab.state import LabState
from tests.report.chromium import needs_chromium
from tests.report.chromium import run_chromium as _chromium
from tests.report.conftest import HOSTS, PLAYBOOK, POOL_YAML, cli
from tests.report.png import distinct_colours, read_png

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [REPO / "examples" / "one-armed.yaml", REPO / "examples" / "two-armed-routed.yaml"]


def _lab_pool(tmp_path: Path) -> Path:
    """A lab's pool file as `ocsscale lab up` writes it (no lab brought up): two-armed
    routed, three FEs, the appliance behind the manual driver, so there are manual
    LB steps and the routing phase runs."""
    state = LabState("cpack", "two-armed-routed", 3, True, tmp_path, lb="appliance")
    path = tmp_path / "lab-pool.yaml"
    path.write_text(lab_pool_text(state, state.topo()))
    return path


@pytest.fixture(params=["one-armed", "two-armed-routed", "lab"])
def pool(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "lab":
        return _lab_pool(tmp_path)
    # a copy: the change pack is never written next to the shipped examples
    src = REPO / "examples" / f"{request.param}.yaml"
    dst = tmp_path / src.name
    dst.write_text(src.read_text())
    return dst


def _pack(pool: Path, fmt: str, *extra: str) -> str:
    result = cli(pool, "plan", "--format", fmt, *extra)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def _pool_hosts(pool: Path) -> list[str]:
    from ocsscale.config.loader import load_pool

    p = load_pool(pool).pool
    names = [p.legacy_fe.name, *(fe.name for fe in p.front_ends), *(c.name for c in p.test_clients)]
    if p.load_balancer.host is not None:
        names.append(p.load_balancer.host.name)
    return names


def _expected(model: dict) -> dict[str, list[str]]:
    """What every rendering must name, from the JSON model."""
    live = [p for p in model["phases"] if not p["skipped"]]
    return {
        "phases": [p["id"] for p in model["phases"]],
        "steps": [s["id"] for p in live for s in p["steps"]],
        "hosts": sorted({t for p in live for s in p["steps"] for t in s["targets"]}),
        "manual": [m["step"] for p in live for m in p["manual"]],
        "rollback": [p["rollback"]["command"] for p in live],
    }


@needs_chromium
def test_chromium_renders_the_change_pack_and_it_names_everything(
    pool: Path, tmp_path: Path
) -> None:
    model = json.loads(_pack(pool, "json"))
    out = tmp_path / "change.html"
    result = cli(pool, "plan", "--format", "html", "-o", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.is_file() and not list(tmp_path.glob(".change.html.*"))  # atomic: no temp left
    page = out.resolve().as_uri()

    shot = tmp_path / "pack.png"
    done = _chromium(tmp_path / "p-shot", f"--screenshot={shot}", "--window-size=1280,2000", page)
    assert shot.exists(), done.stderr[-2000:]
    assert read_png(shot)[:2] == (1280, 2000)
    assert distinct_colours(shot) > 200  # styled text, badges and the topology picture

    dom = _chromium(tmp_path / "p-dom", "--dump-dom", page)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = html.unescape(dom.stdout)
    assert f'Change pack: <span class="pool">{model["pool_name"]}</span>' in dom.stdout
    assert dom.stdout.count("<svg") == 1  # the report's topology drawing
    assert "<script" not in dom.stdout.lower()
    want = _expected(model)
    for phase in want["phases"]:
        assert f'id="phase-{phase}"' in dom.stdout, phase
    for host in _pool_hosts(pool):
        assert host in want["hosts"], host  # the model names every host of the pool...
    for name in want["hosts"] + want["steps"] + want["manual"] + want["rollback"]:
        assert name in text, name  # ...and the page every one the plan touches
    assert want["manual"], "every pool has steps that wait for a person (the holds)"
    assert any("/hold[" in m for m in want["manual"])  # the client tests per FE
    for label in ("requested by", "approved by", "window"):
        assert re.search(rf"<th>{label}</th><td>\s*</td>", dom.stdout), label  # empty sign-off


def test_md_and_json_carry_what_the_html_carries(pool: Path) -> None:
    model = json.loads(_pack(pool, "json"))
    md = _pack(pool, "md")
    page = html.unescape(_pack(pool, "html"))
    want = _expected(model)
    assert len(want["steps"]) > 20 and want["rollback"]
    for name in [*want["phases"], *want["steps"], *want["hosts"], *want["rollback"]]:
        assert name in md, name
        assert name in page, name
    # the manual steps, each with why, in both
    for phase in model["phases"]:
        for m in phase["manual"]:
            assert f"{m['step']}: {m['why']}" in re.sub(r"<[^>]+>", "", page)
            assert f"Waits for a person: {m['step']}: {m['why']}" in html.unescape(md)
    # which steps wait for a person follows the pool file: the manual LB driver (the
    # lab's appliance) has its farm entered by hand; a drill pulls a cable by hand
    # only where no link_down_command is set (the examples; the lab has one)
    manual = want["manual"]
    assert ("configure-lb/farm" in manual) == (model["lb_driver"] == "manual")
    link_drills = [m for m in manual if m.startswith("failover-test/drill[") and "@link]" in m]
    from ocsscale.config.loader import load_pool

    by_hand = load_pool(pool).pool.load_balancer.failover.link_down_command is None
    assert bool(link_drills) == by_hand
    assert not [m for m in manual if "@service-" in m]
    # and the same phases in the same order
    assert re.findall(r"^### ([a-z-]+):", md, re.M) == want["phases"]
    assert re.findall(r'<h3 id="phase-([a-z-]+)"', page) == want["phases"]


def test_the_change_pack_says_what_the_pool_file_fixes() -> None:
    model = json.loads(_pack(EXAMPLES[0], "json"))
    assert (model["profile"], model["lb_driver"], model["dns_provider"]) == (
        "ocs2007r2",
        "engine",
        "rfc2136",
    )
    phases = {p["id"]: p for p in model["phases"]}
    assert phases["lower-ttl"]["window"] == "ahead of the window"
    assert phases["decommission"]["window"] == "after the window"
    assert [o["phase"] for o in model["outside_window"]] == ["lower-ttl", "decommission"]
    waits = {w["what"]: w for w in phases["cutover"]["duration"]["waits"]}
    watch = waits["the watch window (dns.watch_window)"]
    assert watch["seconds"] == 300 and watch["kind"] == "fixed"
    assert phases["cutover"]["duration"]["expected_seconds"] >= 300
    assert phases["preflight"]["checks_only"] and not phases["cutover"]["checks_only"]
    pool_record = model["dns_changes"][0]
    assert pool_record == {
        **pool_record,
        "name": "ocspool.contoso.com",
        "old": "10.0.0.30",
        "new": "10.0.0.40",
        "ttl_lowered": 60,
        "ttl_after": 3600,
    }
    assert model["signoff"] == {"requested_by": "", "approved_by": "", "window": ""}
    # the credentials section never reaches the pack
    assert "OCS_ADMIN_PASSWORD" not in json.dumps(model)


def test_usage_errors_and_the_text_plan_unchanged(tmp_path: Path) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(EXAMPLES[0].read_text())
    assert cli(pool, "plan", "--format", "pdf").returncode == 2
    assert cli(pool, "plan", "-o", str(tmp_path / "x.txt")).returncode == 2
    assert cli(pool, "plan", "--format", "md", "-o", str(tmp_path / "no" / "x.md")).returncode == 2
    (tmp_path / ".ocsscale").mkdir()
    into_state = cli(pool, "plan", "--format", "md", "-o", str(tmp_path / ".ocsscale" / "x.md"))
    assert into_state.returncode == 2 and not (tmp_path / ".ocsscale" / "x.md").exists()
    text = cli(pool, "plan")
    assert text.returncode == 0 and text.stdout.startswith("plan for ocspool.contoso.com")


# -- a rehearsal's measured times ---------------------------------------------------


@pytest.fixture
def rehearsed(tmp_path: Path) -> Path:
    """A real run of two phases through the CLI on the local transport (hosts files
    in the test's directory, nothing contacted), as the report's tests make one."""
    (tmp_path / "pool.yaml").write_text(POOL_YAML.format(d=tmp_path))
    for h in HOSTS:
        (tmp_path / f"hosts-{h}").write_bytes(b"127.0.0.1\tlocalhost\n")
    (tmp_path / "playbook.yaml").write_text(PLAYBOOK)
    pool = tmp_path / "pool.yaml"
    cli(pool, "run", "--playbook", str(tmp_path / "playbook.yaml"), "--yes", check=True)
    return tmp_path


def _cycle_seconds(journal: Path) -> dict[str, float]:
    db = sqlite3.connect(f"{journal.as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT phase, started, finished FROM cycles WHERE status = 'done'")
        return {phase: finished - started for phase, started, finished in rows}
    finally:
        db.close()


def test_rehearsal_times_beside_the_estimates(rehearsed: Path) -> None:
    journal = rehearsed / ".ocsscale" / "journal.sqlite"
    measured = _cycle_seconds(journal)
    assert set(measured) == {"validate-fe", "cutover"}
    pool, playbook = rehearsed / "pool.yaml", str(rehearsed / "playbook.yaml")

    # the same pool and playbook: every step's own time too (the journal file named)
    model = json.loads(_pack(pool, "json", "--playbook", playbook, "--rehearsal", str(journal)))
    assert model["rehearsal"]["pool"] == "ocspool.report.test"
    phases = {p["id"]: p for p in model["phases"]}
    for phase, seconds in measured.items():
        assert phases[phase]["duration"]["measured_seconds"] == pytest.approx(seconds)
        assert phases[phase]["duration"]["measured_status"] == "done"
        assert all(s["measured_seconds"] is not None for s in phases[phase]["steps"])
    page = _pack(pool, "html", "--playbook", playbook, "--rehearsal", str(journal))
    assert "Measured times are from the rehearsal journal" in page
    assert duration(measured["cutover"]) in page

    # another pool (an example) against that rehearsal, named by its directory: the
    # phases it ran are measured, the others are not
    example = rehearsed / "example.yaml"
    example.write_text(EXAMPLES[1].read_text())
    other = json.loads(_pack(example, "json", "--rehearsal", str(rehearsed)))
    times = {p["id"]: p["duration"]["measured_seconds"] for p in other["phases"]}
    assert times["cutover"] == pytest.approx(measured["cutover"])
    assert times["preflight"] is None and times["failover-test"] is None
    assert other["window"]["measured_seconds"] == pytest.approx(
        measured["cutover"] + measured["validate-fe"]
    )


def test_a_rehearsal_that_is_no_journal_is_refused(tmp_path: Path) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(EXAMPLES[0].read_text())
    fake = tmp_path / "journal.sqlite"
    fake.write_text("not a journal")
    for given in (fake, tmp_path / "missing.sqlite", tmp_path / "empty-dir"):
        if given.name == "empty-dir":
            given.mkdir()
        result = cli(pool, "plan", "--format", "json", "--rehearsal", str(given))
        assert result.returncode == 2, (given, result.stdout[-500:], result.stderr[-500:])
        assert "Traceback" not in result.stderr


def test_values_from_the_pool_file_are_escaped(tmp_path: Path) -> None:
    """A local transport's hosts-file path is free text that reaches the steps'
    summaries: it shows as text in the HTML and the Markdown, never as markup."""
    hostile = tmp_path / "<img src=x onerror=alert(1)>"
    pool = tmp_path / "pool.yaml"
    pool.write_text(POOL_YAML.format(d=hostile))
    page, md = _pack(pool, "html"), _pack(pool, "md")
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;img src=x" in md
    assert "<img" not in page and "<img" not in md
    model = json.loads(_pack(pool, "json"))
    summaries = [c["summary"] for p in model["phases"] for s in p["steps"] for c in s["changes"]]
    assert any(str(hostile) in summary for summary in summaries)  # the model keeps it as is


def test_the_estimate_grows_with_the_pool(tmp_path: Path) -> None:
    """Work is estimated from this pool's steps: a third front end adds its own
    validation (one FE after another) and its drain at the cutover."""
    expected = {}
    for fes in (2, 3):
        state = LabState("cpack", "one-armed", fes, True, tmp_path / str(fes))
        path = tmp_path / f"pool-{fes}.yaml"
        path.write_text(lab_pool_text(state, state.topo()))
        model = json.loads(_pack(path, "json"))
        expected[fes] = {p["id"]: p["duration"] for p in model["phases"]}
    for phase in ("validate-fe", "cutover"):
        assert expected[3][phase]["expected_seconds"] > expected[2][phase]["expected_seconds"]
    assert expected[3]["cutover"]["at_most_seconds"] > expected[2]["cutover"]["at_most_seconds"]
