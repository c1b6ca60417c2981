"""The pool-member service: a stand-in for an OCS 2007 R2 front end, for the lab and tests.

It is not an OCS server. It opens every port of the profile on one address and
answers just enough for ocsscale's probes to talk to it for real:

- SIP ports (default 5061 and 5060): ``OPTIONS`` gets ``SIP/2.0 200 OK`` with
  ``Server: <name>``; other methods get 405. 5061 speaks TLS, 5060 plain TCP.
- HTTPS ports (default 443 and 444): ``GET /`` gets 200 with the server's name
  as the first body line and as the ``Server:`` header.
- Every other port: one banner line
  ``ocsscale-poolmember server=<name> port=<port> pool-resolved=<addrs>``, then
  it echoes what it receives.

Like the real service, it resolves the pool FQDN once, when it starts
(``getaddrinfo``, so ``/etc/hosts`` counts), and reports the result in every
answer (``X-Pool-Resolved:`` header, the banner, the HTTP body). A validation
that changes a hosts file but forgets to restart the service is thereby caught.
On a lab Windows front end, ``--hosts-file`` names the Windows stand-in's hosts
file, read first as Windows reads it (DNS only for a name it does not list).

Usage::

    python -m ocsscale_lab.poolmember --name ocsfe01 --listen 198.18.0.41 \\
        --ports 5061,5060,135,443,444,5065,5069,5071,5072,5073,5074,8404 \\
        --tls-ports 5061,443,444 --cert fe.pem --key fe-key.pem \\
        --pool-fqdn ocspool.contoso.com --pidfile fe.pid [--close 444]

It writes its pid file once every port listens (so the file's presence means
"ready") and removes it on SIGTERM or SIGINT, after closing every connection.
``--close PORT`` leaves a port closed (fault injection); ``--legacy-tls-only``
makes it speak TLS 1.0 only, like a Windows Server 2003 front end;
``--tls-3des-only`` TLS 1.0 with DES-CBC3-SHA only, like a 2003 front end without
the AES update (tls3des_server.py; an RSA certificate). Exit codes:
0 stopped cleanly, 1 could not start (the reason on stderr), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import sys
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocsscale_lab import tls3des_server
from ocsscale_lab.poolmember_protocols import Identity, serve_banner, serve_http, serve_sip

LOG = logging.getLogger("ocsscale.poolmember")
_HANDSHAKE_TIMEOUT = 10.0
_CLOSE_GRACE = 0.2  # seconds a stop lets connections close cleanly


@dataclass(frozen=True)
class PoolMemberConfig:
    name: str
    listen: str
    ports: tuple[int, ...]
    tls_ports: frozenset[int]
    sip_ports: frozenset[int]
    https_ports: frozenset[int]
    closed_ports: frozenset[int]
    pool_fqdn: str
    pidfile: Path
    cert: Path | None = None
    key: Path | None = None
    legacy_tls_only: bool = False
    #: TLS 1.0 with DES-CBC3-SHA only (a Windows Server 2003 FE without the AES update)
    tls_3des_only: bool = False
    verbose: bool = False
    #: a Windows hosts file, looked up before DNS (a lab Windows front end)
    hosts_file: Path | None = None


class StartupError(Exception):
    """The service cannot start; the message says why."""


def resolve_pool(pool_fqdn: str, hosts_file: Path | None = None) -> str:
    """The pool FQDN's addresses as this host sees them now, comma-separated."""
    if hosts_file is not None:
        from ocsscale_lab.winrm_host.sandbox import hosts_file_lookup

        try:
            pinned = hosts_file_lookup(hosts_file.read_bytes(), pool_fqdn)
        except OSError:
            pinned = []  # no hosts file yet: DNS alone, as on Windows
        if pinned:
            return ",".join(pinned)
    try:
        infos = socket.getaddrinfo(pool_fqdn, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return "unresolved"
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return ",".join(addresses) or "unresolved"


def server_tls_context(cert: Path, key: Path, legacy_only: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if legacy_only:
        with warnings.catch_warnings():
            # TLSVersion.TLSv1 is deprecated; speaking only it is this switch's purpose.
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1
        # before the certificate: at the default level OpenSSL 3 refuses to load a
        # SHA-1 signed one (CA_MD_TOO_WEAK)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(f"cannot load certificate {cert} / key {key}: {exc}") from exc
    return context


def _load_3des_identity(cert: Path, key: Path) -> tls3des_server.ServerIdentity:
    try:
        return tls3des_server.ServerIdentity(cert, key)
    except (OSError, ValueError, SyntaxError) as exc:
        raise StartupError(f"cannot load certificate {cert} / key {key}: {exc}") from exc


class PoolMember:
    """The running service: one listener per open port, all connections tracked."""

    def __init__(self, config: PoolMemberConfig, identity: Identity) -> None:
        self.config = config
        self.identity = identity
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._identity_3des: tls3des_server.ServerIdentity | None = None

    async def start(self) -> None:
        config = self.config
        tls = None
        if config.tls_ports - config.closed_ports:
            if config.cert is None or config.key is None:
                raise StartupError("--cert and --key are needed for the TLS ports")
            if config.tls_3des_only:
                self._identity_3des = _load_3des_identity(config.cert, config.key)
            else:
                tls = server_tls_context(config.cert, config.key, config.legacy_tls_only)
        for port in config.ports:
            if port in config.closed_ports:
                continue
            # 3DES: plain TCP here, TLS by tls3des_server in the handler
            use_tls = tls if port in config.tls_ports else None
            try:
                server = await asyncio.start_server(
                    self._handler_for(port),
                    config.listen,
                    port,
                    ssl=use_tls,
                    ssl_handshake_timeout=_HANDSHAKE_TIMEOUT if use_tls else None,
                )
            except OSError as exc:
                await self.stop()
                raise StartupError(
                    f"cannot listen on {config.listen}:{port}: {exc.strerror or exc}"
                ) from exc
            self._servers.append(server)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.close()
        # A TLS close waits for the peer's close_notify, which a client holding its
        # connection idle never sends: after a short grace the rest are cut, as a
        # stopped service's sockets are, so a stop takes well under a second
        # instead of running into the service manager's SIGKILL.
        deadline = asyncio.get_running_loop().time() + _CLOSE_GRACE
        while self._writers and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        for writer in list(self._writers):
            writer.transport.abort()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    def _handler_for(
        self, port: int
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        config, me = self.config, self.identity

        async def speak(reader: asyncio.StreamReader, writer: Any) -> None:
            if port in config.sip_ports:
                await serve_sip(reader, writer, me)
            elif port in config.https_ports:
                await serve_http(reader, writer, me, port)
            else:
                await serve_banner(reader, writer, me, port)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.add(writer)
            try:
                if self._identity_3des is not None and port in config.tls_ports:
                    await tls3des_server.serve(
                        reader, writer, self._identity_3des, speak, _HANDSHAKE_TIMEOUT
                    )
                else:
                    await speak(reader, writer)
            except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
                LOG.debug("port %d: connection ended: %s", port, exc)
            finally:
                self._writers.discard(writer)
                writer.close()
                with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
                    await writer.wait_closed()

        return handle


def write_pidfile(path: Path) -> None:
    """Write our pid via a temporary file and a rename, so a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(f"{os.getpid()}\n")
    temporary.replace(path)


def remove_pidfile(path: Path) -> None:
    """Remove the pid file if it is still ours (a restarted service may have replaced it)."""
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text().strip()) == os.getpid():
            path.unlink()


async def run(config: PoolMemberConfig) -> None:
    identity = Identity(config.name, resolve_pool(config.pool_fqdn, config.hosts_file))
    member = PoolMember(config, identity)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_exception_handler)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await member.start()
    write_pidfile(config.pidfile)
    try:
        LOG.info(
            "%s listening on %s ports %s (closed: %s); %s resolves to %s",
            config.name,
            config.listen,
            ",".join(str(p) for p in config.ports if p not in config.closed_ports),
            ",".join(str(p) for p in sorted(config.closed_ports)) or "none",
            config.pool_fqdn,
            identity.pool_resolved,
        )
        await stop.wait()
        LOG.info("%s stopping", config.name)
    finally:
        await member.stop()
        remove_pidfile(config.pidfile)


def _quiet_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    # Health checks that connect and leave without a TLS handshake are normal here.
    LOG.debug("event loop: %s (%s)", context.get("message"), context.get("exception"))


def parse_args(argv: Sequence[str] | None = None) -> PoolMemberConfig:
    parser = argparse.ArgumentParser(
        prog="python -m ocsscale_lab.poolmember",
        description="Pool-member stand-in for the ocsscale lab (not an OCS server).",
    )
    parser.add_argument("--name", required=True, help="the server's name, e.g. ocsfe01")
    parser.add_argument("--listen", required=True, help="address to listen on")
    parser.add_argument("--ports", required=True, type=_port_list, help="e.g. 5061,5060,135")
    parser.add_argument("--tls-ports", type=_port_list, default=(), help="ports speaking TLS")
    parser.add_argument("--sip-ports", type=_port_list, default=(5060, 5061))
    parser.add_argument("--https-ports", type=_port_list, default=(443, 444))
    parser.add_argument("--close", type=_port_list, action="append", default=[], metavar="PORT")
    parser.add_argument("--cert", type=Path)
    parser.add_argument("--key", type=Path)
    parser.add_argument("--pool-fqdn", required=True)
    parser.add_argument("--pidfile", required=True, type=Path)
    parser.add_argument("--legacy-tls-only", action="store_true", help="speak TLS 1.0 only")
    parser.add_argument(
        "--tls-3des-only",
        action="store_true",
        help="speak TLS 1.0 with DES-CBC3-SHA only (needs an RSA certificate)",
    )
    parser.add_argument("--hosts-file", type=Path, help="a Windows hosts file, before DNS")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    ports = tuple(dict.fromkeys(args.ports))
    closed = frozenset(port for group in args.close for port in group)
    for option, chosen in (("--tls-ports", args.tls_ports), ("--close", closed)):
        stray = sorted(set(chosen) - set(ports))
        if stray:
            parser.error(f"{option}: {', '.join(map(str, stray))} not in --ports")
    return PoolMemberConfig(
        name=args.name,
        listen=args.listen,
        ports=ports,
        tls_ports=frozenset(args.tls_ports),
        sip_ports=frozenset(args.sip_ports),
        https_ports=frozenset(args.https_ports),
        closed_ports=closed,
        pool_fqdn=args.pool_fqdn,
        pidfile=args.pidfile,
        cert=args.cert,
        key=args.key,
        legacy_tls_only=args.legacy_tls_only,
        tls_3des_only=args.tls_3des_only,
        verbose=args.verbose,
        hosts_file=args.hosts_file,
    )


def command_line(
    *,
    name: str,
    listen: str,
    ports: Sequence[int],
    tls_ports: Sequence[int],
    pool_fqdn: str,
    pidfile: Path,
    cert: Path | None = None,
    key: Path | None = None,
    sip_ports: Sequence[int] = (5060, 5061),
    https_ports: Sequence[int] = (443, 444),
    closed_ports: Sequence[int] = (),
    legacy_tls_only: bool = False,
    python: str = sys.executable,
) -> list[str]:
    """The argv that starts this service, for whoever runs it (lab, tests)."""

    def joined(values: Sequence[int]) -> str:
        return ",".join(str(value) for value in values)

    argv = [
        python,
        "-m",
        "ocsscale_lab.poolmember",
        f"--name={name}",
        f"--listen={listen}",
        f"--ports={joined(ports)}",
        f"--tls-ports={joined(tls_ports)}",
        f"--sip-ports={joined(sip_ports)}",
        f"--https-ports={joined(https_ports)}",
        f"--pool-fqdn={pool_fqdn}",
        f"--pidfile={pidfile}",
    ]
    if cert is not None and key is not None:
        argv += [f"--cert={cert}", f"--key={key}"]
    argv += [f"--close={port}" for port in closed_ports]
    if legacy_tls_only:
        argv.append("--legacy-tls-only")
    return argv


def _port_list(text: str) -> tuple[int, ...]:
    ports: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not (part.isascii() and part.isdigit()) or not 0 < int(part) < 65536:
            raise argparse.ArgumentTypeError(f"not a TCP port: {part!r}")
        ports.append(int(part))
    return tuple(ports)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if config.verbose else logging.INFO,
        format="%(asctime)s poolmember[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(run(config))
    except StartupError as exc:
        print(f"poolmember {config.name}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
