"""`ocsscale report`: the pool, the topology, every step with its evidence and
the findings (distribution, failover, client load, DNS), from the journal
opened read-only, as one self-contained HTML page, Markdown or JSON."""

from __future__ import annotations

from .model import build
from .render import FORMATS, render, write_atomic
from .source import read_sources

__all__ = ["FORMATS", "build", "read_sources", "render", "write_atomic"]
