"""The one host interface every transport implements.

Actions and probes talk to hosts only through `Host`, so the same action
drives a Windows FE over WinRM, a Linux client over SSH or the admin machine
itself. Library exceptions (paramiko, pywinrm, OSError) are wrapped into
`TransportError` at this boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from .commands import PsScript, ShCommand
from .connections import Connection

OsKind = Literal["linux", "windows"]


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str  # secrets already masked
    stderr: str  # secrets already masked
    command: str  # masked form

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@runtime_checkable
class Stream(Protocol):
    """A connected byte stream (a socket, or an SSH direct-tcpip channel)."""

    def sendall(self, data: bytes) -> None: ...
    def recv(self, n: int) -> bytes: ...
    def settimeout(self, timeout: float | None) -> None: ...
    def close(self) -> None: ...


class Host(Protocol):
    """A machine the tool acts on. Paths are in the host's own syntax."""

    name: str
    os: OsKind

    def run(
        self, command: ShCommand | PsScript, *, timeout: float = 120.0, check: bool = True
    ) -> CommandResult:
        """Run a command (ShCommand on Linux, PsScript on Windows); raise
        CommandFailed on a non-zero exit when `check`."""
        ...

    def read_file(self, path: str) -> bytes:
        """The file's exact bytes (no newline or encoding translation)."""
        ...

    def write_file(self, path: str, data: bytes, *, backup_suffix: str | None = None) -> str | None:
        """Write `data` IN PLACE (truncate + write, never rename: the file may be a
        mount point). With `backup_suffix`, first copy the current file to
        path + suffix on the host and return that backup path."""
        ...

    def remove_file(self, path: str) -> bool:
        """Remove the file at `path` (the tool's own leftovers, such as a backup
        copy); False when there was none."""
        ...

    def resolve(self, name: str) -> list[str]:
        """The IPv4 addresses `name` resolves to as this host sees it (hosts file
        included); empty when it does not resolve."""
        ...

    def connect_tcp(self, address: str, port: int, timeout: float = 5.0) -> Stream:
        """A TCP connection opened from this host (raise TransportError if refused)."""
        ...

    def flush_dns(self) -> None:
        """Clear the host's resolver cache (ipconfig /flushdns, resolvectl, nscd...)."""
        ...

    def restart_services(self, names: Sequence[str]) -> list[dict[str, Any]] | None:
        """Restart the named services and wait until they run again; a host that reads
        back what it restarted (Windows: with their dependants) returns it."""
        ...

    def connections(self, ports: Sequence[int]) -> list[Connection]:
        """The established TCP connections on local `ports`, read where no word is
        translated (connections.py); an answer it cannot read raises, naming the host."""
        ...

    def close(self) -> None: ...
