"""The wait policies of the pool file (issue 17, point 5): `cutover.fe_restart` and
`cutover.drain_timeout`, `decommission.drain_timeout`, `on_timeout` and `peers`:
their defaults, their checks, `ocsscale init`'s file and the README, and how the
shipped playbook hands them to its actions (seen in `ocsscale plan`)."""

from __future__ import annotations

import json
from pathlib import Path

from ruamel.yaml import YAML
from typer.testing import CliRunner

from ocsscale.cli.main import app
from ocsscale.config.init_template import render_pool_file
from ocsscale.config.model import CutoverSettings, DecommissionSettings

from .helpers import ONE_ARMED, REPO, line_of, load_text, only_issue, write

POLICIES = {
    "cutover": {"fe_restart": "drained", "drain_timeout": 120},
    "decommission": {"drain_timeout": 600, "on_timeout": "stop", "peers": []},
}


def _with(text: str, block: str) -> str:
    return text.rstrip("\n") + "\n" + block


def test_defaults_when_the_pool_file_says_nothing(tmp_path: Path) -> None:
    pool = load_text(tmp_path, ONE_ARMED).pool
    assert pool.cutover.model_dump() == POLICIES["cutover"]
    assert pool.decommission.model_dump() == POLICIES["decommission"]


def test_init_writes_every_policy_with_its_default_and_choices() -> None:
    text = render_pool_file("ocs2007r2", "one-armed")
    data = YAML(typ="safe").load(text)
    assert data["cutover"] == CutoverSettings().model_dump() == POLICIES["cutover"]
    assert data["decommission"] == DecommissionSettings().model_dump()
    assert "flush-only" in text and "| fail" in text  # the other choice, commented


def test_the_readme_names_every_policy_and_its_default() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for section, values in POLICIES.items():
        for key, default in values.items():
            shown = "[]" if default == [] else str(default)
            assert f"`{section}.{key}` ({shown}" in readme, (section, key)
    assert "flush-only" in readme and "`fail`" in readme


def test_bad_policies_are_refused_with_their_position(tmp_path: Path) -> None:
    text = _with(ONE_ARMED, "cutover:\n  fe_restart: never\n")
    issue = only_issue(tmp_path, text, "schema.not-allowed")
    assert issue.path == "cutover.fe_restart" and issue.line == line_of(text, "fe_restart")
    text = _with(ONE_ARMED, "cutover:\n  drain_timeout: 0\n")
    assert only_issue(tmp_path, text, "drain.range").path == "cutover.drain_timeout"
    text = _with(ONE_ARMED, "decommission:\n  on_timeout: wait\n")
    assert only_issue(tmp_path, text, "schema.not-allowed").path == "decommission.on_timeout"
    text = _with(ONE_ARMED, "decommission:\n  peers: [edge01, 0.0.0.0]\n")
    assert only_issue(tmp_path, text, "address.wildcard").path == "decommission.peers"
    text = _with(ONE_ARMED, "decommission:\n  peers: [10.0.5.5, edge01]\n")
    issue = only_issue(tmp_path, text, "decommission.peer.unknown")
    assert issue.path == "decommission.peers[1]" and "edge01" in issue.message


def test_peers_may_be_addresses_hosts_of_the_file_or_zone_names(tmp_path: Path) -> None:
    text = _with(
        ONE_ARMED,
        "decommission:\n  peers: [10.0.5.5, dc01, ocsfe01.contoso.com, edge.contoso.com]\n",
    )
    pool = load_text(tmp_path, text).pool
    assert pool.decommission.peers == [
        "10.0.5.5",
        "dc01",
        "ocsfe01.contoso.com",
        "edge.contoso.com",
    ]
    assert str(pool.address_of("DC01")) == "10.0.0.10"
    assert str(pool.address_of("ocsfe01.contoso.com")) == "10.0.1.41"
    assert pool.address_of("edge.contoso.com") is None  # looked up in the zone at the drain


def _steps(pool: Path) -> dict[str, dict]:
    result = CliRunner().invoke(app, ["-c", str(pool), "plan", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    return {s["id"]: s for phase in plan["phases"] for s in phase["steps"]}


def test_the_shipped_playbook_hands_the_policies_to_its_steps(tmp_path: Path) -> None:
    steps = _steps(write(tmp_path, ONE_ARMED))
    assert "then restarted anyway" in steps["cutover/restart[ocsfe01]"]["summary"]
    # validate-lb, before the record moves, still fails on a drain timeout
    assert "then fails" in steps["validate-lb/restart[ocsfe01]"]["summary"]
    assert (
        "waits up to 600 s, then stops its services anyway"
        in (steps["decommission/drain"]["summary"])
    )
    text = _with(
        ONE_ARMED,
        "cutover:\n  fe_restart: flush-only\ndecommission:\n  drain_timeout: 45\n"
        "  on_timeout: fail\n",
    )
    steps = _steps(write(tmp_path, text))
    restart = steps["cutover/restart[ocsfe01]"]
    assert (
        restart["change"] == "none"
        and "not restarted (fe_restart: flush-only)" in (restart["summary"])
    )
    assert "waits up to 45 s, then fails" in steps["decommission/drain"]["summary"]
    text = _with(ONE_ARMED, "cutover:\n  drain_timeout: 30\n")
    assert (
        "at most 30 s, then restarted anyway"
        in (_steps(write(tmp_path, text))["cutover/restart[ocsfe01]"]["summary"])
    )
