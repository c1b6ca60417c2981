"""The pool file: loading, validation (with YAML positions), profiles, credentials.

Every pool-file shape lives here (the LB drivers' settings in `lb_settings`, the
DNS providers' in `model`); the plug-ins import them, never the reverse.
`load_pool` and `LoadedPool` are found here lazily, so that a module needing one
settings class does not load the loader.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LoadedPool", "load_pool"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import loader

        return getattr(loader, name)
    raise AttributeError(name)
