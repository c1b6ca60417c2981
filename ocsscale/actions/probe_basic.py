"""probe.tcp and probe.tls: single read-only probes from a host, as evidence.

- `probe.tcp {from, address, port[, timeout]}`: a TCP connection opened by
  `from` itself (an SSH direct-tcpip channel, `tcp_check` on a Windows host,
  a socket on the admin host). The routing phase uses it to prove every front
  end reaches the directory server on 135.
- `probe.tls {from, name, port[, expect_server, timeout]}`: `from` resolves
  `name` itself; a TLS handshake with that address presents `name` and reads
  the certificate back (verified against the pool's CA, see probing.ca_bundle).
  From a Windows host, the host checks the TCP connection and the handshake
  runs from the admin host towards the address the host resolved.

Both read only and change nothing: no undo record, nothing to revert. Proof:
the evidence (where the probe ran, what answered, timings, certificate);
failure raises CheckFailed naming the host, the address and port, what was
expected and what was seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from ..errors import CheckFailed
from ..probes import socket_connector, tls_probe
from .args import ActionArgs, Address, DnsName, HostName, Port, Seconds
from .base import Action, Change, Context, Json, register
from .probing import DEFAULT_TIMEOUT, known_host, tls_options, vantage


class ProbeTcpArgs(ActionArgs):
    source: HostName = Field(alias="from")
    address: Address
    port: Port
    timeout: Seconds = DEFAULT_TIMEOUT


class ProbeTlsArgs(ActionArgs):
    source: HostName = Field(alias="from")
    name: DnsName
    port: Port
    expect_server: HostName | None = None
    timeout: Seconds = DEFAULT_TIMEOUT


@register
class ProbeTcp(Action):
    """A TCP connect from `from` to `address`:`port` (see the module docstring)."""

    name = "probe.tcp"
    parallel = True
    read_only = True

    Args = ProbeTcpArgs
    params: ProbeTcpArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.source = self.params.source
        self.address = self.params.address
        self.port = self.params.port
        self.timeout = self.params.timeout
        known_host(ctx.pool, self.source, self.name)

    def targets(self) -> list[str]:
        return [self.source]

    def describe(self) -> list[Change]:
        return [Change("check", self.source, f"TCP connect to {self.address}:{self.port}")]

    def apply(self, current: Json) -> Json:
        where = vantage(self.ctx, self.source)
        ok, why = where.tcp_check(self.address, self.port, self.timeout)
        if not ok:
            raise CheckFailed(
                f"{self.source}: TCP connect to {self.address}:{self.port} failed "
                f"(expected a connection): {why}"
            )
        return {
            "from": self.source,
            "os": where.os,
            "address": self.address,
            "port": self.port,
            "connected": True,
            "how": "tcp_check on the host (WinRM)" if not where.streams else "stream from the host",
        }


@register
class ProbeTls(Action):
    """A TLS handshake through `from`'s own resolution of `name` (see the module docstring)."""

    name = "probe.tls"
    parallel = True
    read_only = True

    Args = ProbeTlsArgs
    params: ProbeTlsArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.source = self.params.source
        self.pool_name = self.params.name
        self.port = self.params.port
        self.timeout = self.params.timeout
        known_host(ctx.pool, self.source, self.name)
        self.expect_server: str | None = None
        self.expect_address: str | None = None
        if self.params.expect_server:
            spec = known_host(ctx.pool, self.params.expect_server, self.name)
            self.expect_server = spec.name
            self.expect_address = str(spec.address)

    def targets(self) -> list[str]:
        return [self.source]

    def describe(self) -> list[Change]:
        where = f", reaching {self.expect_server} ({self.expect_address})"
        return [
            Change(
                "check",
                self.source,
                f"TLS handshake with {self.pool_name}:{self.port}"
                + (where if self.expect_server else ""),
            )
        ]

    def apply(self, current: Json) -> Json:
        where = vantage(self.ctx, self.source)
        resolved = where.host.resolve(self.pool_name)
        if self.expect_address is not None and resolved != [self.expect_address]:
            raise CheckFailed(
                f"{self.source} resolves {self.pool_name} to {', '.join(resolved) or 'nothing'}, "
                f"expected {self.expect_address} ({self.expect_server})"
            )
        if not resolved:
            raise CheckFailed(f"{self.source} does not resolve {self.pool_name}")
        address = resolved[0]
        how = f"from {self.source}"
        connect = where.connect
        if connect is None:
            ok, why = where.tcp_check(address, self.port, self.timeout)
            if not ok:
                raise CheckFailed(
                    f"{self.source}: TCP connect to {address}:{self.port} failed: {why}"
                )
            connect = socket_connector
            how = f"TCP checked from {self.source}; handshake from the admin host to {address}"
        evidence = tls_probe(
            address,
            self.port,
            self.pool_name,
            tls=tls_options(self.ctx, address),
            connect=connect,
            timeout=self.timeout,
            source=self.source,
        )
        if not evidence.ok:
            raise CheckFailed(
                f"{self.source}: TLS with {self.pool_name} ({address}:{self.port}) failed: "
                f"{evidence.detail}"
            )
        return {"from": self.source, "resolved": resolved, "how": how, "probe": evidence.to_dict()}
