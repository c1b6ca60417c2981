"""The local transport: the admin machine itself, through the same interface.

Commands run with subprocess (no shell of ours in between: ShCommand is an
argv), files are read and written directly, and connect_tcp is a plain socket.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
from pathlib import Path

from ..errors import CommandFailed, TransportError
from ..secrets import Secret, child_environment, mask_in
from .base import CommandResult, OsKind
from .commands import PsScript, ShCommand, secrets_in
from .posix import DEFAULT_SERVICE_COMMAND, PosixHostMixin


def _os_error(name: str, what: str, exc: OSError) -> TransportError:
    return TransportError(f"{name}: {what}: {exc.strerror or exc}")


class LocalHost(PosixHostMixin):
    def __init__(
        self,
        name: str = "admin",
        *,
        service_command: str = DEFAULT_SERVICE_COMMAND,
        status_command: str | None = None,
        hosts_file: str | None = None,
    ) -> None:
        self.name = name
        self.os: OsKind = "linux"
        self.service_command = service_command
        self.status_command = status_command
        self.hosts_file = hosts_file
        self.last_flush: list[str] = []

    def __repr__(self) -> str:
        return f"LocalHost({self.name})"

    def __enter__(self) -> LocalHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self, command: ShCommand | PsScript, *, timeout: float = 120.0, check: bool = True
    ) -> CommandResult:
        if isinstance(command, PsScript):
            raise TransportError(f"{self.name}: a PowerShell script cannot run on a Linux host")
        masked = command.masked()
        argv = [p.reveal() if isinstance(p, Secret) else p for p in command.argv]
        try:
            proc = subprocess.run(
                argv, capture_output=True, timeout=timeout, check=False, env=child_environment()
            )
        except subprocess.TimeoutExpired:
            raise TransportError(
                f"{self.name}: `{masked}` did not finish within {timeout:g} s"
            ) from None
        except OSError as exc:
            raise _os_error(self.name, f"cannot run `{masked}`", exc) from None
        secrets = secrets_in(command.argv)
        result = CommandResult(
            exit_status=proc.returncode,
            stdout=mask_in(proc.stdout.decode("utf-8", "replace"), secrets),
            stderr=mask_in(proc.stderr.decode("utf-8", "replace"), secrets),
            command=masked,
        )
        if check and not result.ok:
            raise CommandFailed(self.name, masked, result.exit_status, result.stderr)
        return result

    def read_file(self, path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise _os_error(self.name, f"cannot read {path}", exc) from None

    def write_file(self, path: str, data: bytes, *, backup_suffix: str | None = None) -> str | None:
        backup = None
        try:
            if backup_suffix and os.path.exists(path):
                backup = path + backup_suffix
                shutil.copy2(path, backup)  # what `cp -p` does
            # r+b then truncate: the same inode is rewritten (the file may be a
            # bind mount, and a rename would break it)
            mode = "r+b" if os.path.exists(path) else "wb"
            with open(path, mode) as f:
                f.write(data)
                f.truncate()
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise _os_error(self.name, f"cannot write {path}", exc) from None
        return backup

    def remove_file(self, path: str) -> bool:
        try:
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                # mounted over, so it cannot be unlinked: emptied instead (see ssh.py)
                with open(path, "r+b") as f:
                    f.truncate(0)
        except OSError as exc:
            raise _os_error(self.name, f"cannot remove {path}", exc) from None
        return True

    def connect_tcp(self, address: str, port: int, timeout: float = 5.0) -> socket.socket:
        try:
            sock = socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            raise _os_error(
                self.name, f"TCP connection from {self.name} to {address}:{port} failed", exc
            ) from None
        return sock

    def close(self) -> None:
        """Nothing is held open between calls."""
