"""DNS providers: one per `dns.provider` of the pool file, behind one interface
(base.DnsProvider: lookup, replace with an expected old value, revert).

`open_provider(settings, ports)` builds the pool file's provider from its
settings (`dns` in config/model.py); each provider module registers itself
in `base.PROVIDERS`.
"""

from __future__ import annotations

from ...config.model import Dns
from ..plugin import Capabilities, Ports
from .base import PROVIDERS, DnsConflict, DnsError, DnsProvider, RecordSet


def open_provider(settings: Dns, ports: Ports) -> DnsProvider:
    """The provider the pool file names (its credentials are resolved here, at
    the moment they are needed)."""
    return PROVIDERS.build(settings.provider, settings, ports)


def capabilities(settings: Dns) -> Capabilities:
    """What the pool file's provider supports, known without building it (which
    would resolve its secret, or need its host)."""
    return PROVIDERS.capabilities(settings.provider, settings)


__all__ = [
    "PROVIDERS",
    "DnsConflict",
    "DnsError",
    "DnsProvider",
    "RecordSet",
    "capabilities",
    "open_provider",
]
