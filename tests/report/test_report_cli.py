"""`ocsscale report` through the real CLI, on a journal made by a real run plus
steps with the evidence shapes of the distribution test, the failover drill,
the DNS actions and a client load."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
from pathlib import Path

from ocsscale.runner.journal import Journal
from ocsscale.runner.lock import RunLock

from .conftest import HOSTILE, POOL_NAME, REPO, Migrated, add_findings, cli


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_html_names_the_pool_draws_the_pictures_and_shows_hostile_text_as_text(
    migrated: Migrated,
) -> None:
    result = cli(migrated.pool, "report", check=True)
    out = migrated.state_dir / "report.html"
    assert str(out) in result.stdout
    html = out.read_text(encoding="utf-8")

    assert f'Migration report: <span class="pool">{POOL_NAME}</span>' in html
    # topology, the distribution chart and the load timeline, all inline SVG
    assert html.count("<svg") == 3
    assert "client network" in html and "VIP 198.18.0.40/24" in html
    assert "fe01 (weight 2)" in html and "6 / ideal 6.0" in html
    # the drill's detection time and the failed drill's row
    assert "2.35 s" in html and "service:5061" in html
    # the DNS change, old and new values and TTLs
    assert "198.18.0.30 (TTL 30 s)" in html and "198.18.0.40 (TTL 5 s)" in html
    # the real run's steps, with their changes, and what rollback would undo
    assert "validate-fe/pin[client01]" in html
    assert "pin ocspool.report.test -&gt; 198.18.0.40" in html
    assert "What rollback would undo now" in html and "cutover/pin-vip" in html

    # untrusted text from the journal is shown, never run: no element, no script
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "onerror=alert(1)&gt;" in html
    # a big evidence block is cut, and says so
    assert "cut here: the evidence is" in html

    # self-contained: nothing fetched, no script, no external reference at all
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "@import" not in html and "url(" not in html
    assert "<link" not in html.lower() and "<iframe" not in html.lower()
    assert "http://" not in html and "https://" not in html


def test_markdown_and_json_carry_the_same_findings(migrated: Migrated) -> None:
    md = cli(migrated.pool, "report", "--format", "md", "-o", "-", check=True).stdout
    assert md.startswith(f"# Migration report: {POOL_NAME}")
    assert "- **slowest failover detection**: 2.35 s (fe01, service:5061)" in md
    assert "<svg" not in md
    assert "| fe01 | 2 | 6 | 6.0 | yes |" in md
    assert (
        "| fe01 | service:5061 | 2.35 s | 1.50 s | from outside (20 in a row), operator "
        "| 180 | 4 | 0 | fe02: 2 | done |"
    ) in md
    # required and optional ports through the VIP; a refused optional one is information
    assert "| validate-lb/reach[client01] | client01 | 5061, 444 | - | 80 | 5060 |" in md
    assert "198.18.0.30 (TTL 30 s)" in md
    # hostile text: HTML shown as text in tables; literal only inside code fences
    outside = re.sub(r"(?s)^(`{3,})json\n.*?\n\1$", "", md, flags=re.M)
    assert "&lt;script&gt;" in outside and "<script" not in outside
    assert "<script" in md  # the evidence's own text, in its fence
    assert "## What rollback would undo now" in md

    data = json.loads(cli(migrated.pool, "report", "--format", "json", "-o", "-").stdout)
    assert data["pool_name"] == POOL_NAME
    assert data["pool"]["load_balancer"]["vip"] == "198.18.0.40/24"
    assert [f["fe"] for f in data["failover"]] == ["fe01", "fe02"]
    assert data["failover"][0]["detected_by"] == "from outside (20 in a row)"
    assert data["failover"][1]["detected_by"] == "-"  # failed before any evidence
    [reach] = data["reach"]
    assert reach["required_failed"] == [] and reach["optional_not_answering"] == [5060]
    assert data["failover"][1]["error"].endswith(HOSTILE)
    replace = next(d for d in data["dns"] if d["action"] == "dns.replace")
    assert replace["old"] == {"values": ["198.18.0.30"], "ttl": 5}
    assert replace["new"] == {"values": ["198.18.0.40"], "ttl": 5}
    # the merged load report counts once, not again through its per-client copy
    per_phase = {(row["phase"], row["step"]): row for row in data["load"]["per_phase"]}
    assert sorted(per_phase) == [
        ("cutover", "cutover/load"),
        ("failover-test", "failover-test/drill[fe01-service]"),
    ]
    assert per_phase["cutover", "cutover/load"]["failed"] == 2
    assert per_phase["cutover", "cutover/load"]["ok"] == 78
    assert per_phase["failover-test", "failover-test/drill[fe01-service]"]["failed"] == 4
    assert data["rollback"][0]["step"] == "cutover/replace"
    glance = {t["label"]: t for t in data["summary"]}
    assert glance["client load"]["value"] == ("6 failed request(s), 2 outside the failover drill")
    assert glance["client load"]["tone"] == "bad"
    assert glance["distribution"] == {
        "label": "distribution",
        "value": "fe01 6, fe02 3",
        "tone": "ok",
    }
    assert glance["DNS"]["value"] == f"{POOL_NAME}: 198.18.0.30 → 198.18.0.40"
    assert all(s["evidence"] is None or len(s["evidence"]["text"]) <= 20_000 for s in data["steps"])
    assert any(s["evidence"] and s["evidence"]["cut"] for s in data["steps"])
    # no credential section, ever
    assert "credentials" not in json.dumps(data["pool"])


def test_output_file_is_written_whole_and_replaces_the_old_one(migrated: Migrated) -> None:
    target = migrated.dir / "out" / "migration.md"
    target.parent.mkdir()
    target.write_text("an older report\n")
    cli(migrated.pool, "report", "--format", "md", "-o", str(target), check=True)
    assert target.read_text(encoding="utf-8").startswith("# Migration report")
    assert sorted(p.name for p in target.parent.iterdir()) == ["migration.md"]  # no temp left

    missing = migrated.dir / "nowhere" / "r.html"
    result = cli(migrated.pool, "report", "-o", str(missing))
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
    assert not missing.parent.exists()

    bad = cli(migrated.pool, "report", "--format", "pdf")
    assert bad.returncode == 2 and "no report format pdf" in bad.stderr


def test_a_report_in_the_state_directory_is_owner_only(migrated: Migrated) -> None:
    """Like the journal beside it: 0600 in a 0700 directory, whatever the umask and
    whatever mode an older report had; a report written elsewhere keeps the umask's."""
    state = migrated.state_dir
    os.chmod(state, 0o755)
    (state / "report.html").write_text("an older report\n")
    os.chmod(state / "report.html", 0o644)
    old = os.umask(0o022)  # the CLI inherits it
    try:
        cli(migrated.pool, "report", check=True)
        cli(migrated.pool, "report", "-f", "md", "-o", str(state / "named.md"), check=True)
        cli(migrated.pool, "report", "-f", "md", "-o", str(migrated.dir / "shared.md"), check=True)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.iterdir()}
    assert modes["report.html"] == 0o600 and modes["named.md"] == 0o600
    assert set(modes.values()) == {0o600}  # the journal, the report: every file in there
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((migrated.dir / "shared.md").stat().st_mode) == 0o644


def test_the_journal_is_only_read_also_while_a_run_holds_the_lock(migrated: Migrated) -> None:
    before = _sha(migrated.journal)
    with RunLock(migrated.state_dir, "ocsscale run --phase cutover"):
        journal = Journal.open(migrated.state_dir)  # a run's open journal beside the report
        try:
            html = cli(migrated.pool, "report", "-o", "-", check=True).stdout
        finally:
            journal.close()
    assert "A run is in progress (ocsscale run --phase cutover" in html
    assert _sha(migrated.journal) == before


def test_a_pool_file_that_no_longer_validates_falls_back_to_the_journal(
    migrated: Migrated,
) -> None:
    migrated.pool.write_text("version: 1\npool: {fqdn: '-bad-'}\npassword: hunter2-secret\n")
    result = cli(migrated.pool, "report", "-o", "-", check=True)
    html = result.stdout
    assert POOL_NAME in html  # named by the journal's runs
    assert "does not validate now" in html
    assert "hunter2" not in html and "hunter2" not in result.stderr
    assert "validate-fe/pin[client01]" in html and "<svg" in html  # charts still drawn


def test_nothing_to_report_and_an_unreadable_journal_are_clear_errors(tmp_path: Path) -> None:
    result = cli(tmp_path / "pool.yaml", "report")
    assert result.returncode == 2
    assert "nothing to report" in result.stderr and "Traceback" not in result.stderr

    (tmp_path / ".ocsscale").mkdir()
    (tmp_path / ".ocsscale" / "journal.sqlite").write_bytes(b"not a database at all" * 100)
    result = cli(tmp_path / "pool.yaml", "report")
    assert result.returncode == 2
    assert "is not an SQLite database" in result.stderr and "Traceback" not in result.stderr
    assert "nothing was changed" in result.stderr
    assert not (tmp_path / ".ocsscale" / "report.html").exists()


def test_two_armed_pool_before_any_run_draws_both_networks(tmp_path: Path) -> None:
    pool = tmp_path / "pool.yaml"
    shutil.copy(REPO / "examples" / "two-armed-routed.yaml", pool)
    result = cli(pool, "report", check=True)
    html = (tmp_path / ".ocsscale" / "report.html").read_text(encoding="utf-8")
    assert "report of ocspool.contoso.com (0 step(s))" in result.stdout
    assert "client network" in html and "front-end net" in html
    assert "back-end arm 10.0.1.40/24" in html
    assert "Nothing has run yet" in html and "Rollback would undo nothing." in html
    assert not (tmp_path / ".ocsscale" / "journal.sqlite").exists()  # none created


def test_report_on_a_journal_without_a_plan_run(tmp_path: Path) -> None:
    """Only crafted steps (no real plan run listed its phases): still a report."""
    add_findings(tmp_path / ".ocsscale", big=False)
    data = json.loads(cli(tmp_path / "pool.yaml", "report", "-f", "json", "-o", "-").stdout)
    assert [p["id"] for p in data["phases"]] == ["validate-lb", "failover-test", "cutover"]
    assert data["pool"] is None and data["pool_name"] == POOL_NAME


def test_a_runs_client_load_is_on_the_timeline(migrated: Migrated) -> None:
    """`run --client-load` journals its report with the run: the report draws it."""
    from ocsscale.runner.journal import Journal

    journal = Journal.open(migrated.state_dir)
    try:
        run_id = journal.runs()[-1]["run_id"]
        t0 = int(journal.runs()[-1]["started"])
        journal.record_load(
            run_id,
            {
                "buckets": [
                    {"t": t0, "label": "preflight/x", "ok": 7, "failed": 0, "by_server": {}},
                    {"t": t0 + 1, "label": "preflight/x", "ok": 5, "failed": 3, "by_server": {}},
                ],
                "by_phase": {"preflight": {"admin": {"requests": 15, "failed": 3}}},
            },
        )
    finally:
        journal.close()
    data = json.loads(cli(migrated.pool, "report", "--format", "json", "-o", "-").stdout)
    series = [s for s in data["load"]["series"] if s["step"] == f"run {run_id}: client load"]
    assert len(series) == 1
    assert [(p["ok"], p["failed"]) for p in series[0]["points"]] == [(7, 0), (5, 3)]
