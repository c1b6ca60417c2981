"""DNS providers: one per `dns.provider` of the pool file, behind one interface
(base.DnsProvider: lookup, replace with an expected old value, revert).

`open_provider(ctx)` picks the pool file's provider; PROVIDERS is the registry
(a provider module registers its class here by name).
"""

from __future__ import annotations

from typing import Any

from ...errors import UsageError
from .base import DnsConflict, DnsError, DnsProvider, RecordSet
from .manual import ManualProvider
from .rfc2136 import Rfc2136Provider
from .windows import WindowsProvider

PROVIDERS: dict[str, Any] = {
    "rfc2136": Rfc2136Provider,
    "windows": WindowsProvider,
    "manual": ManualProvider,
}


def open_provider(ctx: Any) -> DnsProvider:
    """The provider the pool file names, built from the run's context (its
    credentials are resolved here, at the moment they are needed)."""
    kind = ctx.pool.dns.provider
    cls = PROVIDERS.get(kind)
    if cls is None:
        raise UsageError(f"no DNS provider {kind!r} (providers: {', '.join(PROVIDERS)})")
    provider: DnsProvider = cls.from_context(ctx)
    return provider


__all__ = [
    "PROVIDERS",
    "DnsConflict",
    "DnsError",
    "DnsProvider",
    "RecordSet",
    "open_provider",
]
