"""Playbook loading and rendering: foreach, groups, when, cleanup, errors with positions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ocsscale.actions.base import Action, Change
from ocsscale.errors import ConfigError
from ocsscale.plan import StepRef, build_plan, load_playbook, not_built


class Echo(Action):
    """Plan-only test action: describes its arguments."""

    name = "echo.args"

    def targets(self) -> list[str]:
        return [str(self.args.get("host", "admin"))]

    def describe(self) -> list[Change]:
        return [Change("add", self.targets()[0], repr(self.args))]


ACTIONS: dict[str, type[Action]] = {"echo.args": Echo}

VARIABLES: dict[str, Any] = {
    "pool": {"fqdn": "pool.lab.test"},
    "front_ends": [
        {"name": "fe01", "address": "198.18.0.41"},
        {"name": "fe02", "address": "198.18.0.42"},
    ],
    "test_clients": [{"name": "client01"}, {"name": "client02"}],
    "load_balancer": {"topology": "one-armed"},
    "profile": {"ports": [5061, 444]},
}


def _plan(tmp_path: Path, text: str, variables: dict[str, Any] | None = None):  # noqa: ANN202
    path = tmp_path / "playbook.yaml"
    path.write_text(text)
    return build_plan(
        load_playbook(path),
        variables or VARIABLES,
        pool=None,
        profile=None,
        actions=ACTIONS,
        pool_name="pool.lab.test",
    )


GROUPED = """\
version: 1
phases:
  - id: routing
    title: Routing
    section: s
    when: "load_balancer.topology == 'two-armed-routed'"
    skip_reason: Enabling Load Balancer Routing is for two-armed routed only
    steps:
      - {id: enable, action: routing.enable}
  - id: validate-fe
    title: Validate
    section: s
    steps:
      - group: per-fe
        foreach: front_ends
        as: fe
        steps:
          - id: pin
            action: echo.args
            foreach: "[fe] + test_clients"
            as: host
            args:
              host: "{{ host.name }}"
              address: "{{ fe.address }}"
              port: "{{ profile.ports[0] }}"
          - id: only-first
            action: echo.args
            when: "fe.name == 'fe01'"
            args: {host: "{{ fe.name }}"}
          - id: probe
            action: probe.ports
            target: "{{ fe.name }}"
            change: check
            summary: "probe {{ fe.name }}"
    cleanup:
      - id: unpin
        action: echo.args
        foreach: test_clients
        args: {host: "{{ item.name }}"}
"""


def test_groups_foreach_when_and_cleanup_render_in_order(tmp_path: Path) -> None:
    plan = _plan(tmp_path, GROUPED)
    routing, validate = plan.phases
    assert routing.skipped == "Enabling Load Balancer Routing is for two-armed routed only"
    assert routing.steps == ()
    assert [s.id for s in validate.steps] == [
        "validate-fe/pin[fe01@fe01]",
        "validate-fe/pin[fe01@client01]",
        "validate-fe/pin[fe01@client02]",
        "validate-fe/only-first[fe01]",
        "validate-fe/probe[fe01]",
        "validate-fe/pin[fe02@fe02]",
        "validate-fe/pin[fe02@client01]",
        "validate-fe/pin[fe02@client02]",
        "validate-fe/probe[fe02]",
    ]
    assert [s.id for s in validate.cleanup] == [
        "validate-fe/unpin[client01]",
        "validate-fe/unpin[client02]",
    ]
    assert all(s.cleanup for s in validate.cleanup)
    # the planner's structure, which the runner's events carry: the group's item
    # is the row, the step's own the item; a step's own label without a group is a row
    assert validate.steps[1].ref == StepRef("validate-fe", "pin", "fe01", "client01")
    assert validate.steps[3].ref == StepRef("validate-fe", "only-first", "fe01")
    assert validate.cleanup[0].ref == StepRef("validate-fe", "unpin", "client01")
    assert all(StepRef.parse(s.id) == s.ref for s in validate.all_steps)
    pin = validate.steps[1]
    # one whole `{{ expression }}` keeps its type: the port stays an int
    assert pin.args == {"host": "client01", "address": "198.18.0.41", "port": 5061}
    assert pin.built and pin.target == "client01" and pin.change == "add"


def test_unbuilt_actions_are_flagged_with_the_playbook_description(tmp_path: Path) -> None:
    plan = _plan(tmp_path, GROUPED)
    missing = not_built(plan.phases)
    # the skipped routing phase does not count: it will not run
    assert [s.id for s in missing] == ["validate-fe/probe[fe01]", "validate-fe/probe[fe02]"]
    as_json = missing[0].to_json()
    assert as_json == {
        "id": "validate-fe/probe[fe01]",
        "action": "probe.ports",
        "target": "fe01",
        "change": "check",
        "summary": "probe fe01",
        "built": False,
    }


def test_phase_applies_when_its_condition_holds(tmp_path: Path) -> None:
    variables = {**VARIABLES, "load_balancer": {"topology": "two-armed-routed"}}
    plan = _plan(tmp_path, GROUPED, variables)
    assert plan.phases[0].skipped is None
    assert [s.id for s in plan.phases[0].steps] == ["routing/enable"]


def test_undefined_variable_is_an_error_with_file_and_line(tmp_path: Path) -> None:
    text = GROUPED.replace("{{ fe.address }}", "{{ fe.adress }}")
    with pytest.raises(ConfigError) as err:
        _plan(tmp_path, text)
    issue = err.value.issues[0]
    assert issue.file.endswith("playbook.yaml")
    assert (issue.line, issue.column) == (22, 13)  # the `args:` key of the pin step
    assert issue.rule == "playbook.template"
    assert "adress" in issue.message


def test_unknown_key_and_phase_order_are_reported_with_positions(tmp_path: Path) -> None:
    text = GROUPED.replace("    title: Validate\n", "    title: Validate\n    tittle: x\n")
    with pytest.raises(ConfigError) as err:
        _plan(tmp_path, text)
    issue = err.value.issues[0]
    assert (issue.line, issue.path) == (12, "phases[1].tittle")

    swapped = "version: 1\nphases:\n" + (
        "  - {id: cutover, title: c, section: s}\n  - {id: preflight, title: p, section: s}\n"
    )
    with pytest.raises(ConfigError) as err:
        _plan(tmp_path, swapped)
    assert err.value.issues[0].rule == "playbook.phase-order"
    assert err.value.issues[0].line == 4


def test_duplicate_step_ids_are_refused(tmp_path: Path) -> None:
    # a cleanup step that expands to an id a step already has
    text = GROUPED.replace(
        "      - id: unpin\n        action: echo.args\n        foreach: test_clients",
        "      - id: only-first\n        action: echo.args\n        foreach: front_ends",
    )
    with pytest.raises(ConfigError) as err:
        _plan(tmp_path, text)
    assert [i.rule for i in err.value.issues] == ["playbook.step-id"]
    assert "validate-fe/only-first[fe01]" in err.value.issues[0].message


def test_foreach_must_give_a_list(tmp_path: Path) -> None:
    text = GROUPED.replace("foreach: front_ends", "foreach: pool.fqdn")
    with pytest.raises(ConfigError) as err:
        _plan(tmp_path, text)
    assert err.value.issues[0].rule == "playbook.foreach"
