"""python -m ocsscale_lab.winrm_host: run the WinRM stand-in until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import ssl
import sys
from pathlib import Path
from types import FrameType

from .dnsserver import role_from_arguments
from .executor import CommandExecutor
from .sandbox import (
    DEFAULT_DATABASE_PATH,
    DEFAULT_DOTNET,
    DEFAULT_POWERSHELL,
    DEFAULT_SERVICES,
    Sandbox,
)
from .server import StandInServer, certificate_binding, load_users
from .winlocale import LOCALES
from .winnet import initial_network
from .winservices import BoundServices, parse_binding
from .wsman import WsmanService

AUTH_METHODS = {"basic", "ntlm"}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ocsscale_lab.winrm_host",
        description="WS-Management test stand-in for a Windows host (not Windows).",
    )
    parser.add_argument("--listen", required=True, help="address to bind")
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate: serve HTTPS")
    parser.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    parser.add_argument("--users-file", type=Path, required=True, help="DOMAIN:USER:PASSWORD lines")
    parser.add_argument("--sandbox", type=Path, required=True, help="directory that is C:\\")
    parser.add_argument("--pidfile", type=Path, required=True)
    parser.add_argument("--auth", default="basic,ntlm", help="comma list of basic, ntlm")
    parser.add_argument("--services", default=",".join(DEFAULT_SERVICES), help="running services")
    parser.add_argument("--dns-server", help="ADDR[:PORT] instead of the resolv.conf nameserver")
    parser.add_argument("--resolv-conf", default="/etc/resolv.conf")
    parser.add_argument(
        "--trusted-ca",
        type=Path,
        help="PEM CA certificate(s) the host trusts for outgoing TLS (default: the system's)",
    )
    parser.add_argument(
        "--dns-primary", help="ADDR[:PORT]: act as a Windows DNS server whose zones live there"
    )
    parser.add_argument("--dns-tsig-name", default="ocsscale", help="TSIG key for --dns-primary")
    parser.add_argument("--dns-tsig-algorithm", default="hmac-sha256")
    parser.add_argument("--dns-tsig-file", type=Path, help="file holding the TSIG secret")
    parser.add_argument(
        "--dns-tools", default="dnscmd", help="comma list of dnscmd, dnsserver-module"
    )
    parser.add_argument(
        "--dns-remove-denied",
        action="store_true",
        help="every DNS record removal is denied (a fault: the put-back is seen at work)",
    )
    parser.add_argument(
        "--allow-unencrypted", action="store_true", help="accept plain SOAP over HTTP"
    )
    parser.add_argument(
        "--read-only-hosts",
        action="store_true",
        help="writing the hosts file is denied, as with a locked hosts file (a lab fault)",
    )
    parser.add_argument(
        "--hosts-database-path",
        default=DEFAULT_DATABASE_PATH,
        help="the registry's Tcpip DataBasePath, where the hosts file is (e.g. "
        "%%SystemDrive%%\\NetConfig: the WINDOWS:hosts-moved lab fault)",
    )
    parser.add_argument(
        "--powershell-version",
        default=DEFAULT_POWERSHELL,
        help="the PowerShell version it reports: 1.0 runs only the versions script, "
        "'none' answers as a host without powershell.exe (a lab fault)",
    )
    parser.add_argument(
        "--dotnet-versions",
        default=",".join(DEFAULT_DOTNET),
        help="comma list of the .NET Framework versions the registry lists",
    )
    parser.add_argument(
        "--ocs-front-end",
        action="store_true",
        help="add the services of an OCS 2007 R2 front end (display names, dependencies)",
    )
    parser.add_argument(
        "--bind-service",
        action="append",
        default=[],
        metavar="SERVICE=PROCESS[,PROCESS]",
        help="the service is played by real processes, stopped and started through "
        "--service-control (a lab Windows front end: RTCSRV is its pool member)",
    )
    parser.add_argument(
        "--service-control",
        default="",
        help="the command controlling bound processes, run as: COMMAND stop|start PROCESS",
    )
    parser.add_argument(
        "--address", help="the host's own address (default: --listen unless a wildcard)"
    )
    parser.add_argument("--dhcp", action="store_true", help="its adapter is configured by DHCP")
    parser.add_argument(
        "--disable-loopback-check", action="store_true", help="Lsa DisableLoopbackCheck = 1"
    )
    parser.add_argument(
        "--back-connection-host-names", default="", help="comma list for Lsa\\MSV1_0"
    )
    parser.add_argument(
        "--locale",
        choices=LOCALES,
        default="en",
        help="the display language of what console programs print: de plays a German "
        "Windows (netstat's HERGESTELLT, a lab fault)",
    )
    parser.add_argument(
        "--nat-source",
        help="outgoing connections leave from this address: a NAT in the path (a lab fault)",
    )
    args = parser.parse_args(argv)
    methods = {m.strip().lower() for m in args.auth.split(",") if m.strip()}
    if not methods or not methods <= AUTH_METHODS:
        parser.error(f"--auth takes a comma list of {', '.join(sorted(AUTH_METHODS))}")
    args.auth_methods = frozenset(methods)
    try:
        args.bound = dict(parse_binding(b) for b in args.bind_service)
    except ValueError as exc:
        parser.error(str(exc))
    if args.bound and not args.service_control.strip():
        parser.error("--bind-service needs --service-control")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    return args


def _dns_server(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "53")
    return host, int(port or 53)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    # pyspnego's NTLM acceptor reads its credential store from this variable.
    os.environ["NTLM_USER_FILE"] = str(args.users_file.resolve())
    try:
        users = load_users(args.users_file)
    except (OSError, ValueError) as exc:
        print(f"winrm stand-in: cannot read users file {args.users_file}: {exc}", file=sys.stderr)
        return 2
    address = args.address or (None if args.listen in ("0.0.0.0", "::") else args.listen)
    sandbox = Sandbox(
        args.sandbox,
        services=tuple(s for s in args.services.split(",") if s),
        dns_server=_dns_server(args.dns_server),
        resolv_conf=args.resolv_conf,
        read_only_hosts=args.read_only_hosts,
        database_path=args.hosts_database_path,
        powershell="" if args.powershell_version == "none" else args.powershell_version,
        dotnet=tuple(v for v in args.dotnet_versions.split(",") if v),
        ocs_front_end=args.ocs_front_end,
        address=address,
        nat_source=args.nat_source,
        bound_services=BoundServices(tuple(shlex.split(args.service_control)), args.bound)
        if args.bound
        else None,
        network=initial_network(
            address,
            dhcp=args.dhcp,
            disable_loopback_check=1 if args.disable_loopback_check else None,
            back_connection_host_names=tuple(
                n for n in args.back_connection_host_names.split(",") if n
            ),
        ),
    )
    sandbox.initialise()
    try:
        dns_role = role_from_arguments(
            args.dns_primary,
            args.dns_tsig_name,
            args.dns_tsig_algorithm,
            args.dns_tsig_file,
            args.dns_tools,
            args.dns_remove_denied,
        )
    except (OSError, ValueError) as exc:
        print(f"winrm stand-in: bad --dns-* arguments: {type(exc).__name__}", file=sys.stderr)
        return 2
    tls = None
    binding = None
    if args.tls_cert is not None:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
        binding = certificate_binding(args.tls_cert)
    server = StandInServer(
        (args.listen, args.port),
        service=None,
        users=users,
        auth_methods=args.auth_methods,
        tls=tls,
        channel_binding=binding,
        allow_unencrypted=args.allow_unencrypted,
    )
    host, port = server.server_address[:2]
    scheme = "https" if tls else "http"
    url = f"{scheme}://{f'[{host}]' if ':' in str(host) else host}:{port}/wsman"
    server.service = WsmanService(
        CommandExecutor(sandbox, dns_role, args.trusted_ca, locale=args.locale), url
    )
    # The handler goes in before the pid file appears: whoever reads the pid file
    # may send SIGTERM at once, and it must land inside the try below.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        args.pidfile.write_text(f"{os.getpid()}\n")
        print(f"ready {url}", flush=True)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        args.pidfile.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
