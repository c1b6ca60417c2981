"""load_balancer.checks (issue 20): its shape, its rules with file:line, and the farm it makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsscale.providers.lb.base import CheckTiming, FarmSpec, view_diff

from .helpers import ONE_ARMED, issues_of, line_of, load_text, only_issue, variant

PEAK = "  expected_peak_connections: 20000\n"


def _with_checks(block: str, extra: str = "") -> str:
    return variant(ONE_ARMED, (PEAK, PEAK + "  checks:\n" + block + extra))


def test_defaults_take_a_member_out_within_two_seconds_on_both_faults(tmp_path: Path) -> None:
    loaded = load_text(tmp_path, ONE_ARMED)
    checks = loaded.pool.load_balancer.checks
    assert (checks.interval, checks.timeout, checks.fall, checks.rise) == (0.5, 0.3, 2, 2)
    # a silent (cut) member: fall rounds of (interval + timeout); a refusing one: less
    assert checks.out_within() < 2.0 and checks.fall * checks.interval < 2.0
    assert checks.fall >= 2  # one lost check never takes a member out
    farm = FarmSpec.from_pool(loaded.pool, loaded.profile)
    assert farm.checks == CheckTiming(0.5, 0.3, 2, 2)
    assert farm.view()["checks"] == {"interval": 0.5, "timeout": 0.3, "fall": 2, "rise": 2}


def test_values_given_reach_the_farm_to_the_millisecond(tmp_path: Path) -> None:
    text = _with_checks("    interval: 1\n    timeout: 0.2504\n    fall: 3\n    rise: 4\n")
    loaded = load_text(tmp_path, text)
    farm = FarmSpec.from_pool(loaded.pool, loaded.profile)
    assert farm.checks == CheckTiming(1.0, 0.25, 3, 4)
    assert farm.to_json()["checks"] == {"interval": 1.0, "timeout": 0.25, "fall": 3, "rise": 4}


@pytest.mark.parametrize(
    ("line", "rule", "words"),
    [
        ("    interval: 0.05\n", "lb.checks.range", "from 0.1 to 60.0 seconds"),
        ("    interval: 61\n", "lb.checks.range", "from 0.1 to 60.0 seconds"),
        ("    timeout: '0.2'\n", "value.not-a-number", "number of seconds"),
        ("    timeout: true\n", "value.not-a-number", "number of seconds"),
        ("    interval: .nan\n", "lb.checks.range", "seconds"),
        ("    fall: 0\n", "lb.checks.range", "from 1 to 20"),
        ("    rise: 21\n", "lb.checks.range", "from 1 to 20"),
        ("    fall: 2.5\n", "value.not-a-number", "whole number"),
        ("    every: 1\n", "schema.unknown-key", ""),
    ],
)
def test_bad_values_are_refused_at_their_line(
    tmp_path: Path, line: str, rule: str, words: str
) -> None:
    text = _with_checks(line)
    issue = only_issue(tmp_path, text, rule)
    assert issue.line == line_of(text, line.strip())
    assert issue.path.startswith("load_balancer.checks.")
    assert words in issue.message


def test_a_timeout_longer_than_the_interval_is_refused(tmp_path: Path) -> None:
    text = _with_checks("    interval: 0.5\n    timeout: 1\n")
    issue = only_issue(tmp_path, text, "lb.checks.timeout")
    assert issue.line == line_of(text, "timeout: 1")
    assert issue.path == "load_balancer.checks.timeout"
    assert "must not exceed the interval" in issue.message
    assert issue.render().startswith(f"{tmp_path / 'pool.yaml'}:{issue.line}:")
    # equal is fine (the shared spec's example: 0.5 and 0.5)
    load_text(tmp_path, _with_checks("    interval: 0.5\n    timeout: 0.5\n"))


def test_checks_slower_than_the_drills_detect_timeout_are_refused(tmp_path: Path) -> None:
    text = _with_checks(
        "    interval: 6\n    timeout: 4\n    fall: 4\n    rise: 2\n",
        "  failover:\n    detect_timeout: 30\n",
    )
    issue = only_issue(tmp_path, text, "lb.checks.detect")
    assert issue.line == line_of(text, "fall: 4")
    assert (
        "40 s to be taken out of the farm" in issue.message
        and "detect_timeout (30 s)" in issue.message
    )
    # and the way back (rise), against a shorter detect_timeout
    text = _with_checks("    rise: 10\n", "  failover:\n    detect_timeout: 5\n")
    issue = only_issue(tmp_path, text, "lb.checks.detect")
    assert issue.line == line_of(text, "rise: 10")
    assert "put back" in issue.message
    assert not [i for i in issues_of(tmp_path, text) if "taken out" in i.message]


def test_view_diff_names_each_check_value_that_drifted() -> None:
    planned = {"checks": CheckTiming().view()}
    found = {"checks": {"interval": 2.0, "timeout": 2.0, "fall": 3, "rise": 2}}
    lines = view_diff(planned, found)
    assert lines == [
        "checks fall: 3 on the LB, 2 planned",
        "checks interval: 2.0 on the LB, 0.5 planned",
        "checks timeout: 2.0 on the LB, 0.3 planned",
    ]
    assert view_diff(planned, {"checks": CheckTiming().view()}) == []
    # a view without checks at all is drift too, never equality
    assert "checks fall: None on the LB, 2 planned" in view_diff(planned, {})
