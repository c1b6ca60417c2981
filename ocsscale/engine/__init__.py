"""The bundled L4 load-balancer engine: a full proxy (SNAT + DNAT) with weighted
least connections, health checks, an admin API and hot reload.

It stands alone: of the rest of ocsscale it uses only the shared YAML reader
(ocsscale.yamlpos, with errors.py), never the runner or the pool file. Run it
with `python -m ocsscale.engine serve --farm FILE` (or `ocsscale lb serve`).
"""

from .farm import Farm
from .loader import FarmFileError, load_farm, parse_farm

__all__ = ["Farm", "FarmFileError", "load_farm", "parse_farm"]
