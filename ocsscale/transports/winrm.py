"""WinRM transport: drive a Windows host with PowerShell over WS-Management (pywinrm).

HTTPS with certificate validation is the default (`ca_bundle` names the CA
file to trust, else the system store); over plain HTTP, NTLM (and Kerberos,
CredSSP) messages are encrypted as pywinrm does it, and Basic is refused
because it would send the password in clear. Every operation is one of the
scripts in `templates/powershell/` (see winrm_scripts.py), run in a shell that
lives for that operation only.

Windows cannot hand over a raw TCP stream through WinRM, so `connect_tcp`
raises; `tcp_check` answers whether a connection from the host succeeds, and
probes that need a stream run from the admin host towards the address the
client resolved.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import requests
import spnego.exceptions
import winrm.exceptions
from winrm.protocol import Protocol

from ..errors import CommandFailed, TransportError
from ..secrets import Secret, mask_in
from .base import CommandResult, OsKind, Stream
from .commands import PsScript, ShCommand, secrets_in
from .winrm_scripts import (
    ERROR_PREFIX,
    POWERSHELL_1_OPERATIONS,
    ScriptOutputError,
    decode_clixml,
    operation_script,
    parse_result,
    plan_script,
    result_string_list,
)
from .winrm_windows import DEFAULT_HOSTS_FILE, WindowsReads

AuthKind = Literal["ntlm", "kerberos", "basic", "credssp"]
WINDOWS_HOSTS_FILE = DEFAULT_HOSTS_FILE
UTF8_CODEPAGE = 65001
_NOT_FOUND_STATUSES = {"HostNotFound", "NoData"}


class WinRMHost(WindowsReads):
    """A Windows host driven over WinRM; see the module docstring (and WindowsReads
    for what it reads beyond the Host interface)."""

    os: OsKind = "windows"

    def __init__(
        self,
        name: str,
        address: str,
        *,
        port: int = 5986,
        scheme: Literal["https", "http"] = "https",
        auth: AuthKind = "ntlm",
        username: str,
        password: Secret,
        ca_bundle: str | None = None,
        verify_tls: bool = True,
        hosts_file: str | None = None,
        services_timeout: float = 120.0,  # to stop, and again to start, each service
        operation_timeout: int = 20,
    ) -> None:
        if scheme not in ("https", "http"):
            raise TransportError(f"{name}: WinRM scheme must be https or http, not {scheme!r}")
        if auth not in ("ntlm", "kerberos", "basic", "credssp"):
            raise TransportError(f"{name}: unknown WinRM authentication {auth!r}")
        if auth == "basic" and scheme == "http":
            raise TransportError(
                f"{name}: Basic authentication over plain HTTP would send the password in clear;"
                " use https, or ntlm/kerberos (their messages are encrypted over http)"
            )
        self.name = name
        #: what the endpoint names: the FQDN or the address (factory.winrm_target)
        self.address = address
        self.port = port
        self.scheme = scheme
        self.auth = auth
        self.username = username
        self._password = password
        self.ca_bundle = ca_bundle
        self.verify_tls = verify_tls
        #: the pool file's hosts_file, else read from the registry on first use
        self._hosts_file = hosts_file
        self.services_timeout = services_timeout
        self.operation_timeout = operation_timeout
        self._protocol: Protocol | None = None
        #: one remote shell for the run, opened on first use (see _shell)
        self._shell_id: str | None = None
        # One operation at a time: NTLM sealing numbers messages on the shared session.
        self._lock = threading.Lock()

    @property
    def hosts_file(self) -> str:
        """The hosts file's path: the pool file's `hosts_file`, else where the host's
        registry says (Tcpip DataBasePath, read once)."""
        if self._hosts_file is None:
            self._hosts_file = self.registry_hosts_file()
        return self._hosts_file

    @property
    def endpoint(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{host}:{self.port}/wsman"

    @property
    def _at(self) -> str:
        """How messages name the endpoint: 'WinRM at ADDRESS:PORT'."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"WinRM at {host}:{self.port}"

    def __repr__(self) -> str:
        return f"WinRMHost({self.name!r}, {self.endpoint!r}, auth={self.auth!r})"

    # -- the Host interface -------------------------------------------------

    def run(
        self, command: ShCommand | PsScript, *, timeout: float = 120.0, check: bool = True
    ) -> CommandResult:
        if not isinstance(command, PsScript):
            raise TransportError(
                f"{self.name}: a Windows host over WinRM runs PowerShell (PsScript),"
                f" not a POSIX shell command: {command}"
            )
        secrets = [self._password, *secrets_in(command.params)]
        exit_status, stdout, stderr = self._execute(command, timeout)
        result = CommandResult(
            exit_status=exit_status,
            stdout=mask_in(stdout, secrets),
            stderr=mask_in(stderr, secrets),
            command=command.masked(),
        )
        if check and not result.ok:
            raise CommandFailed(self.name, _first_line(command), exit_status, result.stderr)
        return result

    def read_file(self, path: str) -> bytes:
        result = self._operation("read_file", f"read {path}", Path=path)
        try:
            data = base64.b64decode(str(result["data"]), validate=True)
        except (KeyError, ValueError) as exc:
            raise TransportError(f"{self.name}: unreadable answer reading {path}: {exc}") from None
        if len(data) != result.get("length"):
            raise TransportError(f"{self.name}: {path} arrived truncated")
        return data

    def write_file(self, path: str, data: bytes, *, backup_suffix: str | None = None) -> str | None:
        result = self._operation(
            "write_file",
            f"write {path}",
            Path=path,
            Data=base64.b64encode(data).decode("ascii"),
            BackupSuffix=backup_suffix or "",
        )
        expected = hashlib.sha256(data).hexdigest().upper()
        if str(result.get("sha256", "")).upper() != expected:
            raise TransportError(
                f"{self.name}: {path} does not hold the bytes written (SHA-256 differs after write)"
            )
        backup = result.get("backup")
        return backup if isinstance(backup, str) and backup else None

    def remove_file(self, path: str) -> bool:
        result = self._operation("remove_file", f"remove {path}", Path=path)
        return result.get("removed") is True

    def resolve(self, name: str) -> list[str]:
        result = self._operation("resolve", f"resolve {name}", Name=name)
        status = str(result.get("status", ""))
        if status in _NOT_FOUND_STATUSES:
            return []
        if status != "Success":
            raise TransportError(f"{self.name}: resolving {name} failed: {status}")
        try:
            return result_string_list(result, "addresses")
        except ScriptOutputError as exc:
            raise TransportError(
                f"{self.name}: unreadable answer resolving {name}: {exc}"
            ) from None

    def tcp_check(self, address: str, port: int, timeout: float = 5.0) -> bool:
        """Whether a TCP connection from this host to address:port succeeds."""
        return self.tcp_checks(address, [port], timeout)[int(port)][0]

    def tcp_checks(
        self, address: str, ports: list[int], timeout: float = 5.0
    ) -> dict[int, tuple[bool, str]]:
        """tcp_check of several ports in one script: port -> (connected, the host's reason)."""
        wanted = [int(p) for p in ports]
        result = self._operation(
            "tcp_checks",
            f"TCP check {address}:{','.join(map(str, wanted))}",
            timeout=60.0 + timeout * len(wanted),  # one after the other on the host
            Address=address,
            Ports=",".join(map(str, wanted)),
            TimeoutMs=str(max(1, int(timeout * 1000))),
        )
        found: dict[int, tuple[bool, str]] = {}
        items = result.get("results")
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            port, connected, reason = item.get("port"), item.get("connected"), item.get("reason")
            if isinstance(port, int) and isinstance(connected, bool):
                found[port] = (connected, str(reason or ""))
        if sorted(found) != sorted(set(wanted)):
            raise TransportError(f"{self.name}: unreadable answer from the TCP checks")
        return found

    def connect_tcp(self, address: str, port: int, timeout: float = 5.0) -> Stream:
        raise TransportError(
            f"{self.name}: WinRM cannot carry a TCP stream from a Windows host to"
            f" {address}:{port}; use tcp_check() on the host, and run stream probes from"
            " the admin host towards the address the host resolved"
        )

    def flush_dns(self) -> None:
        self._operation("flush_dns", "flush the DNS client cache")

    def close(self) -> None:
        self._drop_shell()
        if self._protocol is not None:
            with contextlib.suppress(Exception):
                self._protocol.transport.close_session()
            self._protocol = None

    # -- internals ------------------------------------------------------------

    def _operation(
        self, operation: str, what: str, *, timeout: float = 120.0, **params: str
    ) -> dict[str, Any]:
        script = operation_script(operation, **params)
        exit_status, stdout, stderr = self._execute(
            script, timeout, powershell_1=operation in POWERSHELL_1_OPERATIONS
        )
        if exit_status != 0:
            message = stderr.strip()
            if message.startswith(ERROR_PREFIX):
                message = message[len(ERROR_PREFIX) :]
            message = mask_in(message, [self._password])
            raise CommandFailed(self.name, what, exit_status, message or "(no error text)")
        try:
            return parse_result(stdout)
        except ScriptOutputError as exc:
            raise TransportError(f"{self.name}: {what}: unexpected script output: {exc}") from None

    def _execute(
        self, script: PsScript, timeout: float, *, powershell_1: bool = False
    ) -> tuple[int, str, str]:
        plan = plan_script(script.render(), powershell_1=powershell_1)
        deadline = time.monotonic() + timeout
        with self._lock, self._library_errors(_first_line(script)):
            reused = self._shell_id is not None
            try:
                return self._execute_in(self._shell(), plan, deadline)
            except _StaleShell:
                if not reused:
                    raise TransportError(f"{self.name}: the remote shell was lost") from None
            # the host forgot the shell kept from earlier steps (its idle timeout, a
            # WinRM restart) before this script started: once more, in a new shell
            return self._execute_in(self._shell(), plan, deadline)

    def _execute_in(self, shell_id: str, plan: Any, deadline: float) -> tuple[int, str, str]:
        started = False
        try:
            for index, command in enumerate(plan.commands):
                last = index == len(plan.commands) - 1
                started = last  # the script itself: its upload is not removed under it
                code, out, err = self._run_in_shell(shell_id, command, deadline, first=index == 0)
                if not last and code != 0:
                    raise TransportError(
                        f"{self.name}: uploading a long script failed: {decode_clixml(err)}"
                    )
        except _StaleShell:
            self._drop_shell()
            raise
        except BaseException:
            # a shell that saw a failure may be in any state: the next script gets a new one
            cleanup = plan.cleanup_command()
            if cleanup and not started:
                with contextlib.suppress(Exception):
                    self._run_in_shell(shell_id, cleanup, time.monotonic() + 30)
            self._drop_shell()
            raise
        return code, out, decode_clixml(err)

    def _run_in_shell(
        self, shell_id: str, command: str, deadline: float, *, first: bool = False
    ) -> tuple[int, str, str]:
        protocol = self._connect()
        try:
            command_id = protocol.run_command(shell_id, command)
        except winrm.exceptions.WSManFaultError as exc:
            if first and "shell was not found" in str(exc.reason or ""):
                raise _StaleShell from None  # nothing ran: safe to start over
            raise
        stdout: list[bytes] = []
        stderr: list[bytes] = []
        try:
            while True:
                if time.monotonic() > deadline:
                    raise TransportError(f"{self.name}: command did not finish in time")
                try:
                    out, err, code, done = protocol.get_command_output_raw(shell_id, command_id)
                except winrm.exceptions.WinRMOperationTimeoutError:
                    continue  # the host is still working: WS-Man says so by timing out Receive
                stdout.append(out)
                stderr.append(err)
                if done:
                    break
        finally:
            with contextlib.suppress(Exception):
                protocol.cleanup_command(shell_id, command_id)
        return (
            code,
            b"".join(stdout).decode("utf-8", errors="replace"),
            b"".join(stderr).decode("utf-8", errors="replace"),
        )

    def _shell(self) -> str:
        """The host's remote shell, opened once and kept for the steps of a run:
        opening and closing one per script costs two more round trips (and, on
        an NTLM session, two more sealed messages) per operation."""
        if self._shell_id is None:
            self._shell_id = self._connect().open_shell(codepage=UTF8_CODEPAGE, noprofile=True)
        return self._shell_id

    def _drop_shell(self) -> None:
        shell_id, self._shell_id = self._shell_id, None
        if shell_id is not None and self._protocol is not None:
            with contextlib.suppress(Exception):
                self._protocol.close_shell(shell_id, close_session=False)

    def _connect(self) -> Protocol:
        if self._protocol is None:
            self._protocol = Protocol(
                self.endpoint,
                transport=self.auth,
                username=self.username,
                password=self._password.reveal(),
                server_cert_validation="validate" if self.verify_tls else "ignore",
                ca_trust_path=self.ca_bundle,  # type: ignore[arg-type]  # None: system store
                operation_timeout_sec=self.operation_timeout,
                read_timeout_sec=self.operation_timeout + 10,
                message_encryption="auto",
                proxy=None,  # never route credentials through a proxy from the environment
            )
        return self._protocol

    @contextlib.contextmanager
    def _library_errors(self, what: str) -> Iterator[None]:
        """Library exceptions become TransportError with a message free of secrets."""
        try:
            yield
        except TransportError:
            raise
        except winrm.exceptions.InvalidCredentialsError:
            self.close()
            raise TransportError(
                f"{self.name}: {self.endpoint} rejected the credentials of {self.username}"
                f" ({self.auth} authentication)"
            ) from None
        except winrm.exceptions.WSManFaultError as exc:
            raise TransportError(
                f"{self.name}: WS-Management fault from {self.endpoint}: {exc.reason}"
                f" (code {exc.wsman_fault_code or exc.fault_subcode or exc.code})"
            ) from None
        except requests.exceptions.SSLError as exc:
            self.close()
            raise TransportError(
                f"{self.name}: TLS with {self._at} failed (certificate not trusted or"
                f" name mismatch; ca_bundle={self.ca_bundle or 'system store'}): {_tls_reason(exc)}"
            ) from None
        except requests.exceptions.Timeout:
            self.close()
            raise TransportError(f"{self.name}: {self._at} did not answer in time") from None
        except requests.exceptions.ConnectionError as exc:
            # requests wraps urllib3 wrapping the socket error: say what the socket said
            self.close()
            raise TransportError(f"{self.name}: {self._at} {_connect_failure(exc)}") from None
        except (
            winrm.exceptions.WinRMError,
            winrm.exceptions.WinRMTransportError,
            requests.exceptions.RequestException,
            spnego.exceptions.SpnegoError,
            OSError,
        ) as exc:
            self.close()
            text = mask_in(_short(exc), [self._password])
            raise TransportError(
                f"{self.name}: WinRM to {self.endpoint} failed ({what}): {text}"
            ) from None


class _StaleShell(Exception):
    """The host no longer knows the kept shell, and no command of the script ran."""


def _first_line(script: PsScript) -> str:
    """A short name for a script in messages: its marker or first body line."""
    for line in script.body.splitlines():
        if line.strip():
            return line.strip()[:120]
    return "(empty script)"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it wraps (causes, contexts, urllib3's `reason`, and
    exceptions carried in args), outermost first."""
    seen: set[int] = set()
    queue: list[BaseException | None] = [exc]
    while queue:
        item = queue.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        queue += [item.__cause__, item.__context__, getattr(item, "reason", None)]
        queue += [a for a in getattr(item, "args", ()) if isinstance(a, BaseException)]


def _connect_failure(exc: BaseException) -> str:
    """What went wrong connecting, from the socket error at the bottom."""
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return "cannot be found (the address does not resolve)"
        if isinstance(cause, TimeoutError | socket.timeout):
            return "did not answer in time"
        if isinstance(cause, OSError) and cause.errno is not None:
            if cause.errno == errno.ECONNREFUSED:
                return "refused the connection"
            if cause.errno == errno.ETIMEDOUT:
                return "did not answer in time"
            return f"cannot be reached: {os.strerror(cause.errno)}"
    return "cannot be reached"


def _tls_reason(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError):
            return str(getattr(cause, "verify_message", None) or cause.reason or cause)
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."
