"""`ocsscale run`'s options reach the actions as one typed, frozen RunOptions
(Context.options), built in one place by the runner (runner/session.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ocsscale.actions.base import Context, RunOptions, registry
from ocsscale.config.loader import load_pool
from ocsscale.runner.plugins import load_actions
from ocsscale.runner.session import run_options

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-armed.yaml"
WATCH_ARGS = {
    "name": "ocspool.contoso.com",
    "address": "10.0.0.40",
    "window": 600,
    "interval": 10,
    "failures": 3,
}


def _ctx(options: RunOptions | None = None) -> Context:
    load_actions()
    loaded = load_pool(EXAMPLE)

    def no_host(name: str) -> None:
        pytest.fail(f"no host is contacted (asked for {name})")

    return Context(
        pool=loaded.pool,
        profile=loaded.profile,
        host=no_host,
        pool_path=loaded.path,
        options=options or RunOptions(),
    )


def test_the_cli_options_become_run_options() -> None:
    given = {
        "no_hold": True,
        "hold_timeout": 5.0,
        "client_load": 1.5,
        "wait": True,
        "watch": 30,
        "forks": 2,
    }
    assert run_options(given) == RunOptions(
        no_hold=True, hold_timeout=5.0, watch=30, wait=True, client_load=1.5, forks=2
    )
    assert run_options(None) == RunOptions()
    with pytest.raises(ValueError, match="unknown run options: nohold"):
        run_options({"nohold": True})
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunOptions().wait = True


def test_watch_option_overrides_the_window() -> None:
    ctx = _ctx()
    watch = registry()["cutover.watch"]
    assert watch(ctx, WATCH_ARGS).window == 600
    shorter = watch(_ctx(RunOptions(watch=7)), WATCH_ARGS)
    assert shorter.window == 7


def test_no_hold_skips_the_hold_without_asking() -> None:
    ctx = _ctx(RunOptions(no_hold=True))
    hold = registry()["operator.hold"](ctx, {"fe": "ocsfe01"})
    assert hold.apply(None)["skipped"] == "--no-hold"
