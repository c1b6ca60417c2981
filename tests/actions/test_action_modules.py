"""Action modules are named by the actions they hold (issue 19): `dns.*` in
`actions/dns*.py`, `legacy.*` in `actions/legacy*.py`..., so an action is found
from its name without a search."""

from __future__ import annotations

from ocsscale.actions.base import registry
from ocsscale.runner.plugins import load_actions


def test_every_action_lives_in_a_module_named_by_its_prefix() -> None:
    load_actions()
    misplaced = []
    for name, cls in registry().items():
        if not cls.__module__.startswith("ocsscale.actions."):
            continue  # a test's or a plug-in's own action
        prefix = name.split(".", 1)[0]
        stem = cls.__module__.rsplit(".", 1)[1]
        if stem != prefix and not stem.startswith(f"{prefix}_"):
            misplaced.append(f"{name} in actions/{stem}.py")
    assert misplaced == []
