"""Hosts as the journal recorded them, so a rollback reaches what the run changed.

When a step's undo record is journaled, the hosts its revert will need are
recorded with it: address, OS, transport settings, the directory relative
paths were read from, and the credential *reference* (user name, `env:`/`file:`
references, key file path; never a secret value, which the journal refuses by
type anyway). A rollback connects with that record, so a front end removed from
the pool file since, or moved to another address, is still reached where the
change was made. Entries journaled before hosts were recorded fall back to the
pool file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ..errors import OcsscaleError, SecretError, TransportError
from .base import Host
from .factory import ADMIN_HOST, HostPool, connect_spec, needs_password
from .local import LocalHost

if TYPE_CHECKING:
    from ..config.credentials import ResolvedCredential
    from ..config.loader import LoadedPool

Record = dict[str, Any]


def record_host(loaded: LoadedPool, name: str) -> Record | None:
    """What reaches host `name` later, as plain JSON; None for a name that is
    not a host of the pool file (lb, dns:...)."""
    from ..config.model import HostSpec

    try:
        spec = loaded.pool.host(name)
    except KeyError:
        return {"name": name, "admin": True} if name == ADMIN_HOST else None
    credential: Record | None = None
    cred_name = spec.credentials
    if cred_name is not None:
        cred = loaded.pool.credentials.get(cred_name)
        # a missing credential is refused by the credential check before any step
        credential = None if cred is None else {"name": cred_name, **cred.model_dump(mode="json")}
    return {
        "name": name,
        "spec": spec.model_dump(mode="json", include=set(HostSpec.model_fields)),
        "credential": credential,
        "base_dir": str(loaded.base_dir),
        "pool_file": str(loaded.path),
    }


def record_hosts(loaded: LoadedPool, names: Iterable[str]) -> dict[str, Record]:
    found = {name: record_host(loaded, name) for name in sorted(set(names))}
    return {name: rec for name, rec in found.items() if rec is not None}


@dataclass(frozen=True)
class _CredentialSource:
    """The part of a LoadedPool that config.credentials.resolve reads."""

    pool: Any
    path: Path
    base_dir: Path


def _resolve(record: Record) -> ResolvedCredential:
    from ..config.credentials import resolve
    from ..config.model import Credential

    name = record["name"]
    cred = record.get("credential")
    if cred is None:
        raise SecretError(f"host {name}: the journal records no credential for it")
    cred_name = cred["name"]
    model = Credential.model_validate({k: v for k, v in cred.items() if k != "name"})
    source = _CredentialSource(
        pool=SimpleNamespace(credentials={cred_name: model}),
        path=Path(record["pool_file"]),
        base_dir=Path(record["base_dir"]),
    )
    resolved = resolve(source, cred_name)  # type: ignore[arg-type]
    needs_password(name, record["spec"]["transport"]["kind"], cred_name, resolved)
    return resolved


def connect_recorded(record: Record) -> Host:
    """A Host built from a journal record (connected on first use)."""
    from ..config.model import HostSpec

    if record.get("admin"):
        return LocalHost(ADMIN_HOST)
    spec = HostSpec.model_validate(record["spec"])
    return connect_spec(spec, Path(record["base_dir"]), lambda: _resolve(record))


class RecordedHosts:
    """The hosts of a rollback: per entry, the hosts its journal record names;
    the pool file's (a HostPool) for entries that recorded none. Connections
    are shared between entries that recorded the same host the same way."""

    def __init__(self, loaded: LoadedPool) -> None:
        self.fallback = HostPool(loaded)
        self._hosts: dict[str, Host] = {}
        self._lock = threading.Lock()  # reverts of one wave run on several threads

    def for_entry(self, recorded: Mapping[str, Record] | None) -> Callable[[str], Host]:
        def host(name: str) -> Host:
            record = (recorded or {}).get(name)
            return self.fallback(name) if record is None else self._get(record)

        return host

    def _get(self, record: Record) -> Host:
        key = json.dumps(record, sort_keys=True)
        with self._lock:
            host = self._hosts.get(key)
            if host is None:
                host = connect_recorded(record)
                self._hosts[key] = host
            return host

    def check_reach(
        self, wanted: Iterable[tuple[str, Mapping[str, Record] | None]], *, log_in: bool = True
    ) -> None:
        """Log in to every (name, entry's records) host and run a harmless lookup
        (with `log_in=False`: only resolve their credentials, contacting nothing);
        one error naming every host that cannot be reached or authenticated."""
        unique: dict[str, tuple[str, Mapping[str, Record] | None]] = {}
        for name, recorded in wanted:
            record = (recorded or {}).get(name)
            key = name if record is None else json.dumps(record, sort_keys=True)
            unique.setdefault(key, (name, recorded))

        def problem(name: str, recorded: Mapping[str, Record] | None) -> tuple[str, bool] | None:
            try:
                host = self.for_entry(recorded)(name)  # resolves the credential
                if log_in:
                    host.resolve("localhost")
            except OcsscaleError as exc:
                text = exc.message.removeprefix("host ")
                text = text if text.startswith(name) else f"{name}: {text}"
                return text, isinstance(exc, SecretError)
            return None

        # every host at once: a rollback of 20 hosts should not log in one by one
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(unique)))) as pool:
            found = list(pool.map(lambda item: problem(*item), unique.values()))
        problems = {key: p for key, p in zip(unique, found, strict=True) if p is not None}
        if not problems:
            return
        texts = [text for text, _ in problems.values()]
        hosts = f"{len(texts)} host{'s' if len(texts) != 1 else ''} the journal changed"
        what = "cannot be reached or logged in to" if log_in else "cannot be logged in to"
        message = f"cannot roll back: {hosts} {what}: {'; '.join(texts)}; nothing was reverted"
        hint = (
            "make every host named here reachable with the credentials the journal records "
            "(the pool file's at the time of the run), then run `ocsscale rollback` again"
        )
        if all(secret for _, secret in problems.values()):
            raise SecretError(message, hint=hint)
        raise TransportError(message, hint=hint)

    def close_all(self) -> None:
        self.fallback.close_all()
        hosts, self._hosts = list(self._hosts.values()), {}
        for host in hosts:
            try:
                host.close()
            except Exception:  # noqa: BLE001 - closing is best effort at the end
                continue
