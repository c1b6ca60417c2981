"""The base of every pool-file model: unknown keys are errors, strings stripped.

Its own module so that the models of shipped data files (the LB vendors'
checklists, providers/lb/vendors.py) can build on it without the pool-file model.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
