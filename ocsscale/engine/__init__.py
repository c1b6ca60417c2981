"""The bundled L4 load-balancer engine: a full proxy (SNAT + DNAT) with weighted
least connections, health checks, an admin API and hot reload.

It stands apart: of the rest of ocsscale it uses only errors.py (its errors are
the tool's, rendered by the tool's entry point) and the shared YAML reader
(yamlpos, yamlguard), never the runner or the pool file. Exceptions that never
leave it (an admin API answer, a failed health check, SNAT exhaustion) are its
own. Run it with `python -m ocsscale.engine serve --farm FILE` (or `ocsscale lb
serve`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .farm import Farm
    from .loader import FarmFileError, load_farm, parse_farm

__all__ = ["Farm", "FarmFileError", "load_farm", "parse_farm"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `ocsscale lb status`, which the tool runs on the LB host
    # at every poll of the farm, needs neither the farm model nor pydantic.
    if name == "Farm":
        from .farm import Farm

        return Farm
    if name in ("FarmFileError", "load_farm", "parse_farm"):
        from . import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
