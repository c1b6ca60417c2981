"""A pool file whose front ends are Windows hosts played by WinRM stand-ins on loopback
addresses (127.0.0.41, .42); the other hosts use the local transport and are not asked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from winrm_standin import DOMAIN, PASSWORD, USER, StandIn, start_standin

from ocsscale.actions.base import Context
from ocsscale.config import load_pool
from ocsscale.runner.plugins import load_actions
from ocsscale.transports.factory import HostPool

FE_ADDRESSES = {"fe01": "127.0.0.41", "fe02": "127.0.0.42"}
LEGACY_ADDRESS = "127.0.0.30"

POOL_YAML = """\
version: 1
pool: {{fqdn: pool.lab.test, sip_domain: lab.test}}
profile: ocs2007r2
legacy_fe:
  name: fe00
  fqdn: fe00.lab.test
  address: 127.0.0.30
  transport: {legacy_transport}
front_ends:
{front_ends}
test_clients:
  - name: client01
    address: 127.0.0.101
    transport: {{kind: local, hosts_file: {d}/hosts-client01}}
directory: {{name: dc01, address: 127.0.0.10}}
load_balancer:
  driver: manual
  topology: one-armed
  vip: 127.0.0.40/24
  snat_addresses: [127.0.0.40]
  expected_peak_connections: 1000
dns: {{provider: manual, zone: lab.test}}
credentials:
  win:
    username: "{domain}\\\\{user}"
    password: {{file: {d}/win-password}}
"""

FRONT_END = """\
  - name: {name}
    fqdn: {name}.lab.test
    address: {address}
    transport: {transport}
"""
# by address: the stand-ins listen on loopback and their lab.test names resolve nowhere
WINRM_TRANSPORT = (
    "{{kind: winrm, credentials: win, scheme: http, auth: ntlm, port: {port}, connect_to: address}}"
)


@dataclass
class WindowsPool:
    path: Path
    standins: dict[str, StandIn]

    def context(self) -> tuple[Context, HostPool]:
        load_actions()
        loaded = load_pool(self.path)
        hosts = HostPool(loaded)
        ctx = Context(
            pool=loaded.pool,
            profile=loaded.profile,
            host=hosts,
            pool_path=self.path,
        )
        return ctx, hosts


@contextmanager
def windows_pool(
    directory: Path, *standin_args: str, windows_legacy: bool = False
) -> Iterator[WindowsPool]:
    """Both front ends as stand-ins with the OCS front-end services (with
    `windows_legacy`, the legacy FE fe00 too); yields the pool."""
    standins: dict[str, StandIn] = {}
    addresses = {**({"fe00": LEGACY_ADDRESS} if windows_legacy else {}), **FE_ADDRESSES}
    try:
        for name, address in addresses.items():
            standins[name] = start_standin(
                directory / name,
                tls=None,
                auth="ntlm",
                listen=address,
                extra=("--dns-server", "127.0.0.1:9", "--ocs-front-end", *standin_args),
            )
        (directory / "win-password").write_text(PASSWORD + "\n")
        (directory / "win-password").chmod(0o600)
        front_ends = "".join(
            FRONT_END.format(
                name=n, address=a, transport=WINRM_TRANSPORT.format(port=standins[n].port)
            )
            for n, a in FE_ADDRESSES.items()
        )
        legacy = (
            WINRM_TRANSPORT.format(port=standins["fe00"].port)
            if windows_legacy
            else f"{{kind: local, hosts_file: {directory}/hosts-fe00}}"
        )
        path = directory / "pool.yaml"
        path.write_text(
            POOL_YAML.format(
                d=directory,
                front_ends=front_ends,
                domain=DOMAIN,
                user=USER,
                legacy_transport=legacy,
            )
        )
        yield WindowsPool(path, standins)
    finally:
        for standin in standins.values():
            standin.stop()
