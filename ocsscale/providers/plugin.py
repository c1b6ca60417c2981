"""The one plug-in shape of LB drivers and DNS providers: ports and capabilities.

A plug-in is built from its own settings (its model in `config/`) and `Ports`,
the few things of a run it may use: host access by name, the operator, the
pool file's directory and state directory, and an event sink. It never sees
the pool, an action's `Context` or the journal (actions/plugin_ports.py builds the
ports from a Context). It says what it can do in `Capabilities`, so actions
and the runner ask a plug-in what it supports instead of matching its name.

Each family has a `Registry` (ocsscale/registry.py, shared with the transports)
from a plug-in's name (the pool file's `kind`/`provider`) to its factory and its
capabilities (known from its settings, without building it); the registry of a
family imports every module of its package on first use, so a new plug-in is one
module that registers itself there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..operator import NoOperator, Operator

if TYPE_CHECKING:
    from ..transports.base import Host

#: what an event carries: plain JSON, never a secret
EventData = Mapping[str, object]
EventSink = Callable[[str, EventData], None]


def _no_events(kind: str, data: EventData) -> None:
    return None


def _no_hosts(name: str) -> Host:
    raise UsageError(f"no host access here (asked for {name})")


@dataclass(frozen=True)
class Ports:
    """What a plug-in may use of a run (built by actions/plugin_ports.py `ports_from`)."""

    #: host name -> connected host (connects on first use; the runner closes it)
    host: Callable[[str], Host] = _no_hosts
    #: the person at the console (NoOperator when unattended)
    operator: Operator = field(default_factory=NoOperator)
    #: where the pool file's relative paths (a secret file) are read from
    base_dir: Path = field(default_factory=lambda: Path(".").resolve())
    #: the run's state directory (`.ocsscale/` beside the pool file); None: none
    state_dir: Path | None = None
    #: progress and checklists for the display and the report
    emit: EventSink = _no_events


@dataclass(frozen=True)
class Capabilities:
    """What a plug-in supports; actions branch on these, never on its name."""

    #: False: a person makes every change from a checklist, the tool proves it
    drives_itself: bool
    #: it sets a member's admin state itself (drain, maint, ready) and reads it back
    drain: bool = False
    #: it reads back its own view (a farm's settings, a record) to compare with the plan
    read_back: bool = False
    #: its view reports a member's health, so a failed member is seen there (the drill)
    detects: bool = False
    #: LB: it logs in to an LB host of its own (`load_balancer.host`), which every copy
    #: of the pool file reaches, so the run's lease can be kept there (runner/lease.py)
    own_host: bool = False
    #: DNS: the zone's servers converge by directory replication (AD-integrated), not
    #: by SOA serials (actions/dns_propagation.py)
    replicated: bool = False
    #: DNS: the record types it can change; None: every type the tool handles
    record_types: tuple[str, ...] | None = None
    #: two hosts with a floating VIP: read_farm names each host's farm (`hosts`) and
    #: which of them holds the VIP (`vip_holders`)
    pair: bool = False


def fixed(capabilities: Capabilities) -> Callable[[object], Capabilities]:
    """A plug-in's capabilities that its settings do not change (Registry.add)."""
    return lambda settings: capabilities
