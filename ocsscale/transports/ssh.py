"""The SSH transport (paramiko): a Linux host driven over one reused connection.

Host keys are checked against the configured known_hosts file only: an
unknown key is refused unless the pool file says `trust_unknown_host_keys`
(the key is then written to that file, so the next run checks it), and a key
that differs from the recorded one is always refused. Every paramiko/socket
exception is wrapped into TransportError at this boundary, with the host name
and without any secret.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from pathlib import Path

import paramiko

from ..errors import CommandFailed, HostKeyError, TransportError
from ..secrets import Secret, mask_in
from .base import CommandResult, OsKind
from .commands import PsScript, ShCommand, secrets_in
from .posix import DEFAULT_SERVICE_COMMAND, PosixHostMixin

# paramiko logs a refused channel ("Secsh channel 3 open FAILED: Connection refused")
# as a warning; with no handler configured Python prints it on stderr, over the live
# table. The probe that opened the channel reports the refusal in its own words.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")


# A file that something is mounted over cannot be unlinked (EBUSY): the lab
# bind-mounts each namespace's own /etc/hosts.ocsscale.bak, an empty file until
# the tool's first write. It is emptied instead, as it was before that write.
_REMOVE_SCRIPT = """
[ -e "$1" ] || [ -L "$1" ] || exit 0
if err=$(LC_ALL=C rm -f -- "$1" 2>&1); then echo removed; exit 0; fi
case "$err" in
  *busy*) : > "$1" && echo emptied ;;
  *) echo "$err" >&2; exit 1 ;;
esac
"""


def _known_hosts_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def _no_delay(transport: paramiko.Transport) -> None:
    """TCP_NODELAY on the connection. Each command is a few small packets each way;
    with Nagle's algorithm on both ends, a close still unacknowledged holds the next
    channel's request until the peer's delayed ACK (40 ms on Linux): a 7 ms command
    took 46 ms. sshd sets it only for interactive sessions, so the client must."""
    sock = getattr(transport, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _reason(error: Exception) -> str:
    """Why one address refused: the socket error's text without its number."""
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno)
    return str(error)


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Called by paramiko only for a key that known_hosts does not have."""

    def __init__(self, host: SSHHost) -> None:
        self.host = host

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        h = self.host
        if not h.trust_unknown_host_keys:
            raise HostKeyError(
                f"{h.name}: host key of {hostname} is not in {h.known_hosts} "
                f"(server offers {key.get_name()} {key.fingerprint})",
                hint=(
                    "check that fingerprint out of band, then add the key with "
                    f"`ssh-keyscan -p {h.port} {h.address} >> {h.known_hosts}`, or set "
                    "`trust_unknown_host_keys: true` on this host's transport to record it"
                ),
            )
        client.get_host_keys().add(hostname, key.get_name(), key)
        h.remember_host_key(hostname, key)


class SSHHost(PosixHostMixin):
    """A `Host` reached over SSH. Authenticates with a key file (optionally
    encrypted, with `passphrase`) or a password."""

    def __init__(
        self,
        name: str,
        address: str,
        *,
        username: str,
        port: int = 22,
        password: Secret | None = None,
        key_file: Path | str | None = None,
        passphrase: Secret | None = None,
        known_hosts: Path | str = DEFAULT_KNOWN_HOSTS,
        trust_unknown_host_keys: bool = False,
        service_command: str = DEFAULT_SERVICE_COMMAND,
        status_command: str | None = None,
        hosts_file: str | None = None,
        connect_timeout: float = 15.0,
        os: OsKind = "linux",
    ) -> None:
        if password is None and key_file is None:
            raise TransportError(f"{name}: SSH needs a key_file or a password to log in")
        if os != "linux":
            raise TransportError(f"{name}: the SSH transport drives Linux hosts only (got {os})")
        self.name = name
        self.os: OsKind = os
        self.address = address
        self.port = port
        self.username = username
        self.key_file = Path(key_file).expanduser() if key_file is not None else None
        self.known_hosts = Path(known_hosts).expanduser()
        self.trust_unknown_host_keys = trust_unknown_host_keys
        self.service_command = service_command
        self.status_command = status_command
        self.hosts_file = hosts_file
        self.connect_timeout = connect_timeout
        self.last_flush: list[str] = []
        self._password = password
        self._passphrase = passphrase
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._sftp_missing = False  # the server has no sftp subsystem: use cat
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"SSHHost({self.name}, {self.username}@{self.address}:{self.port})"

    def __enter__(self) -> SSHHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection -------------------------------------------------------

    @property
    def _secrets(self) -> list[Secret]:
        return [s for s in (self._password, self._passphrase) if s is not None]

    def _where(self) -> str:
        return f"{self.username}@{self.address}:{self.port}"

    def remember_host_key(self, hostname: str, key: paramiko.PKey) -> None:
        """Append one known_hosts line (never rewrite the file: it may hold
        hashed entries and comments paramiko would not keep)."""
        line = paramiko.hostkeys.HostKeyEntry([hostname], key).to_line()
        assert line is not None  # None only for an entry without a name or a key
        try:
            self.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="ascii") as f:
                f.write(line)
        except OSError as exc:
            raise TransportError(
                f"{self.name}: cannot record the host key in {self.known_hosts}: {exc.strerror}"
            ) from None

    def _transport(self) -> paramiko.Transport:
        with self._lock:
            if self._client is not None:
                t = self._client.get_transport()
                if t is not None and t.is_active():
                    return t
                self.close()
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(_HostKeyPolicy(self))
            try:
                if self.known_hosts.exists():
                    client.load_host_keys(str(self.known_hosts))
                client.connect(
                    hostname=self.address,
                    port=self.port,
                    username=self.username,
                    password=self._password.reveal() if self._password else None,
                    key_filename=str(self.key_file) if self.key_file else None,
                    passphrase=self._passphrase.reveal() if self._passphrase else None,
                    timeout=self.connect_timeout,
                    banner_timeout=self.connect_timeout,
                    auth_timeout=self.connect_timeout,
                    look_for_keys=False,
                    allow_agent=False,
                )
            except BaseException as exc:
                client.close()
                wrapped = self._connect_error(exc)
                if wrapped is exc:
                    raise  # ours already, or not a connection problem: keep its traceback
                raise wrapped from None
            self._client = client
            t = client.get_transport()
            assert t is not None  # connect() succeeded
            t.set_keepalive(30)
            _no_delay(t)
            return t

    def _connect_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, TransportError):
            return exc
        if isinstance(exc, paramiko.BadHostKeyException):
            return HostKeyError(
                f"{self.name}: host key of {self.address}:{self.port} does not match "
                f"{self.known_hosts}: server offers {exc.key.get_name()} {exc.key.fingerprint}, "
                f"known_hosts has {exc.expected_key.get_name()} {exc.expected_key.fingerprint}",
                hint=(
                    "refused: this can be an attack. If the host was reinstalled, check the new "
                    "fingerprint out of band, then remove the old line with `ssh-keygen -R "
                    f"'{_known_hosts_name(self.address, self.port)}' -f {self.known_hosts}`"
                ),
            )
        if isinstance(exc, paramiko.PasswordRequiredException):
            return TransportError(
                f"{self.name}: key file {self.key_file} is encrypted and no passphrase was given"
            )
        if isinstance(exc, paramiko.AuthenticationException):
            how = f"key {self.key_file}" if self.key_file else "password"
            return TransportError(
                f"{self.name}: authentication as {self._where()} with {how} failed",
                hint="check the credentials this host's transport refers to",
            )
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
            # its own text reads "[Errno None] Unable to connect to port 22 on ...":
            # the reason per address is what the operator needs
            reasons = sorted({_reason(e) for e in exc.errors.values()})
            return TransportError(
                f"{self.name}: cannot connect to {self._where()}: "
                f"{'; '.join(reasons) or 'no address answered'}"
            )
        if isinstance(exc, paramiko.SSHException | OSError | EOFError | ValueError):
            detail = mask_in(str(exc) or type(exc).__name__, self._secrets)
            return TransportError(f"{self.name}: cannot connect to {self._where()}: {detail}")
        return exc

    def _wrap(self, what: str, exc: BaseException) -> TransportError:
        detail = mask_in(str(exc) or type(exc).__name__, self._secrets)
        return TransportError(f"{self.name}: {what}: {detail}")

    def close(self) -> None:
        with self._lock:
            if self._sftp is not None:
                # the connection is going anyway
                with contextlib.suppress(OSError, paramiko.SSHException):
                    self._sftp.close()
                self._sftp = None
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- commands ---------------------------------------------------------

    def _exec(
        self, command: ShCommand, timeout: float, stdin: bytes | None = None
    ) -> tuple[int, bytes, bytes]:
        masked = command.masked()
        t = self._transport()
        try:
            chan = t.open_session(timeout=self.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise self._wrap(f"cannot open a session for `{masked}`", exc) from None
        out, err = bytearray(), bytearray()
        try:
            chan.exec_command(command.render())
            if stdin is not None:
                chan.sendall(stdin)
                chan.shutdown_write()
            deadline = time.monotonic() + timeout
            idle = 0.001
            while True:
                got = False
                while chan.recv_ready():
                    out += chan.recv(65536)
                    got = True
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                    got = True
                if (
                    not got
                    and chan.exit_status_ready()
                    and (chan.eof_received or chan.closed)
                    and not chan.recv_ready()
                    and not chan.recv_stderr_ready()
                ):
                    break
                if time.monotonic() > deadline:
                    raise TransportError(
                        f"{self.name}: `{masked}` did not finish within {timeout:g} s"
                    )
                idle = 0.001 if got else min(idle * 2, 0.05)
                if not got:
                    time.sleep(idle)
            return chan.recv_exit_status(), bytes(out), bytes(err)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise self._wrap(f"`{masked}` failed", exc) from None
        finally:
            chan.close()

    def run(
        self, command: ShCommand | PsScript, *, timeout: float = 120.0, check: bool = True
    ) -> CommandResult:
        if isinstance(command, PsScript):
            raise TransportError(f"{self.name}: a PowerShell script cannot run on a Linux host")
        status, out, err = self._exec(command, timeout)
        secrets = self._secrets + secrets_in(command.argv)
        result = CommandResult(
            exit_status=status,
            stdout=mask_in(out.decode("utf-8", "replace"), secrets),
            stderr=mask_in(err.decode("utf-8", "replace"), secrets),
            command=command.masked(),
        )
        if check and not result.ok:
            raise CommandFailed(self.name, result.command, status, result.stderr)
        return result

    # -- files ------------------------------------------------------------

    def _sftp_client(self) -> paramiko.SFTPClient | None:
        """The session's SFTP client, or None when the server has none."""
        with self._lock:
            if self._sftp_missing:
                return None
            t = self._transport()
            if self._sftp is None or self._sftp.get_channel() is None:
                try:
                    self._sftp = paramiko.SFTPClient.from_transport(t)
                except paramiko.SSHException:
                    self._sftp_missing = True
                    return None
            return self._sftp

    def _sh_bytes(self, script: str, *args: str, stdin: bytes | None = None) -> bytes:
        cmd = ShCommand.of("sh", "-c", script, "sh", *args)
        status, out, err = self._exec(cmd, 120.0, stdin)
        if status != 0:
            raise CommandFailed(self.name, cmd.masked(), status, err.decode("utf-8", "replace"))
        return out

    def read_file(self, path: str) -> bytes:
        sftp = self._sftp_client()
        if sftp is None:
            return self._sh_bytes('exec cat -- "$1"', path)
        try:
            with self._lock, sftp.open(path, "rb") as f:
                f.prefetch()
                return f.read()
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise self._wrap(f"cannot read {path}", exc) from None

    def write_file(self, path: str, data: bytes, *, backup_suffix: str | None = None) -> str | None:
        backup = None
        if backup_suffix:
            copied = self._sh_bytes(
                'if [ -e "$1" ]; then cp -p -- "$1" "$2" && echo copied; fi',
                path,
                path + backup_suffix,
            )
            backup = path + backup_suffix if copied.strip() == b"copied" else None
        sftp = self._sftp_client()
        if sftp is None:
            # the shell's `>` opens with O_TRUNC: same inode, no rename
            self._sh_bytes('cat > "$1"', path, stdin=data)
            return backup
        try:
            with self._lock:
                try:
                    f = sftp.open(path, "r+b")  # no O_TRUNC yet: new bytes go over old
                except FileNotFoundError:
                    f = sftp.open(path, "wb")
                with f:
                    f.write(data)
                    f.truncate(len(data))
        except OSError as exc:
            if exc.errno is not None:
                raise self._wrap(f"cannot write {path}", exc) from None
            # SFTP's generic "Failure" hides the reason (a read-only mount, a full
            # disk): the shell's own write says it, and succeeds where SFTP
            # failed for a reason of its own
            self._write_by_shell(path, data)
        except (paramiko.SSHException, EOFError) as exc:
            raise self._wrap(f"cannot write {path}", exc) from None
        return backup

    def remove_file(self, path: str) -> bool:
        out = self._sh_bytes(_REMOVE_SCRIPT, path)
        return out.strip() in (b"removed", b"emptied")

    def _write_by_shell(self, path: str, data: bytes) -> None:
        cmd = ShCommand.of("sh", "-c", 'cat > "$1"', "sh", path)
        status, _, err = self._exec(cmd, 120.0, data)
        if status != 0:
            reason = err.decode("utf-8", "replace").strip().splitlines()
            text = reason[-1] if reason else f"exit status {status}"
            raise TransportError(
                f"{self.name}: cannot write {path}: {text.removeprefix('sh: 1: ')}"
            )

    # -- network ----------------------------------------------------------

    def connect_tcp(self, address: str, port: int, timeout: float = 5.0) -> paramiko.Channel:
        t = self._transport()
        try:
            chan = t.open_channel(
                "direct-tcpip", (address, port), ("127.0.0.1", 0), timeout=timeout
            )
        except paramiko.ChannelException as exc:
            raise TransportError(
                f"{self.name}: TCP connection from {self.name} to {address}:{port} "
                f"failed: {exc.text}"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise self._wrap(f"TCP connection to {address}:{port} failed", exc) from None
        chan.settimeout(timeout)
        return chan
