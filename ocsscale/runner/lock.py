"""One run at a time: a lock file next to the journal.

The lock is taken by hard-linking a fully written temporary file to the lock
path: link() fails if the path exists, so taking the lock is atomic and a
reader never sees a half-written lock. A lock whose process is gone (same
host, pid not running) is *stale*: it is reported with its LOCK_ID and cleared
only by `ocsscale unlock LOCK_ID`, never taken over silently.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import secrets
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import LockHeld, UsageError
from ..statefiles import private_dir

LOCK_NAME = "lock"


@dataclass(frozen=True)
class LockInfo:
    lock_id: str
    user: str
    host: str
    pid: int
    started: float
    command: str

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return (
            f"{self.user}@{self.host} (pid {self.pid}, `{self.command}`, since {when}, "
            f"lock {self.lock_id})"
        )

    @property
    def stale(self) -> bool:
        """True when the holder ran on this host and its process is gone."""
        return self.host == socket.gethostname() and not pid_alive(self.pid)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is someone else's
    return True


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def read_lock(state_dir: Path) -> LockInfo | None:
    try:
        data = json.loads((state_dir / LOCK_NAME).read_text(encoding="utf-8"))
        return LockInfo(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise UsageError(
            f"the lock file {state_dir / LOCK_NAME} is unreadable ({exc}); "
            "remove it by hand once you are sure no run is active"
        ) from None


def held_error(info: LockInfo) -> LockHeld:
    if info.stale:
        return LockHeld(
            f"a stale lock is left by a run that is no longer running: {info.describe()}",
            hint=f"ocsscale unlock {info.lock_id}",
        )
    return LockHeld(
        f"another run holds the lock: {info.describe()}",
        hint="wait for it to finish; `ocsscale status` shows what it is doing",
    )


class RunLock:
    """Held for the length of a run or rollback; use as a context manager."""

    def __init__(self, state_dir: Path, command: str) -> None:
        self.state_dir = state_dir
        self.command = command
        self.info: LockInfo | None = None

    def acquire(self) -> LockInfo:
        private_dir(self.state_dir)
        for _ in range(2):
            info = LockInfo(
                lock_id=secrets.token_hex(4),
                user=current_user(),
                host=socket.gethostname(),
                pid=os.getpid(),
                started=time.time(),
                command=self.command,
            )
            if self._link(info):
                self.info = info
                return info
            holder = read_lock(self.state_dir)
            if holder is not None:
                raise held_error(holder)
            # released between our attempt and the read: try once more
        raise LockHeld("the lock is changing hands; try again")

    def _link(self, info: LockInfo) -> bool:
        tmp = self.state_dir / f".{LOCK_NAME}.{info.lock_id}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, json.dumps(asdict(info)).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, self.state_dir / LOCK_NAME)
            return True
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def release(self) -> None:
        if self.info is None:
            return
        holder = read_lock(self.state_dir)
        # only ever remove our own lock (someone may have unlocked and re-locked)
        if holder is not None and holder.lock_id == self.info.lock_id:
            with contextlib.suppress(FileNotFoundError):
                (self.state_dir / LOCK_NAME).unlink()
        self.info = None

    def __enter__(self) -> LockInfo:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def unlock(state_dir: Path, lock_id: str) -> LockInfo:
    """Clear the lock LOCK_ID; refuse another id, and refuse a live holder on this host."""
    info = read_lock(state_dir)
    if info is None:
        raise UsageError("there is no lock to clear")
    if info.lock_id != lock_id:
        raise UsageError(
            f"the lock is {info.lock_id}, not {lock_id}: {info.describe()}",
            hint=f"ocsscale unlock {info.lock_id}" if info.stale else None,
        )
    if info.host == socket.gethostname() and pid_alive(info.pid):
        raise LockHeld(
            f"the run holding lock {lock_id} is still running (pid {info.pid}); "
            "stop it first or wait for it to finish"
        )
    with contextlib.suppress(FileNotFoundError):
        (state_dir / LOCK_NAME).unlink()
    return info
