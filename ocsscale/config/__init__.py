"""The pool file: loading, validation (with YAML positions), profiles, credentials."""

from __future__ import annotations

from .loader import LoadedPool, load_pool

__all__ = ["LoadedPool", "load_pool"]
