"""Where actions come from: every module of `ocsscale.actions`, plus plugins.

A plugin is any importable Python module that defines `Action` subclasses and
registers them with `ocsscale.actions.base.register`. Name plugin modules in
the environment variable `OCSSCALE_PLUGINS` (comma-separated module names,
found on PYTHONPATH); every command that builds a plan, runs or rolls back
imports them first, so a playbook of your own can use actions of your own,
and a rollback can revert what they did.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Mapping

from ..actions.base import Action, registry
from ..errors import UsageError

PLUGINS_ENV = "OCSSCALE_PLUGINS"

_loaded = False


def load_actions() -> Mapping[str, type[Action]]:
    """Import every built-in action module and every plugin (once); the registry."""
    global _loaded
    if not _loaded:
        from .. import actions

        for info in pkgutil.iter_modules(actions.__path__):
            if info.name != "base":
                importlib.import_module(f"{actions.__name__}.{info.name}")
        for name in plugin_names():
            try:
                importlib.import_module(name)
            except ImportError as exc:
                raise UsageError(
                    f"cannot import plugin module {name} named in {PLUGINS_ENV}: {exc}"
                ) from None
        _loaded = True
    return registry()


def plugin_names() -> list[str]:
    return [n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip()]
