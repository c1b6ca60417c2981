"""What the probe actions and the front-end gate share: where a probe runs from,
which probe a profile port gets, the TLS settings, and who answered.

No action is registered here. A probe "from" a host runs over that host's
transport: an SSH host opens the TCP connection itself (a direct-tcpip
channel, so the server sees the host's own source address), the admin host
uses a plain socket, and a Windows host over WinRM, which cannot carry a
stream, checks the TCP connection itself (`tcp_check`) while the application
probe runs from the admin host towards the address that host resolved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TransportError, UsageError
from ..probes import (
    ConnectError,
    Connector,
    ProbeEvidence,
    TlsOptions,
    https_get_probe,
    sip_options_probe,
    socket_connector,
    tcp_probe,
    tls_probe,
)
from ..transports.base import Host
from ..transports.factory import ADMIN_HOST
from .args import plain_address

DEFAULT_TIMEOUT = 5.0
#: how long a plain port may take to send its banner (real servers send none)
BANNER_WAIT = 1.0


def known_host(pool: Any, name: str, action: str) -> Any:
    """The pool file's spec for `name` ("admin" has none: None)."""
    try:
        return pool.host(name)
    except KeyError:
        if name == ADMIN_HOST:
            return None
        raise UsageError(f"{action}: no host named '{name}' in the pool file") from None


# -- TLS ----------------------------------------------------------------------


def ca_bundle(ctx: Any) -> str | None:
    """The CA file probes trust: `pool.ca_bundle` (relative to the pool file),
    else None, which means the system store."""
    bundle = ctx.pool.pool.ca_bundle
    if not bundle:
        return None
    base = (ctx.pool_path or Path(".")).resolve().parent
    path = Path(bundle).expanduser()
    return str(path if path.is_absolute() else base / path)


def legacy_tls_for(pool: Any, address: str) -> bool:
    """Whether probes to `address` accept TLS 1.0 and SHA-1 (`legacy_tls` in the
    pool file): a pool server's own address when that server is marked, the VIP
    when any front end behind it is (the farm passes TLS through untouched)."""
    legacy = pool.legacy_tls_servers()
    if not legacy:
        return False
    address = plain_address(address)
    if address == str(pool.load_balancer.vip.ip):
        front_ends = {fe.name for fe in pool.front_ends}
        return any(server.name in front_ends for server in legacy)
    return any(str(server.address) == address for server in legacy)


def tls_options(ctx: Any, address: str) -> TlsOptions:
    """How a probe to `address` does TLS: verified against the pool's CA, and
    TLS 1.0/SHA-1 allowed only for the servers the pool file marks legacy_tls."""
    # subject-or-san: the walkthrough's certificate names the pool FQDN only as
    # its subject CN, which is how OCS clients match it
    return TlsOptions(
        verify=True,
        ca_bundle=ca_bundle(ctx),
        name_check="subject-or-san",
        legacy_tls=legacy_tls_for(ctx.pool, address),
    )


# -- where a probe runs from --------------------------------------------------


@dataclass
class Vantage:
    """A host a probe runs from, and how streams are opened from it."""

    name: str
    os: str
    host: Host
    #: None when the host cannot hand over a stream (Windows over WinRM)
    connect: Connector | None

    @property
    def streams(self) -> bool:
        return self.connect is not None

    def tcp_check(self, address: str, port: int, timeout: float) -> tuple[bool, str]:
        """Whether a TCP connection from this host succeeds, and why not."""
        check: Callable[[str, int, float], bool] | None = getattr(self.host, "tcp_check", None)
        if self.connect is None and check is not None:
            ok = check(address, port, timeout)
            return ok, "" if ok else "refused, filtered or unreachable (Test-NetConnection)"
        evidence = tcp_probe(
            address, port, connect=self._connector(), timeout=timeout, source=self.name
        )
        return evidence.ok, evidence.detail

    def tcp_checks(
        self, address: str, ports: list[int], timeout: float
    ) -> dict[int, tuple[bool, str]]:
        """tcp_check of several ports; a Windows host checks them all in one script."""
        many = getattr(self.host, "tcp_checks", None)
        if self.connect is None and many is not None and ports:
            found: dict[int, tuple[bool, str]] = many(address, ports, timeout)
            return {
                port: (ok, "" if ok else f"refused, filtered or unreachable ({why or 'no reason'})")
                for port, (ok, why) in found.items()
            }
        return {port: self.tcp_check(address, port, timeout) for port in ports}

    def _connector(self) -> Connector:
        if self.connect is None:
            raise TransportError(f"{self.name}: cannot open a TCP stream from this host")
        return self.connect


def vantage(ctx: Any, name: str) -> Vantage:
    host = ctx.host(name)
    if name == ADMIN_HOST or type(host).__name__ == "LocalHost":
        return Vantage(name, host.os, host, socket_connector)
    if getattr(host, "tcp_check", None) is not None and host.os == "windows":
        return Vantage(name, host.os, host, None)
    return Vantage(name, host.os, host, host_connector(host))


def host_connector(host: Host) -> Connector:
    def connect(address: str, port: int, timeout: float) -> Any:
        try:
            return host.connect_tcp(address, port, timeout)
        except TransportError as exc:
            # probes classify OSError as "the network said no"
            raise ConnectError(exc.message) from None

    return connect


# -- one profile port ---------------------------------------------------------


def port_kind(profile: Any, port: int) -> str:
    """Which probe a profile port gets: sip-tls, sip-tcp, https, tls or banner."""
    if port == profile.sip_ports.tls:
        return "sip-tls"
    if port == profile.sip_ports.tcp:
        return "sip-tcp"
    if port in profile.https_ports:
        return "https"
    if port in profile.tls_ports:
        return "tls"
    return "banner"


def probe_port(
    profile: Any,
    address: str,
    port: int,
    presented_name: str,
    *,
    tls: TlsOptions,
    connect: Connector = socket_connector,
    timeout: float = DEFAULT_TIMEOUT,
    source: str | None = None,
) -> ProbeEvidence:
    """The application probe a port deserves, presenting `presented_name`."""
    kind = port_kind(profile, port)
    common: dict[str, Any] = {"connect": connect, "timeout": timeout, "source": source}
    if kind == "sip-tls":
        return sip_options_probe(address, port, presented_name, transport="tls", tls=tls, **common)
    if kind == "sip-tcp":
        return sip_options_probe(address, port, presented_name, transport="tcp", **common)
    if kind == "https":
        return https_get_probe(address, port, presented_name, tls=tls, **common)
    if kind == "tls":
        return tls_probe(address, port, presented_name, tls=tls, **common)
    return tcp_probe(
        address, port, presented_name=presented_name, banner_wait=BANNER_WAIT, **common
    )


# -- who answered ---------------------------------------------------------------


def pool_server_names(pool: Any) -> dict[str, str]:
    """Every name a pool server may call itself (short name, FQDN) -> its host name."""
    names: dict[str, str] = {}
    for spec in [pool.legacy_fe, *pool.front_ends]:
        names[spec.name.lower()] = spec.name
        names[spec.fqdn.lower().rstrip(".")] = spec.name
    return names


def answered_by(evidence: ProbeEvidence, pool: Any) -> str | None:
    """The pool server that named itself in the answer, or None when the answer
    named no pool server (a real OCS says `Server: RTC/3.5`, not its name)."""
    if not evidence.server:
        return None
    return pool_server_names(pool).get(evidence.server.strip().lower().rstrip("."))


def certificate_owner(evidence: ProbeEvidence, pool: Any) -> str | None:
    """The one pool server whose FQDN the certificate's SANs name, or None.

    The walkthrough's certificates carry the FE's own FQDN as a SAN, so on a
    real OCS (whose answers name the product, not the server) the certificate
    still tells which server answered. None when no pool server or several
    are named (a shared certificate proves nothing)."""
    if evidence.certificate is None:
        return None
    fqdns = {
        spec.fqdn.lower().rstrip("."): spec.name for spec in [pool.legacy_fe, *pool.front_ends]
    }
    owners = {
        fqdns[n]
        for n in (s.lower().rstrip(".") for s in evidence.certificate.san_dns)
        if n in fqdns
    }
    return owners.pop() if len(owners) == 1 else None
