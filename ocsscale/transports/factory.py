"""From a host in the pool file to a connected `Host`.

Credentials are resolved here, never when the pool file is loaded, so `check`
and `plan` never need a secret. A run, dry run or rollback first calls
`check_credentials` for every host it will touch, so a missing environment
variable or unreadable secret file stops it before any host is changed.
`HostPool` is what the runner hands actions as `Context.host`: it connects
lazily by host name, keeps each connection for the run and closes them all
at the end.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..config.model import HostSpec, LocalTransport, SshTransport, WinRmTransport
from ..errors import OcsscaleError, SecretError, UsageError
from ..registry import Registry
from .base import Host
from .local import LocalHost
from .posix import DEFAULT_SERVICE_COMMAND, PosixHostMixin
from .ssh import SSHHost

if TYPE_CHECKING:
    from ..config.credentials import ResolvedCredential
    from ..config.loader import LoadedPool

#: the admin machine the tool runs on; reachable without any pool-file entry
ADMIN_HOST = "admin"


def _path(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


_Posix = TypeVar("_Posix", bound=PosixHostMixin)

#: how the credential of a host that logs in is got: called only by the transports
#: that log in (the pool file's, or the one the journal recorded)
CredentialSource = Callable[[], "ResolvedCredential"]

#: the pool file's `transport.kind` -> how a host is reached with it, built from the
#: transport's own settings, the host, the pool file's directory (relative paths)
#: and its credential. Registered below, not discovered: pywinrm is imported only
#: when a WinRM host is connected. Transports declare no capabilities (None).
TRANSPORTS: Registry[[HostSpec, Path, CredentialSource], Host, None] = Registry("transport")


def _with_controls(host: _Posix, control: str | None) -> _Posix:
    """The pool file's command to start, stop, enable or disable one service."""
    host.service_control = control
    return host


def _local(t: LocalTransport, spec: HostSpec, base_dir: Path, _: CredentialSource) -> Host:
    host = LocalHost(spec.name, service_command=t.service_command, hosts_file=t.hosts_file)
    return _with_controls(host, t.service_control)


def _ssh(t: SshTransport, spec: HostSpec, base_dir: Path, credential: CredentialSource) -> Host:
    if spec.os != "linux":
        raise UsageError(
            f"host {spec.name}: the ssh transport drives Linux hosts; use winrm for Windows"
        )
    cred = credential()
    host = SSHHost(
        spec.name,
        str(spec.address),
        username=cred.username,
        port=t.port,
        password=cred.password,
        key_file=cred.key_file,
        passphrase=cred.passphrase,
        known_hosts=_path(t.known_hosts, base_dir),
        trust_unknown_host_keys=t.trust_unknown_host_keys,
        service_command=t.service_command or DEFAULT_SERVICE_COMMAND,
        hosts_file=t.hosts_file,
    )
    return _with_controls(host, t.service_control)


def _winrm(t: WinRmTransport, spec: HostSpec, base_dir: Path, credential: CredentialSource) -> Host:
    from .winrm import WinRMHost  # pywinrm is only imported when a host needs it

    cred = credential()
    assert cred.password is not None  # the credential check refuses WinRM without one
    return WinRMHost(
        spec.name,
        winrm_target(spec),
        port=t.port,
        scheme=t.scheme,
        auth=t.auth,
        username=cred.username,
        password=cred.password,
        ca_bundle=str(_path(t.ca_bundle, base_dir)) if t.ca_bundle else None,
        verify_tls=t.verify_tls,
        hosts_file=t.hosts_file,
    )


TRANSPORTS.add("local", LocalTransport, _local)
TRANSPORTS.add("ssh", SshTransport, _ssh)
TRANSPORTS.add("winrm", WinRmTransport, _winrm)


def connect(spec: HostSpec, loaded: LoadedPool) -> Host:
    """A Host for `spec` (an SSH or WinRM connection is made on first use)."""
    return connect_spec(spec, loaded.base_dir, lambda: _credential(spec, loaded))


def connect_spec(spec: HostSpec, base_dir: Path, credential: CredentialSource) -> Host:
    """A Host for `spec` whose relative paths are read from `base_dir`; the
    credential is resolved by `credential()` only for transports that log in
    (the pool file's, or the one the journal recorded)."""
    kind = spec.transport.kind
    if kind not in TRANSPORTS.names():
        raise UsageError(f"host {spec.name}: unknown transport kind {kind!r}")
    return TRANSPORTS.build(kind, spec.transport, spec, base_dir, credential)


def winrm_target(spec: HostSpec) -> str:
    """The name WinRM connects to: the FQDN (default), which a Windows host's
    certificate names and Kerberos needs, or the address (`connect_to: address`, or
    a host whose entry has no fqdn)."""
    wants = getattr(spec.transport, "connect_to", None) or "fqdn"
    return spec.fqdn if wants == "fqdn" and spec.fqdn else str(spec.address)


def _credential(spec: HostSpec, loaded: LoadedPool) -> ResolvedCredential:
    """Resolve the credential `spec`'s transport refers to (SecretError when it
    cannot be: an unset variable, an unreadable file, a missing key file)."""
    from ..config.credentials import resolve  # config imports nothing from here

    t: Any = spec.transport
    cred = resolve(loaded, t.credentials)
    needs_password(spec.name, t.kind, t.credentials, cred)
    return cred


def needs_password(name: str, kind: str, cred_name: str, cred: ResolvedCredential) -> None:
    """WinRM logs in with a password only: refuse a credential without one."""
    if kind == "winrm" and cred.password is None:
        raise SecretError(f"host {name}: WinRM needs a password in credential '{cred_name}'")


def check_credentials(loaded: LoadedPool, names: Iterable[str]) -> None:
    """Resolve now the credentials of every host in `names` that logs in with one,
    and raise one SecretError naming every problem. Called before a run touches
    anything: otherwise a host whose variable is unset would only fail when its
    first step comes, after other hosts were already changed. Names that are not
    hosts of the pool file (admin, lb) need no credential; a `dns:<zone>` target
    stands for the DNS provider, whose own secret (the TSIG key) is resolved
    here too (a Windows DNS server is a host of its own, checked like the others)."""
    problems: list[str] = []
    for name in sorted(set(names)):
        if name.startswith("dns:"):
            problems += _dns_provider_problems(loaded)
            continue
        try:
            spec = loaded.pool.host(name)
        except KeyError:
            continue
        if getattr(spec.transport, "credentials", None) is None:
            continue  # the local transport logs in to nothing
        try:
            _credential(spec, loaded)  # the resolved secrets are dropped at once
        except OcsscaleError as exc:
            problems.append(
                exc.message if exc.message.startswith("host ") else f"host {name}: {exc.message}"
            )
    if problems:
        raise SecretError(
            "; ".join(problems) + "; nothing was changed",
            hint="set the variables (or fix the files) the pool file's credentials name, "
            "then run again",
        )


def _dns_provider_problems(loaded: LoadedPool) -> list[str]:
    from ..config.credentials import resolve_ref

    tsig = getattr(loaded.pool.dns, "tsig", None)
    if tsig is None:
        return []
    try:
        resolve_ref(tsig.secret, loaded.base_dir)  # dropped at once, like the hosts'
    except OcsscaleError as exc:
        return [f"dns: TSIG key {tsig.name}: {exc.message}"]
    return []


def find_host_spec(loaded: LoadedPool, name: str) -> HostSpec:
    """The pool file's host called `name`, or a UsageError naming the choices."""
    pool = loaded.pool
    try:
        return pool.host(name)
    except KeyError:
        pass
    directory = getattr(pool, "directory", None)
    if directory is not None and directory.name == name:
        raise UsageError(
            f"host {name} is the directory server: the tool only checks that it can be "
            "reached and never logs in to it"
        )
    known = ", ".join(spec.name for _, spec in pool.all_hosts())
    raise UsageError(f"no host named '{name}' in {loaded.path} (hosts: {known})")


class HostPool:
    """Connected hosts by name, made on first use and kept until `close_all`.

    Callable, so it fits `Context.host`. Safe to use from several threads: a
    host is connected once even when two steps ask for it at the same time.
    """

    def __init__(
        self, loaded: LoadedPool, *, connector: Callable[[HostSpec, LoadedPool], Host] = connect
    ) -> None:
        self.loaded = loaded
        self._connector = connector
        self._hosts: dict[str, Host] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> Host:
        return self.get(name)

    def get(self, name: str) -> Host:
        with self._lock:
            host = self._hosts.get(name)
            if host is None:
                host = self._make(name)
                self._hosts[name] = host
            return host

    def _make(self, name: str) -> Host:
        if name == ADMIN_HOST:
            try:
                spec = self.loaded.pool.host(name)
            except KeyError:
                return LocalHost(ADMIN_HOST)
            return self._connector(spec, self.loaded)
        return self._connector(find_host_spec(self.loaded, name), self.loaded)

    @property
    def open_hosts(self) -> list[str]:
        with self._lock:
            return list(self._hosts)

    def close_all(self) -> None:
        """Close every host; one that fails to close does not keep the others open."""
        with self._lock:
            hosts, self._hosts = list(self._hosts.values()), {}
        for host in hosts:
            # closing is best effort at the end of a run
            with contextlib.suppress(Exception):
                host.close()

    def __enter__(self) -> HostPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_all()
