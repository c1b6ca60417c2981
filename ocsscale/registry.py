"""One registry style for every plug-in family: LB drivers, DNS providers, transports.

A `Registry` maps a plug-in's name (the pool file's `kind`/`provider`) to the
factory that builds it from its own settings (its model in `config/`) and the
ports of its family. `build` refuses settings of another plug-in, and names the
known ones when asked for one it does not know. A family whose plug-ins say what
they support (providers/plugin.py's Capabilities) registers how to read that from
the settings alone, so it is known without building the plug-in (which may need a
secret or a host): `capabilities(name, settings)`.

A family given a `package` imports every module of it on first use, so a new
plug-in is one module that registers itself there (providers/lb, providers/dns);
one without registers its plug-ins where the registry is made (the transports:
pywinrm is imported only when a WinRM host is connected).

A shared leaf: it imports nothing of ocsscale but `errors`.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable
from typing import Concatenate, Generic, ParamSpec, TypeVar

from .errors import UsageError

A = ParamSpec("A")
P = TypeVar("P")
#: what a plug-in of the family supports (None: the family declares nothing)
C = TypeVar("C")
S = TypeVar("S")


class Registry(Generic[A, P, C]):
    """Name -> factory of one plug-in family. `add(name, Settings, factory,
    capabilities=...)`; `build(name, settings, ...)` refuses settings of another
    plug-in."""

    def __init__(self, family: str, package: str | None = None) -> None:
        self.family = family
        self._package = package
        self._factories: dict[str, Callable[Concatenate[object, A], P]] = {}
        self._capabilities: dict[str, Callable[[object], C]] = {}
        self._loaded = False
        self._lock = threading.RLock()  # parallel steps may build plug-ins at once

    def add(
        self,
        name: str,
        settings: type[S],
        factory: Callable[Concatenate[S, A], P],
        *,
        capabilities: Callable[[S], C] | None = None,
    ) -> None:
        def own(value: object) -> S:
            if not isinstance(value, settings):
                raise UsageError(f"the {self.family} {name} was given another one's settings")
            return value

        def build(value: object, /, *args: A.args, **kwargs: A.kwargs) -> P:
            return factory(own(value), *args, **kwargs)

        self._factories[name] = build
        if capabilities is not None:
            self._capabilities[name] = lambda value: capabilities(own(value))

    def _load(self) -> None:
        # every module of the family's package: each registers its plug-in
        with self._lock:
            if self._loaded or self._package is None:
                return
            package = importlib.import_module(self._package)
            for info in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{self._package}.{info.name}")
            self._loaded = True

    def names(self) -> list[str]:
        self._load()
        return sorted(self._factories)

    def _unknown(self, name: str) -> UsageError:
        return UsageError(f"no {self.family} {name!r} ({self.family}s: {', '.join(self.names())})")

    def build(self, name: str, settings: object, /, *args: A.args, **kwargs: A.kwargs) -> P:
        self._load()
        factory = self._factories.get(name)
        if factory is None:
            raise self._unknown(name)
        return factory(settings, *args, **kwargs)

    def capabilities(self, name: str, settings: object) -> C:
        """What the plug-in `name` supports with these settings, without building it."""
        self._load()
        if name not in self._factories:
            raise self._unknown(name)
        read = self._capabilities.get(name)
        if read is None:
            raise UsageError(f"the {self.family} {name} declares no capabilities")
        return read(settings)
