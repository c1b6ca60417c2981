"""The base of every pool-file model: unknown keys are errors, strings stripped.

Its own module so that providers, which own the models of their settings, can
build on it without importing the whole pool-file model.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
