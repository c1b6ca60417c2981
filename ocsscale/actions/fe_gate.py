"""fe.gate: the checks a new front end must pass before it is validated.

Args: `fe` (a front end's name), optional `timeout` (seconds per probe).

Reads, each a finding in the evidence (all are run and all reported):
- `dns.a`, `dns.ptr`: every DNS server of the pool file (`dns.servers`, port
  `dns.port`; the admin host's resolver when none is listed) answers the FE's
  FQDN with its address (A) and its address with its FQDN (PTR).
- `address.static`: on a Linux FE, `ip -4 -o addr show` holds the address and
  it is not a DHCP lease (`dynamic`); on a Windows FE,
  Win32_NetworkAdapterConfiguration (fe_gate_windows.py).
- `peer.<other FE>`: from this FE, over its transport, a TCP connection to
  each other FE on the profile's first plain port; when the other FE reports
  the source address it saw (the pool-member banner's `peer=`), it must be this
  FE's own address: anything else means NAT in the path. Between two Windows
  FEs, the other FE's own TCP connections during a held connection say the same.
- `directory`: from this FE, TCP to the directory server's port.
- `cert.trust` and the profile's certificate rules (`cert.subject`,
  `cert.san`, `cert.wildcard`, `cert.eku`, `cert.validity`): a TLS handshake
  from the admin host with the FE's address on its TLS SIP port, presenting
  the pool FQDN, then check_certificate on what came back.
- `service.<port>`: every check port of the profile answers its application
  probe (SIP OPTIONS, HTTPS GET, TLS or TCP) from the admin host.
- on a Windows FE, `service.<NAME>`: the state of each of the profile's
  services as the FE reports it, and `iis.loopback`: whether IIS accepts the
  pool FQDN on its own loopback (fe_gate_windows.py).

Changes nothing: no undo record, nothing to revert. Proof: the findings
(emitted as a `findings` event and returned as evidence); any failed finding
fails the step with CheckFailed naming the FE and each failed check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dns.exception
import dns.resolver
import dns.reversename

from ..errors import CheckFailed, OcsscaleError
from ..probes import TlsOptions, check_certificate, tcp_probe, tls_probe
from ..probes.certrules import ALL_RULES, RULE_WILDCARD
from ..transports.commands import ShCommand
from .args import Seconds
from .base import Action, Change, Context, Json, register
from .fe_checklist import FeArgs, front_end
from .fe_gate_windows import loopback_findings, peer_finding, service_findings, static_findings
from .probing import (
    BANNER_WAIT,
    DEFAULT_TIMEOUT,
    port_kind,
    probe_port,
    tls_options,
    vantage,
)

FINDINGS_EVENT = "findings"


def finding(check: str, ok: bool, message: str, proven: bool = True) -> dict[str, Any]:
    return {"check": check, "ok": ok, "proven": proven, "message": message}


def _dns_answers(
    server: str | None, port: int, qname: Any, rdtype: str, timeout: float
) -> list[str]:
    """The answers' text; [] for NXDOMAIN or no data. Raises dns.exception.DNSException."""
    if server is None:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [server]
        resolver.port = port
    resolver.lifetime = timeout
    try:
        answer = resolver.resolve(qname, rdtype, search=False, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return []
    return [rdata.to_text() for rdata in answer] if answer.rrset is not None else []


class GateArgs(FeArgs):
    timeout: Seconds = DEFAULT_TIMEOUT


@register
class FeGate(Action):
    """Gate checks for one front end (see the module docstring)."""

    name = "fe.gate"
    parallel = True
    read_only = True
    Args = GateArgs
    params: GateArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.fe = front_end(ctx.pool, self.params.fe, self.name)
        self.timeout = self.params.timeout

    def targets(self) -> list[str]:
        return [self.fe.name]

    def describe(self) -> list[Change]:
        pool = self.ctx.pool
        return [
            Change(
                "check",
                self.fe.name,
                f"A and PTR records for {self.fe.fqdn}, other front ends reachable without NAT, "
                f"{pool.directory.name} reachable on {pool.directory.port}, certificate rules, "
                "services running",
            )
        ]

    def apply(self, current: Json) -> Json:
        findings: list[dict[str, Any]] = []
        for check in (self._dns, self._static, self._peers, self._directory, self._certificate):
            findings += check()
        if self.fe.os == "windows":
            findings += service_findings(self.ctx, self.fe)
            findings += loopback_findings(self.ctx, self.fe)
        findings += self._services()
        self.ctx.emit(FINDINGS_EVENT, {"title": f"{self.fe.name} gate", "findings": findings})
        failed = [f for f in findings if not f["ok"]]
        if failed:
            shown = "; ".join(f"{f['check']}: {f['message']}" for f in failed)
            raise CheckFailed(
                f"{self.fe.name}: {len(failed)} of {len(findings)} gate checks failed: {shown}"
            )
        return {"fe": self.fe.name, "address": str(self.fe.address), "findings": findings}

    # -- DNS ---------------------------------------------------------------

    def _dns(self) -> list[dict[str, Any]]:
        pool_dns = self.ctx.pool.dns
        servers: list[str | None] = [str(s) for s in pool_dns.servers] or [None]
        fqdn, address = self.fe.fqdn.rstrip("."), str(self.fe.address)
        out = []
        for server in servers:
            where = f"DNS server {server}" if server else "the admin host's resolver"
            try:
                a = sorted(_dns_answers(server, pool_dns.port, fqdn, "A", self.timeout))
                ptr = _dns_answers(
                    server,
                    pool_dns.port,
                    dns.reversename.from_address(address),
                    "PTR",
                    self.timeout,
                )
            except dns.exception.DNSException as exc:
                reason = str(exc) or type(exc).__name__
                out.append(finding("dns.a", False, f"{where} did not answer: {reason}"))
                continue
            out.append(
                finding("dns.a", True, f"{where}: {fqdn} A {address}")
                if a == [address]
                else finding(
                    "dns.a",
                    False,
                    f"{where}: {fqdn} A is {', '.join(a) or 'missing'}, expected {address}",
                )
            )
            names = sorted(n.rstrip(".").lower() for n in ptr)
            out.append(
                finding("dns.ptr", True, f"{where}: {address} PTR {fqdn}")
                if names == [fqdn.lower()]
                else finding(
                    "dns.ptr",
                    False,
                    f"{where}: {address} PTR is {', '.join(names) or 'missing'}, expected {fqdn}",
                )
            )
        return out

    def _static(self) -> list[dict[str, Any]]:
        address = str(self.fe.address)
        if self.fe.os == "windows":
            return static_findings(self.ctx, self.fe)
        try:
            out = self.ctx.host(self.fe.name).run(ShCommand.of("ip", "-4", "-o", "addr", "show"))
        except OcsscaleError as exc:
            return [finding("address.static", False, f"cannot list addresses: {exc.message}")]
        for line in out.stdout.splitlines():
            fields = line.split()
            if "inet" in fields and fields[fields.index("inet") + 1].split("/")[0] == address:
                if "dynamic" in fields:
                    return [
                        finding("address.static", False, f"{address} is a DHCP lease (dynamic)")
                    ]
                return [finding("address.static", True, f"{address} is configured statically")]
        return [finding("address.static", False, f"no interface holds {address}")]

    # -- reachability from the FE --------------------------------------------

    def _peers(self) -> list[dict[str, Any]]:
        profile = self.ctx.profile
        plain = [p for p in profile.ports if port_kind(profile, p) == "banner"]
        port = plain[0] if plain else profile.check_ports[0]
        mine = str(self.fe.address)
        out = []
        for other in self.ctx.pool.front_ends:
            if other.name == self.fe.name:
                continue
            check, target = f"peer.{other.name}", f"{other.name} ({other.address}:{port})"
            try:
                where = vantage(self.ctx, self.fe.name)
                if where.connect is None and other.os == "windows":
                    out.append(peer_finding(self.ctx, self.fe, other, port, self.timeout))
                    continue
                if where.connect is None:
                    ok, why = where.tcp_check(str(other.address), port, self.timeout)
                    out.append(
                        finding(
                            check,
                            True,
                            f"reaches {target}; the source address is not observable over "
                            "WinRM: rule out NAT by hand",
                            proven=False,
                        )
                        if ok
                        else finding(check, False, f"cannot reach {target}: {why}")
                    )
                    continue
                seen = tcp_probe(
                    str(other.address),
                    port,
                    connect=where.connect,
                    timeout=self.timeout,
                    banner_wait=BANNER_WAIT,
                    source=self.fe.name,
                )
            except OcsscaleError as exc:
                out.append(finding(check, False, f"cannot reach {target}: {exc.message}"))
                continue
            if not seen.ok:
                out.append(finding(check, False, f"cannot reach {target}: {seen.detail}"))
            elif seen.seen_source is None:
                out.append(
                    finding(
                        check,
                        True,
                        f"reaches {target}; it does not report the source it saw: "
                        "rule out NAT by hand",
                        proven=False,
                    )
                )
            elif seen.seen_source != mine:
                out.append(
                    finding(
                        check,
                        False,
                        f"{other.name} saw the connection from {seen.seen_source}, not from "
                        f"{mine}: a NAT device is in the path",
                    )
                )
            else:
                out.append(finding(check, True, f"reaches {target}, which sees {mine} (no NAT)"))
        return out

    def _directory(self) -> list[dict[str, Any]]:
        directory = self.ctx.pool.directory
        target = f"{directory.name} ({directory.address}:{directory.port})"
        try:
            ok, why = vantage(self.ctx, self.fe.name).tcp_check(
                str(directory.address), directory.port, self.timeout
            )
        except OcsscaleError as exc:
            ok, why = False, exc.message
        if ok:
            return [finding("directory", True, f"reaches {target}")]
        return [finding("directory", False, f"cannot reach {target}: {why}")]

    # -- from the admin host ----------------------------------------------------

    def _certificate(self) -> list[dict[str, Any]]:
        profile, pool = self.ctx.profile, self.ctx.pool
        port = profile.sip_ports.tls or (profile.tls_ports[0] if profile.tls_ports else None)
        if port is None:
            return [finding("cert", True, "the profile has no TLS port", proven=False)]
        address, pool_fqdn = str(self.fe.address), pool.pool.fqdn
        trusted = tls_options(self.ctx, address)
        seen = tls_probe(
            address, port, pool_fqdn, tls=trusted, timeout=self.timeout, source="admin"
        )
        out = []
        if seen.ok:
            out.append(finding("cert.trust", True, f"{address}:{port}: {seen.detail}"))
        elif seen.failure in ("cert-untrusted", "name-mismatch"):
            out.append(finding("cert.trust", False, seen.detail))
            seen = tls_probe(
                address,
                port,
                pool_fqdn,
                tls=TlsOptions(verify=False, legacy_tls=trusted.legacy_tls),
                timeout=self.timeout,
                source="admin",
            )
        if seen.certificate is None:
            return out + [finding("cert", False, f"cannot read the certificate: {seen.detail}")]
        rules = set(ALL_RULES)
        if profile.certificate.wildcard:
            rules.discard(RULE_WILDCARD)
        fe_names = [self.fe.fqdn] if "fe-fqdn" in profile.certificate.san else []
        for result in check_certificate(
            seen.certificate.to_x509(),
            pool_fqdn=pool_fqdn,
            fe_fqdns=fe_names,
            sip_domain=pool.pool.sip_domain,
            rules=rules,
        ):
            out.append(finding(result.rule, result.ok, result.message))
        return out

    def _services(self) -> list[dict[str, Any]]:
        out = []
        tls = tls_options(self.ctx, str(self.fe.address))
        for port in self.ctx.profile.check_ports:
            kind = port_kind(self.ctx.profile, port)
            seen = probe_port(
                self.ctx.profile,
                str(self.fe.address),
                port,
                self.ctx.pool.pool.fqdn,
                tls=tls,
                timeout=self.timeout,
                source="admin",
            )
            if seen.ok:
                out.append(
                    finding(f"service.{port}", True, f"port {port} ({kind}) answers: {seen.detail}")
                )
            else:
                out.append(
                    finding(
                        f"service.{port}",
                        False,
                        f"port {port} ({kind}) does not answer: {seen.detail}",
                    )
                )
        return out
