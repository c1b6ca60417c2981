"""The pool file: loading, validation (with YAML positions), profiles, credentials.

`load_pool` and `LoadedPool` are found here lazily: the load-balancer drivers'
settings (providers/lb) build on `config.strict`, and the pool-file model in turn
builds on those settings, so importing a driver first must not load the model.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LoadedPool", "load_pool"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import loader

        return getattr(loader, name)
    raise AttributeError(name)
