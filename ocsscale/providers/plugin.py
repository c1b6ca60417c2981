"""The one plug-in shape of LB drivers and DNS providers: ports, capabilities, registry.

A plug-in is built from its own settings (its model in `config/`) and `Ports`,
the few things of a run it may use: host access by name, the operator, the
pool file's directory and state directory, and an event sink. It never sees
the pool, an action's `Context` or the journal (actions/plugin_ports.py builds the
ports from a Context). It says what it can do in `Capabilities`, so actions
ask a plug-in what it supports instead of matching its name.

`Registry` maps a plug-in's name (the pool file's `kind`/`provider`) to its
factory. The registry of a family imports every module of its package on first
use, so a new plug-in is one module that registers itself there.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, Generic, ParamSpec, TypeVar

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
    #: two hosts with a floating VIP: read_farm names each host's farm (`hosts`) and
    #: which of them holds the VIP (`vip_holders`)
    pair: bool = False


A = ParamSpec("A")
P = TypeVar("P")
S = TypeVar("S")


class Registry(Generic[A, P]):
    """Name -> factory of one plug-in family. `add(name, Settings, factory)`;
    `build(name, settings, ...)` refuses settings of another plug-in."""

    def __init__(self, family: str, package: str) -> None:
        self.family = family
        self._package = package
        self._factories: dict[str, Callable[Concatenate[object, A], P]] = {}
        self._loaded = False
        self._lock = threading.RLock()  # parallel steps may build plug-ins at once

    def add(self, name: str, settings: type[S], factory: Callable[Concatenate[S, A], P]) -> None:
        def build(value: object, /, *args: A.args, **kwargs: A.kwargs) -> P:
            if not isinstance(value, settings):
                raise UsageError(f"the {self.family} {name} was given another one's settings")
            return factory(value, *args, **kwargs)

        self._factories[name] = build

    def _load(self) -> None:
        # every module of the family's package: each registers its plug-in
        with self._lock:
            if self._loaded:
                return
            package = importlib.import_module(self._package)
            for info in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{self._package}.{info.name}")
            self._loaded = True

    def names(self) -> list[str]:
        self._load()
        return sorted(self._factories)

    def build(self, name: str, settings: object, /, *args: A.args, **kwargs: A.kwargs) -> P:
        self._load()
        factory = self._factories.get(name)
        if factory is None:
            raise UsageError(
                f"no {self.family} {name!r} ({self.family}s: {', '.join(self.names())})"
            )
        return factory(settings, *args, **kwargs)
