"""probe.ports: every profile port, through a test client's own view of the pool name.

Args: `from` (a test client), `name` (the pool FQDN), and either
`expect_server` (a front end: validate-fe) or `through` (the VIP: validate-lb);
optional `timeout` (seconds per probe).

Reads: how `from` resolves `name` (its hosts file and resolver), then every
port of the profile: SIP OPTIONS over TLS on the profile's TLS SIP port, SIP
OPTIONS over TCP on its TCP SIP port, HTTPS GET on its HTTPS ports, a TLS
handshake on other TLS ports and a TCP connect (reading any banner) on the
rest, each presenting the pool FQDN and checking the certificate against the
pool's CA. From a Linux client the connections are the client's own (SSH
direct-tcpip); a Windows client over WinRM cannot carry a stream, so it checks
each TCP connection itself and the application probe runs from the admin host
towards the address the client resolved (the evidence says so per port).

Which ports must answer: the profile marks each port `required: true|false`
and the pool file may say otherwise for its pool (`pool.ports`, see
config.profiles.port_requirement). A required port where nothing listens fails the
step; an optional one where nothing listens is a finding marked information
(the profile's note says why it may be missing), never a failure; an optional
port that does answer is held to the same proof as a required one. A port the
pool file calls `absent` is not probed at all (the farm still carries it).

Changes nothing: no undo record, nothing to revert.

Proof: `name` resolves on the client to exactly the expected address; every
port answers; the pool server that answered, named in the answer (`Server:`,
the banner's `server=`) or, failing that, the one pool server whose FQDN the
certificate's SANs hold, is the expected front end (with `through`, a front
end, never the legacy server), and no other; the two never disagree. A server
that reports its own view of the pool name (`X-Pool-Resolved`, the banner's
`pool-resolved=`) sees the expected address, which proves it was restarted
after the pin. What the answers cannot show is not passed off as shown: a port
whose answer names no server is a finding marked unproven ("only the address
says which server it is"), and so is the restart when no answer reports the
pool name. A failure raises CheckFailed naming the client, the front end,
each failed port and what was seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import Field

from ..config.profiles import port_requirement
from ..errors import CheckFailed, UsageError
from ..probes import ProbeEvidence, socket_connector
from .args import ActionArgs, Address, DnsName, HostName, Seconds
from .base import Action, Change, Context, Json, register
from .probing import (
    DEFAULT_TIMEOUT,
    Vantage,
    answered_by,
    certificate_owner,
    known_host,
    port_kind,
    probe_port,
    tls_options,
    vantage,
)

#: failed ports named in the one-line message (the evidence event has them all)
_MESSAGE_PORTS = 4


def _answered(result: dict[str, Any], address: str) -> str:
    """One short line for a port that passed."""
    if result.get("answered_by"):
        how = "its certificate" if result.get("identified_by") == "certificate" else "its answer"
        line = f"answered by {result['answered_by']} at {address}:{result['port']} (named in {how})"
    else:
        named = f" ({result['server']})" if result.get("server") else ""
        line = (
            f"answered at {address}:{result['port']} by a server that does not name itself"
            f"{named}: only the address says which server it is"
        )
    if result.get("pool_resolved"):
        line += f", which resolves the pool name to {result['pool_resolved']}"
    if result.get("tls"):
        line += f"; {result['tls']}"
    if "tcp_check_from_client" in result:
        line += " (TCP checked from the client, probed from the admin host)"
    return line


class ProbePortsArgs(ActionArgs):
    source: HostName = Field(alias="from")
    #: the name `from` resolves itself
    name: DnsName
    #: the front end that must answer (one of expect_server and through)
    expect_server: HostName | None = None
    #: the VIP that must answer (one of expect_server and through)
    through: Address | None = None
    timeout: Seconds = DEFAULT_TIMEOUT


@register
class ProbePorts(Action):
    """Every profile port through `from`'s resolution of `name` (see the module docstring)."""

    name = "probe.ports"
    parallel = True
    read_only = True
    Args = ProbePortsArgs
    params: ProbePortsArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.source = self.params.source
        self.pool_name = self.params.name
        self.timeout = self.params.timeout
        known_host(ctx.pool, self.source, self.name)
        expect, through = self.params.expect_server, self.params.through
        if bool(expect) == bool(through):
            raise UsageError(f"{self.name}: give exactly one of 'expect_server' and 'through'")
        self.expect_server: str | None = None
        if expect:
            spec = known_host(ctx.pool, expect, self.name)
            if spec is None or spec.name not in {fe.name for fe in ctx.pool.front_ends}:
                raise UsageError(f"{self.name}: expect_server {expect} is not a front end")
            self.expect_server = spec.name
            self.expected_address = str(spec.address)
            self.expected_what = f"{spec.name} ({self.expected_address})"
        else:
            self.expected_address = str(through)
            self.expected_what = f"the VIP {self.expected_address}"

    def targets(self) -> list[str]:
        return [self.source]

    def _requirements(self) -> dict[int, str]:
        profile = self.ctx.profile
        return {p: port_requirement(self.ctx.pool, profile, p) for p in profile.ports}

    def describe(self) -> list[Change]:
        by_kind: dict[str, list[str]] = {"required": [], "optional": [], "absent": []}
        for port, requirement in self._requirements().items():
            by_kind[requirement].append(str(port))
        if self.expect_server:
            what = f"reaches {self.expected_what} and no other"
        else:
            what = f"answers via {self.expected_what}"
        required = ", ".join(by_kind["required"])
        summary = f"every required port ({required}) through {self.pool_name} {what}"
        if by_kind["optional"]:
            summary += f"; so do the optional ones that listen ({', '.join(by_kind['optional'])})"
        if by_kind["absent"]:
            summary += f"; not probed (absent on this pool): {', '.join(by_kind['absent'])}"
        return [Change("check", self.source, summary)]

    def apply(self, current: Json) -> Json:
        where = vantage(self.ctx, self.source)
        resolved = where.host.resolve(self.pool_name)
        if resolved != [self.expected_address]:
            raise CheckFailed(
                f"{self.source} resolves {self.pool_name} to {', '.join(resolved) or 'nothing'}, "
                f"expected {self.expected_what} only"
            )
        requirements = self._requirements()
        checked: dict[int, tuple[bool, str]] = {}
        if where.connect is None:
            # a Windows client: its TCP checks of every port in one WinRM script
            probed = [p for p, r in requirements.items() if r != "absent"]
            checked = where.tcp_checks(self.expected_address, probed, self.timeout)
        # every port at once: each waits on the network, not on the others
        with ThreadPoolExecutor(max_workers=max(1, len(requirements))) as pool:
            results = list(
                pool.map(
                    lambda port: self._port(where, port, requirements[port], checked.get(port)),
                    requirements,
                )
            )
        self.ctx.emit(
            "findings",
            {
                "title": f"{self.source} -> {self.pool_name} ({self.expected_what})",
                "findings": [self._finding(r) for r in results] + self._restart_finding(results),
            },
        )
        failed = [r for r in results if not r["ok"]]
        if failed:
            shown = "; ".join(
                f"port {r['port']} ({r['kind']}): {r['problem']}" for r in failed[:_MESSAGE_PORTS]
            )
            more = (
                f" (and {len(failed) - _MESSAGE_PORTS} more)"
                if len(failed) > _MESSAGE_PORTS
                else ""
            )
            required = sum(1 for r in results if r["requirement"] == "required")
            raise CheckFailed(
                f"{self.source}: {len(failed)} of {required} required ports failed through "
                f"{self.pool_name} to {self.expected_what}: {shown}{more}"
            )
        return {
            "from": self.source,
            "os": where.os,
            "name": self.pool_name,
            "resolved": resolved,
            "expected_server": self.expect_server,
            "expected_address": self.expected_address,
            "streams_from_client": where.streams,
            "identified_ports": [r["port"] for r in results if r["answered_by"]],
            "not_listening": [r["port"] for r in results if r.get("listening") is False],
            "absent": [r["port"] for r in results if r["requirement"] == "absent"],
            "restart_proven": any(r["pool_resolved"] for r in results),
            "ports": results,
        }

    def _finding(self, r: dict[str, Any]) -> dict[str, Any]:
        """One port's line: a failure, a pass, or information (a port that is not
        required and does not listen, or one the pool file says is absent)."""
        check = f"port {r['port']} ({r['kind']})"
        if r["requirement"] == "absent":
            message = "not probed: absent on this pool (pool.ports in the pool file)"
            return {"check": check, "ok": True, "proven": False, "info": True, "message": message}
        if r.get("listening") is False and r["ok"]:
            note = self.ctx.profile.port_note(r["port"])
            message = f"optional port, nothing listens: {r['seen']}" + (
                f" ({note})" if note else ""
            )
            return {"check": check, "ok": True, "proven": False, "info": True, "message": message}
        return {
            "check": check,
            "ok": r["ok"],
            "proven": r["answered_by"] is not None,
            "message": r["problem"] or _answered(r, self.expected_address),
        }

    def _restart_finding(self, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Whether the answers show the services were restarted after the change.

        Only a server that reports its own view of the pool name can show it; a
        real OCS does not, and then the finding says so instead of passing."""
        if any(r["pool_resolved"] for r in results) or not all(r["ok"] for r in results):
            return []  # shown per port (and a stale view already failed the port)
        if all(r.get("listening") is False or r.get("requirement") == "absent" for r in results):
            return []  # nothing answered at all: there is no answer to read it from
        return [
            {
                "check": "restarted after the change",
                "ok": True,
                "proven": False,
                "message": "no answer reports how the server resolves "
                f"{self.pool_name}: confirm by hand that its services were restarted",
            }
        ]

    # -- one port ----------------------------------------------------------

    def _port(
        self,
        where: Vantage,
        port: int,
        requirement: str,
        checked: tuple[bool, str] | None = None,  # the host's TCP check, made already
    ) -> dict[str, Any]:
        kind = port_kind(self.ctx.profile, port)
        record: dict[str, Any] = {
            "port": port,
            "kind": kind,
            "requirement": requirement,
            "probed_from": self.source,
            "answered_by": None,
            "pool_resolved": None,
        }
        if requirement == "absent":
            return {**record, "ok": True, "listening": None, "seen": "", "problem": None}
        connect = where.connect
        if connect is None:
            ok, why = checked or where.tcp_check(self.expected_address, port, self.timeout)
            record["tcp_check_from_client"] = ok
            if not ok:
                target = f"{self.expected_address}:{port}"
                return self._missing(record, f"TCP connect from {self.source} to {target}: {why}")
            connect = socket_connector
            record["probed_from"] = (
                f"admin, towards {self.expected_address} as {self.source} resolved "
                f"{self.pool_name} (WinRM carries no stream)"
            )
        tls = tls_options(self.ctx, self.expected_address)
        evidence = probe_port(
            self.ctx.profile,
            self.expected_address,
            port,
            self.pool_name,
            tls=tls,
            connect=connect,
            timeout=self.timeout,
            source=self.source,
        )
        if self._nothing_listens(evidence):
            return self._missing(record, evidence.detail, evidence)
        problem = self._judge(evidence)
        who, how = self._identify(evidence)
        return {
            **record,
            "listening": True,
            "ok": problem is None,
            "server": evidence.server,
            "answered_by": who,
            "identified_by": how,
            "pool_resolved": evidence.pool_resolved,
            # the negotiated version and cipher, shown with every TLS finding
            "tls": f"{evidence.tls_version}, {evidence.cipher}"
            + (", legacy_tls on" if tls.legacy_tls else "")
            if evidence.tls_version
            else None,
            "seen": evidence.detail,
            "problem": problem,
            # the certificate's names, not its PEM: a journal entry per port stays small
            "evidence": evidence.to_dict()
            | {
                "certificate": evidence.certificate.names() if evidence.certificate else None,
                "headers": [],
            },
        }

    def _nothing_listens(self, evidence: ProbeEvidence) -> bool:
        """The probe found no server on the port, as opposed to a wrong answer.

        To a front end: the connection itself failed. Through the VIP, the farm
        accepts on every port and hangs up when no server behind it listens, so
        a connection closed before any answer counts as well."""
        if evidence.ok or evidence.status is not None or evidence.server is not None:
            return False
        if evidence.connect_ms is None:
            return True
        return self.expect_server is None and evidence.failure in ("closed", "reset")

    def _missing(
        self, record: dict[str, Any], seen: str, evidence: ProbeEvidence | None = None
    ) -> dict[str, Any]:
        """A port where nothing listens: a failure when it is required, else information."""
        required = record["requirement"] == "required"
        return {
            **record,
            "listening": False,
            "ok": not required,
            # nothing answered: the same keys as an answered port, empty
            "server": None,
            "answered_by": None,
            "identified_by": None,
            "pool_resolved": None,
            "tls": None,
            "seen": seen,
            "problem": seen if required else None,
            "evidence": evidence.to_dict() if evidence is not None else None,
        }

    def _identify(self, evidence: ProbeEvidence) -> tuple[str | None, str | None]:
        """The pool server that answered and what says so ("answer", "certificate")."""
        named = answered_by(evidence, self.ctx.pool)
        if named is not None:
            return named, "answer"
        by_certificate = certificate_owner(evidence, self.ctx.pool)
        return by_certificate, ("certificate" if by_certificate else None)

    def _judge(self, evidence: ProbeEvidence) -> str | None:
        """Why this answer does not prove the expected server, or None."""
        if not evidence.ok:
            return evidence.detail
        named = answered_by(evidence, self.ctx.pool)
        by_certificate = certificate_owner(evidence, self.ctx.pool)
        if named and by_certificate and named != by_certificate:
            return f"the answer names {named} but its certificate names {by_certificate}"
        who = named or by_certificate
        if self.expect_server is not None:
            if who is not None and who != self.expect_server:
                return f"answered by {who}, expected {self.expect_server}"
            owner = self.expect_server
        else:
            if who == self.ctx.pool.legacy_fe.name:
                return f"answered by the legacy server {who}, expected a front end behind the VIP"
            owner = who or "the server"
        if evidence.pool_resolved is not None:
            seen = {a.strip() for a in evidence.pool_resolved.split(",") if a.strip()}
            if seen != {self.expected_address}:
                return (
                    f"{owner} resolves {self.pool_name} to {evidence.pool_resolved}, expected "
                    f"{self.expected_address}: its services were not restarted after the change"
                )
        return None
