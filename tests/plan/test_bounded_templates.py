"""Playbook templates are bounded: a template that asks for a gigabyte, loops without
end or expands to hundreds of thousands of steps is refused at its step, quickly,
in little memory, and the message never quotes what it would have built."""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ocsscale.cli.main import app
from ocsscale.errors import ConfigError
from ocsscale.plan import build_plan, load_playbook
from ocsscale.plan.build import MAX_FOREACH, MAX_PLAN_STEPS

from .test_playbook import ACTIONS, VARIABLES

REPO = Path(__file__).resolve().parents[2]

STEP = """\
version: 1
phases:
  - id: preflight
    title: t
    section: s
    steps:
      - id: hostile
        action: echo.args
{body}"""


def _refused(tmp_path: Path, body: str) -> Any:
    path = tmp_path / "playbook.yaml"
    path.write_text(STEP.format(body=body))
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ConfigError) as err:
        build_plan(
            load_playbook(path),
            VARIABLES,
            pool=None,
            profile=None,
            actions=ACTIONS,
            pool_name="pool.lab.test",
        )
    assert time.monotonic() - started < 3.0  # refused, not worked through
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 100 * 1024  # nowhere near the gigabyte asked for
    (issue,) = err.value.issues
    assert issue.file == str(path) and issue.line >= 9
    assert "aaaaaaaaaa" not in issue.message and "0, 1, 2, 3" not in issue.message
    assert len(issue.message) < 400
    return issue


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("        args: {x: \"{{ 'a' * 10**9 }}\"}\n", "more than 100000 characters or items"),
        ("        args: {x: \"{{ ['a'] * 10**9 }}\"}\n", "more than 100000 characters or items"),
        ("        args: {x: \"{{ 'a'|center(10**9) }}\"}\n", "a width past 100000"),
        ("        args: {x: \"{{ '{:>1000000000}'.format(1) }}\"}\n", "a width or precision"),
        ("        args: {x: \"{{ '%1000000000d' % 1 }}\"}\n", "a width or precision"),
        ('        args: {x: "{{ range(10**9)|list }}"}\n', "a range of more than 100000"),
        # doubling through a variable: each step is small, the result is not
        (
            "        args: {x: \"{% set a = 'a' * 60000 %}{% set a = a ~ a %}{{ a }}\"}\n",
            "more than 100000 characters or items",
        ),
        # a list holding the same list twice, nested: tiny in memory, huge expanded
        (
            "        args: {x: \"{% set a = ['a' * 1000] %}"
            + "{% set a = [a, a] %}" * 8
            + '{{ a|join }}"}\n',
            "more than 100000 characters or items",
        ),
        (
            '        args: {x: "{% for i in range(100000) %}{% for j in range(100000) %}'
            '{% endfor %}{% endfor %}"}\n',
            "loop, call or build more than",
        ),
        (
            "        args: {x: \"{% for i in range(100000) %}{{ 'a' * 1000 }}{% endfor %}\"}\n",
            "renders to more than 100000 characters",
        ),
        (
            '        args: {x: "{% macro f(n) %}{{ f(n) ~ f(n) }}{% endmacro %}{{ f(1) }}"}\n',
            "macros are not allowed",
        ),
        ('        foreach: "range(10**9)"\n', "a range of more than 100000"),
        (
            '        foreach: "range(100000)|list + range(100000)|list"\n',
            "more than 100000 characters or items",
        ),
        (
            '        foreach: "range(5000)|list"\n',
            f"foreach gives 5000 items; at most {MAX_FOREACH}",
        ),
    ],
)
def test_a_hostile_template_is_refused_at_its_step(tmp_path: Path, body: str, says: str) -> None:
    issue = _refused(tmp_path, body)
    assert says in issue.message, issue.message
    assert issue.rule in {"playbook.template", "playbook.foreach-size"}


NESTED = """\
version: 1
phases:
  - id: preflight
    title: t
    section: s
    steps:
      - group: per
        foreach: "range(1000)|list"
        as: g
        steps:
          - id: hostile
            action: echo.args
            foreach: "range(1000)|list"
            as: i
            label: "{{ g }}-{{ i }}"
"""


def test_nested_foreach_past_the_plan_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 x 1,000 steps: the build stops at the limit instead of making them all
    (a lower limit here, so the test proves the stop without building 10,000)."""
    monkeypatch.setattr("ocsscale.plan.build.MAX_PLAN_STEPS", 300)
    path = tmp_path / "playbook.yaml"
    path.write_text(NESTED)
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        build_plan(
            load_playbook(path),
            VARIABLES,
            pool=None,
            profile=None,
            actions=ACTIONS,
            pool_name="pool.lab.test",
        )
    assert time.monotonic() - started < 2.0
    (issue,) = err.value.issues
    assert issue.rule == "playbook.too-many-steps" and issue.line == 11  # its `- id:`
    expected = "preflight/hostile[0@0-300]: the playbook expands to more than 300 steps"
    assert issue.message == expected
    assert MAX_PLAN_STEPS == 10_000  # what a real plan may have


def test_ordinary_templates_still_render(tmp_path: Path) -> None:
    body = (
        '        foreach: "front_ends + test_clients"\n'
        "        as: host\n"
        "        args:\n"
        "          names: \"{{ front_ends|map(attribute='name')|join(',') }}\"\n"
        "          padded: \"{{ '%-6s|' % host.name }}{{ '{:>4}'.format(1) }}\"\n"
        '          loop: "{% for p in profile.ports %}{{ p }};{% endfor %}"\n'
        '          ports: "{{ profile.ports + [443] }}"\n'
    )
    path = tmp_path / "playbook.yaml"
    path.write_text(STEP.format(body=body))
    plan = build_plan(
        load_playbook(path),
        VARIABLES,
        pool=None,
        profile=None,
        actions=ACTIONS,
        pool_name="pool.lab.test",
    )
    steps = plan.phases[0].steps
    assert [s.id for s in steps] == [
        "preflight/hostile[fe01]",
        "preflight/hostile[fe02]",
        "preflight/hostile[client01]",
        "preflight/hostile[client02]",
    ]
    assert steps[0].args == {
        "names": "fe01,fe02",
        "padded": "fe01  |   1",
        "loop": "5061;444;",
        "ports": [5061, 444, 443],
    }


def test_the_cli_exits_2_naming_the_step(tmp_path: Path) -> None:
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(
        "version: 1\nphases:\n  - id: preflight\n    title: t\n    section: t\n    steps:\n"
        "      - id: big\n        action: pool.check\n"
        "        args: {x: \"{{ 'a' * 10**9 }}\"}\n"
    )
    result = CliRunner().invoke(
        app,
        ["-c", str(REPO / "examples" / "one-armed.yaml"), "plan", "--playbook", str(playbook)],
        env={"COLUMNS": "300"},
    )
    assert result.exit_code == 2, result.output
    assert f"{playbook}:9:9: phases[0].steps[0].args:" in result.stderr
    assert "more than 100000 characters or items" in result.stderr
    assert "aaaa" not in result.output and "Traceback" not in result.output
