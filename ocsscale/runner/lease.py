"""One run per pool, wherever its copies are: a lease every copy sees.

The lock (lock.py) lives in `.ocsscale/` next to the pool file, so it keeps two
runs of one copy apart; two copies of the pool file (two directories, two admin
machines) each have a lock of their own and would both drive the same hosts. The
lease is kept where every copy looks, keyed by the pool's FQDN:

- drivers `engine` and `haproxy`: on the LB host, over its transport, in
  `run.lease.dir` (/var/lib/ocsscale/leases). Chosen because it is the one Linux
  host every copy of such a pool file logs in to with write access (the driver
  writes its configuration there), and the load balancer is what two runs would
  fight over first; no new machine or shared filesystem is needed.
- `run.lease.host` in the pool file names another place: a Linux host of the pool
  file (ssh or local transport), or `admin`, this machine (a directory every admin
  machine mounts, or one machine that holds every copy).
- the manual driver without `run.lease.host`: no place every copy sees is known.
  Only the lock protects, and it keeps apart two runs of the same directory only;
  `check` and `plan` warn (`no_place_warning`).

The lease is the file `DIR/<pool fqdn>.lease`: JSON naming who holds it (user@host,
pid, command, since, lease id, the holder's `.ocsscale/`), never a secret. Its id
is the run's lock id, so `ocsscale unlock ID` clears both. It is taken atomically
on the host: a fully written temporary file is hard-linked to the lease path, and
link() fails when the path exists (as lock.py does locally). It is released at the
end of the run or rollback however it ends (failure, Ctrl-C), and only while it is
still byte for byte the one written. A place that cannot be reached refuses the run
before anything changes (fail closed).

A run killed while holding it leaves it. The copy records the lease it holds in
`.ocsscale/lease`: its next run (which holds that copy's lock, so the killed run is
over) takes back a lease with that id, by renaming a new lease over it. Any other
copy is refused with exit 3, naming the holder, until `ocsscale unlock ID` clears
it: a lease is never taken over silently.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.loader import STATE_DIR_NAME
from ..errors import CommandFailed, LockHeld, OcsscaleError, TransportError, UsageError
from ..statefiles import private_dir, private_file
from ..transports.commands import ShCommand
from . import lock as lock_mod
from .lock import LockInfo, pid_alive

if TYPE_CHECKING:
    from ..config.loader import LoadedPool
    from ..config.model import Pool
    from ..transports.base import Host

#: `.ocsscale/lease`: the lease this copy holds, or held when its run was killed
RECORD_NAME = "lease"
#: a lease file is a few hundred bytes; anything past this is not ours
MAX_LEASE_BYTES = 4096
_ID_RE = re.compile(r"^[0-9a-f]{8,32}\Z")
_FIELD_MAX = 300
_TIMEOUT = 30.0

# $1 dir, $2 lease, $3 temporary file, $4 the lease's text. Prints `taken`, or
# `held` and the holder's lease (at most MAX+1 bytes), or `again` when it went
# away in between; exit 3 when the directory or the temporary file cannot be made.
_TAKE = r"""
umask 077
mkdir -p -- "$1" || exit 3
printf '%s' "$4" > "$3" || { rm -f -- "$3"; exit 3; }
if err=$(ln -- "$3" "$2" 2>&1); then rm -f -- "$3"; echo taken; exit 0; fi
rm -f -- "$3"
if [ ! -e "$2" ]; then
  [ -n "$err" ] && { echo "$err" >&2; exit 4; }
  echo again; exit 0
fi
echo held
head -c "$5" -- "$2"
"""
# $1 lease, $2 temporary file, $3 the new text, $4 the text it must still have
_REPLACE = r"""
umask 077
printf '%s' "$3" > "$2" || { rm -f -- "$2"; exit 3; }
cur=$(head -c "$5" -- "$1" 2>/dev/null) || cur=
if [ "$cur" = "$4" ] && mv -f -- "$2" "$1"; then echo taken; exit 0; fi
rm -f -- "$2"
echo changed
"""
# $1 lease, $2 the text it must still have
_REMOVE = r"""
[ -e "$1" ] || { echo gone; exit 0; }
cur=$(head -c "$3" -- "$1") || exit 3
if [ "$cur" = "$2" ]; then rm -f -- "$1" || exit 3; echo removed; exit 0; fi
echo other
"""
_READ = r"""
[ -e "$1" ] || { echo none; exit 0; }
echo held
head -c "$2" -- "$1"
"""


def _clean(value: Any) -> str:
    """A field of a lease someone else wrote, safe to print: printable, bounded."""
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return text[:_FIELD_MAX]


@dataclass(frozen=True)
class LeaseInfo:
    lease_id: str
    pool: str
    user: str
    host: str
    pid: int
    command: str
    started: float
    copy: str  # the holder's .ocsscale/ directory (where its journal is)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return (
            f"{self.user}@{self.host} (pid {self.pid}, `{self.command}`, since {when}, "
            f"lease {self.lease_id}, copy {self.copy})"
        )

    @property
    def stale(self) -> bool:
        """True when the holder ran on this host and its process is gone."""
        return self.host == socket.gethostname() and not pid_alive(self.pid)

    @property
    def running_here(self) -> bool:
        return self.host == socket.gethostname() and pid_alive(self.pid)

    def text(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def parse_lease(raw: str) -> LeaseInfo | None:
    """The lease in `raw`, or None when it is not one (too long, not JSON, a field
    missing or of the wrong type): the caller refuses it, never guesses."""
    if len(raw.encode("utf-8", "replace")) > MAX_LEASE_BYTES:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    lease_id, pid, started = data.get("lease_id"), data.get("pid"), data.get("started")
    if not isinstance(lease_id, str) or not _ID_RE.match(lease_id):
        return None
    if isinstance(pid, bool) or not isinstance(pid, int):
        return None
    if isinstance(started, bool) or not isinstance(started, int | float):
        return None
    texts = [data.get(k) for k in ("pool", "user", "host", "command", "copy")]
    if not all(isinstance(t, str) for t in texts):
        return None
    pool, user, host, command, copy = (_clean(t) for t in texts)
    return LeaseInfo(lease_id, pool, user, host, pid, command, float(started), copy)


@dataclass(frozen=True)
class LeasePlace:
    host: str  # a host of the pool file, or `admin`
    dir: str
    pool: str  # the pool FQDN, lower case: the lease's key

    @property
    def path(self) -> str:
        return f"{self.dir.rstrip('/')}/{self.pool}.lease"

    def describe(self) -> str:
        return f"{self.path} on {self.host}"


def lease_place(pool: Pool) -> LeasePlace | None:
    """Where this pool file's lease lives (see the module docstring); None when
    no place every copy sees is known."""
    from ..providers.lb import capabilities  # the drivers are loaded only when asked

    settings = pool.run.lease
    lb = pool.load_balancer
    host = settings.host
    # a driver that logs in to an LB host of its own: every copy of the pool file reaches it
    if host is None and capabilities(lb.driver).own_host:
        if lb.host is not None:
            host = lb.host.name
        elif lb.pair is not None:
            host = lb.pair.preferred  # a pair: the host that holds the VIP when both are up
    if host is None:
        return None
    return LeasePlace(host, settings.dir, pool.pool.fqdn.lower())


def no_place_warning(pool: Pool) -> str | None:
    """What `check` and `plan` say when only the local lock protects."""
    if lease_place(pool) is not None:
        return None
    return (
        "warning: run.lease: no place every copy of this pool file sees (the "
        f"{pool.load_balancer.driver.kind} driver has no LB host to keep the run lease on): "
        "the lock in .ocsscale/ keeps two runs of this directory apart, not two copies of "
        "the pool file in other directories or on other admin machines. Name a Linux host "
        "of the pool file, or admin with a directory every admin machine shares, in "
        "run.lease.host (and run.lease.dir)."
    )


class LeaseFile:
    """The lease at `place`, on a connected `host`."""

    def __init__(self, host: Host, place: LeasePlace) -> None:
        self.host = host
        self.place = place

    def _sh(self, script: str, *args: str) -> list[str]:
        """Run `script`; its output as (first line, the rest)."""
        result = self.host.run(
            ShCommand.of("sh", "-c", script, "sh", *args), timeout=_TIMEOUT, check=False
        )
        if not result.ok:
            why = result.stderr.strip().splitlines()[-1:] or [f"exit {result.exit_status}"]
            raise TransportError(_clean(why[0]))
        first, _, rest = result.stdout.partition("\n")
        return [first.strip(), rest.rstrip("\n")]

    def _tmp(self, lease_id: str) -> str:
        return f"{self.place.dir.rstrip('/')}/.{self.place.pool}.{lease_id}.tmp"

    def take(self, info: LeaseInfo) -> tuple[str, str]:
        """(`taken`, ''), (`again`, '') or (`held`, the holder's lease as it is)."""
        said, rest = self._sh(
            _TAKE,
            self.place.dir,
            self.place.path,
            self._tmp(info.lease_id),
            info.text(),
            str(MAX_LEASE_BYTES + 1),
        )
        if said not in ("taken", "held", "again"):
            raise TransportError("an unexpected answer")
        return said, rest

    def replace(self, info: LeaseInfo, expected: str) -> bool:
        """Put `info` in place of the lease whose text is `expected` (False: it changed)."""
        said, _ = self._sh(
            _REPLACE,
            self.place.path,
            self._tmp(info.lease_id),
            info.text(),
            expected,
            str(MAX_LEASE_BYTES + 1),
        )
        return said == "taken"

    def remove(self, expected: str) -> str:
        """Remove the lease if its text is still `expected`: removed, gone or other."""
        said, _ = self._sh(_REMOVE, self.place.path, expected, str(MAX_LEASE_BYTES + 1))
        if said not in ("removed", "gone", "other"):
            raise TransportError("an unexpected answer")
        return said

    def read(self) -> str | None:
        said, rest = self._sh(_READ, self.place.path, str(MAX_LEASE_BYTES + 1))
        return rest if said == "held" else None


@contextlib.contextmanager
def lease_file(loaded: LoadedPool, place: LeasePlace) -> Iterator[LeaseFile]:
    """The lease's host, connected as the run connects to it, closed afterwards;
    a host that cannot be reached or driven names the lease's place."""
    from ..transports.factory import HostPool

    hosts = HostPool(loaded)
    try:
        yield LeaseFile(hosts.get(place.host), place)
    except (CommandFailed, TransportError) as exc:
        raise TransportError(
            f"the run lease at {place.describe()} cannot be reached or written: "
            f"{exc.message}; nothing was changed",
            hint="the lease keeps two copies of this pool file from running at once: make "
            f"{place.host} reachable, or name another place every copy reaches in run.lease "
            "of the pool file (README: Safety)",
        ) from None
    finally:
        hosts.close_all()


def unreadable(place: LeasePlace) -> LockHeld:
    return LockHeld(
        f"the run lease {place.describe()} is not one ocsscale wrote (or is cut short); "
        "nothing was changed",
        hint=f"remove it by hand on {place.host} once you are sure no run of this pool is active",
    )


def held_error(holder: LeaseInfo, place: LeasePlace) -> LockHeld:
    if holder.stale:
        return LockHeld(
            f"a stale run lease of pool {place.pool} ({place.describe()}) is left by a run "
            f"that is no longer running: {holder.describe()}; nothing was changed",
            hint=f"ocsscale unlock {holder.lease_id} (here, or in its copy {holder.copy}, "
            "whose next run takes it back)",
        )
    return LockHeld(
        f"another copy of this pool file holds the run lease of pool {place.pool} "
        f"({place.describe()}): {holder.describe()}; nothing was changed",
        hint="wait for it to finish; if that run is gone for good (its machine died), "
        f"`ocsscale unlock {holder.lease_id}` clears its lease",
    )


def _refuse_other(raw: str, place: LeasePlace, ours: list[str]) -> None:
    """LockHeld unless the lease `raw` is one this copy took (an id in `ours`) in a
    run that is over: that one is taken back, never another copy's."""
    holder = parse_lease(raw)
    if holder is None:
        raise unreadable(place)
    if holder.lease_id not in ours or holder.running_here:
        raise held_error(holder, place)


def check_free(loaded: LoadedPool) -> None:
    """Refuse, before the operator is asked to confirm, a run or rollback the lease
    would refuse: another copy's lease, or one that is not ocsscale's (read only;
    a place that cannot be reached refuses it too). The lease is still taken for
    real under the lock: a copy that takes it in between is refused then."""
    place = lease_place(loaded.pool)
    if place is None:
        return
    with lease_file(loaded, place) as lease:
        raw = lease.read()
    if raw is not None:
        _refuse_other(raw, place, recorded(loaded.state_dir))


# -- the copy's record of the lease it holds -----------------------------------------


def recorded(state_dir: Path) -> list[str]:
    """The ids of the leases this copy may hold, newest first (a run killed while it
    took one leaves two: the lease is one of them); none when unreadable."""
    try:
        data = json.loads((state_dir / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    ids = data.get("lease_ids") if isinstance(data, dict) else None
    if not isinstance(ids, list):
        return []
    return [i for i in ids if isinstance(i, str) and _ID_RE.match(i)][:2]


def write_record(state_dir: Path, ids: list[str]) -> None:
    """Record `ids` as this copy's (none: no record)."""
    path = state_dir / RECORD_NAME
    if not ids:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    private_dir(state_dir)
    tmp = state_dir / f".{RECORD_NAME}.{ids[0]}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps({"lease_ids": ids[:2]}).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    private_file(path)


def forget(state_dir: Path, lease_id: str) -> None:
    ids = recorded(state_dir)
    if lease_id in ids:
        write_record(state_dir, [i for i in ids if i != lease_id])


def _stderr(message: str) -> None:
    sys.stderr.write(message + "\n")


class RunLease:
    """Held for the length of a run or rollback, under its lock and with its id;
    use as a context manager. Nothing is held when the pool file names no place."""

    def __init__(
        self,
        loaded: LoadedPool,
        lock: LockInfo,
        *,
        warn: Callable[[str], None] = _stderr,
    ) -> None:
        self.loaded = loaded
        self.state_dir = loaded.state_dir
        self.place = lease_place(loaded.pool)
        self.lock = lock
        self.warn = warn
        self.info: LeaseInfo | None = None

    def acquire(self) -> LeaseInfo | None:
        place = self.place
        if place is None:
            return None
        info = LeaseInfo(
            lease_id=self.lock.lock_id,
            pool=place.pool,
            user=self.lock.user,
            host=self.lock.host,
            pid=self.lock.pid,
            command=_clean(self.lock.command),
            started=self.lock.started,
            copy=_clean(self.state_dir),
        )
        previous = recorded(self.state_dir)
        # recorded first: a run killed while it takes the lease leaves one this copy knows
        write_record(self.state_dir, [info.lease_id, *previous])
        try:
            self._take(info, place, previous)
        except LockHeld:
            forget(self.state_dir, info.lease_id)  # another copy's: not taken
            raise
        # whichever lease this copy held before was the one at this place: now replaced
        write_record(self.state_dir, [info.lease_id])
        self.info = info
        return info

    def _take(self, info: LeaseInfo, place: LeasePlace, previous: list[str]) -> None:
        with lease_file(self.loaded, place) as lease:
            for _ in range(3):
                said, raw = lease.take(info)
                if said == "taken":
                    return
                if said == "again":
                    continue  # released between our link and our look
                _refuse_other(raw, place, [*previous, info.lease_id])
                if lease.replace(info, raw):
                    return
        raise LockHeld(f"the run lease {place.describe()} is changing hands; try again")

    def release(self) -> None:
        info, place = self.info, self.place
        if info is None or place is None:
            return
        self.info = None
        try:
            with lease_file(self.loaded, place) as lease:
                said = lease.remove(info.text())
        except Exception as exc:  # noqa: BLE001 - the run's own outcome comes first
            why = exc.message if isinstance(exc, OcsscaleError) else type(exc).__name__
            self.warn(
                f"warning: the run lease {info.lease_id} at {place.describe()} was not "
                f"released ({why}): the next run of this copy takes it back; "
                f"`ocsscale unlock {info.lease_id}` clears it"
            )
            return
        if said == "other":
            self.warn(
                f"warning: the run lease at {place.describe()} is no longer {info.lease_id} "
                "(it was cleared and taken again while this run held it): left as it is"
            )
        forget(self.state_dir, info.lease_id)

    def __enter__(self) -> LeaseInfo | None:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- ocsscale status ------------------------------------------------------------------


def _holder_json(holder: LeaseInfo, stale: bool) -> dict[str, Any]:
    return {**asdict(holder), "stale": stale}


def _read_here(place: LeasePlace) -> tuple[str, LeaseInfo | None, str]:
    """The lease on this machine (`admin`), read as a file: (state, holder, note)."""
    try:
        with open(place.path, "rb") as f:
            raw = f.read(MAX_LEASE_BYTES + 1)
    except FileNotFoundError:
        return "free", None, ""
    except OSError as exc:
        return "unknown", None, f"it cannot be read ({_clean(exc.strerror or type(exc).__name__)})"
    holder = parse_lease(raw.decode("utf-8", "replace"))
    if holder is None:
        return "unknown", None, "it is not one ocsscale wrote: `run` refuses it"
    return "held", holder, ""


def lease_status(config: Path, lock: LockInfo | None) -> dict[str, Any]:
    """For `status`: where the run lease lives and who holds it, as far as is known
    without contacting anything: the lease itself when it is on this machine
    (`admin`), else this copy's record of the lease it holds, with its lock."""
    from ..config.loader import load_pool

    state_dir = Path(config).resolve().parent / STATE_DIR_NAME
    ids = recorded(state_dir)
    report: dict[str, Any] = {
        "host": None,
        "dir": None,
        "path": None,
        "state": "unknown",
        "holder": None,
        "recorded": ids,
        "note": "",
    }
    try:
        place = lease_place(load_pool(config).pool)
    except (OcsscaleError, OSError):
        report["note"] = "the pool file does not load, so where the lease lives is not known"
        return report
    if place is None:
        report["state"] = "none"
        report["note"] = (
            "no place every copy of the pool file sees: only the lock in .ocsscale/ "
            "protects, i.e. this directory (run.lease)"
        )
        return report
    report.update(host=place.host, dir=place.dir, path=place.path)
    if place.host == "admin":
        state, holder, note = _read_here(place)
        report.update(state=state, note=note)
        if holder is not None:
            report["holder"] = _holder_json(holder, holder.stale)
        return report
    # on a host of the pool file: what this copy knows of it, from its own files
    if lock is not None and lock.lock_id in ids and not lock.stale:
        holder = LeaseInfo(
            lock.lock_id,
            place.pool,
            lock.user,
            lock.host,
            lock.pid,
            _clean(lock.command),
            lock.started,
            _clean(state_dir),
        )
        report.update(state="held", holder=_holder_json(holder, False))
        report["note"] = f"by this copy's run (its lock); not read on {place.host}"
    elif ids:
        report["note"] = (
            f"a run of this copy that was cut short may still hold lease {ids[0]} there: "
            f"its next run takes it back; `ocsscale unlock {ids[0]}` clears it"
        )
    else:
        report["note"] = (
            f"not read: it is on {place.host}, and status contacts nothing; this copy "
            "holds none (`run` names another copy's before it asks)"
        )
    return report


# -- ocsscale unlock ------------------------------------------------------------------


def _unlock_lease(config: Path, state_dir: Path, lease_id: str) -> list[str] | None:
    """Clear the lease `lease_id` wherever this pool file keeps it; what was done,
    or None when there is no such lease."""
    from ..config.loader import load_pool

    loaded = load_pool(config)
    place = lease_place(loaded.pool)
    if place is None:
        return None
    with lease_file(loaded, place) as lease:
        raw = lease.read()
        holder = None if raw is None else parse_lease(raw)
        if holder is None or holder.lease_id != lease_id:
            forget(state_dir, lease_id)  # gone already
            return None
        if holder.running_here:
            raise LockHeld(
                f"the run holding lease {lease_id} is still running (pid {holder.pid}, "
                f"copy {holder.copy}); stop it first or wait for it to finish"
            )
        if lease.remove(raw or "") != "removed":
            raise LockHeld(f"the run lease {place.describe()} changed meanwhile; look again")
    forget(state_dir, lease_id)
    return [f"lease {lease_id} at {place.describe()} cleared ({holder.describe()})."]


def unlock(config: Path, lock_id: str) -> list[str]:
    """`ocsscale unlock ID`: this copy's lock ID, and the run lease ID wherever this
    pool file keeps it (left by this copy or another); what was cleared. A holder
    still running on this machine is never cleared."""
    state_dir = Path(config).resolve().parent / STATE_DIR_NAME
    said: list[str] = []
    refused: UsageError | None = None
    try:
        info = lock_mod.unlock(state_dir, lock_id)
        said.append(f"lock {info.lock_id} cleared ({info.user}@{info.host}, pid {info.pid}).")
    except LockHeld:
        raise
    except UsageError as exc:  # no lock here, or another one: the lease may still be it
        refused = exc
    try:
        cleared = _unlock_lease(config, state_dir, lock_id)
    except LockHeld:
        raise
    except OcsscaleError as exc:
        if refused is not None and isinstance(exc, UsageError):
            # the pool file does not load (status and unlock work without it): the
            # lock's own answer comes first
            raise UsageError(
                f"{refused.message} (the run lease was not looked at: {exc.message})",
                hint=refused.hint,
            ) from None
        if not said:
            raise
        said.append(
            f"the run lease was not looked at ({exc.message}): this copy takes its own "
            "lease back on its next run"
        )
        return said
    if cleared:
        return said + cleared
    if refused is not None:
        raise refused
    return said
