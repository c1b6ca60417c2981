"""`pool.check`: re-validates the pool file when the run starts."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import CheckFailed, ConfigError, UsageError
from .base import Action, Change, Json, register


@register
class PoolCheck(Action):
    """Reads the pool file again at run time (a run may resume days after the
    plan was made) and applies every rule of its profile.

    Changes nothing; no undo. Proof: the file validates; the evidence records
    its SHA-256, profile and topology, so the journal shows what a run used.
    """

    name = "pool.check"
    read_only = True

    def targets(self) -> list[str]:
        return ["admin"]

    def describe(self) -> list[Change]:
        return [Change("check", "admin", "the pool file passes every rule of its profile")]

    def apply(self, current: Json) -> Json:
        from ..config.loader import load_pool

        path = self.ctx.pool_path
        if not path:
            raise UsageError("pool.check needs the pool file's path from the runner")
        try:
            loaded = load_pool(Path(path))
        except ConfigError as exc:
            raise CheckFailed(
                f"the pool file no longer validates: {exc.message}", hint="run `ocsscale check`"
            ) from None
        return {
            "file": str(path),
            "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
            "profile": loaded.profile.name,
            "topology": loaded.pool.load_balancer.topology,
            "front_ends": [fe.name for fe in loaded.pool.front_ends],
        }
