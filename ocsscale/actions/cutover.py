"""cutover.inventory and cutover.no_pins: the read-only checks that open the cutover.

cutover.inventory (args: `name` the pool FQDN, `legacy` the legacy FE's address,
`domain` the SIP domain; without it, a service that is not SIP: no sip.<domain>
and no SIP SRV records are looked at).
  Reads: every record of the zone (rfc2136: a TSIG-signed AXFR from the first
  of dns.servers; BIND needs `allow-transfer { key NAME; };` for the key, else
  only the listed names are looked up and the evidence says so), or, for the
  windows and manual providers (no zone transfer), the listed names: the pool
  name, sip.<domain>, dns.names, dns.acknowledge. Then: every A record holding
  the legacy address, every CNAME pointing at the pool name or at one of those
  names, and the SIP SRV records (_sipinternaltls._tcp, _sipinternal._tcp,
  _sip._tls of <domain>): targeting the pool name, fine; targeting the legacy
  FE's own host name, retargeted with the pool name (config/dnsnames.py);
  absent: information. A name dns.keep lists is shown as staying.
  Stops the run (CheckFailed) on a CNAME, an A record for the legacy address
  under a name the pool file does not list, or an SRV record aiming elsewhere,
  unless each is in `dns.acknowledge` or the operator acknowledges them at the
  terminal; with nobody to ask it stops naming them and how to acknowledge. A
  name that moves holding neither the legacy address nor the VIP stops it
  without asking (its guarded move would refuse it half-way through).
  Changes nothing. Evidence: the table of names.

cutover.no_pins (args: `host`).
  Reads the host's hosts file over its transport: no line of the tool's
  block (transports/hostsfile.py) may be left, else it stops naming the host
  and each line. Changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config.dnsnames import SRV_LABELS
from ..config.dnsnames import srv_target as pool_srv_target
from ..errors import CheckFailed, Declined, UsageError
from ..operator import OperatorUnavailable
from ..providers.dns import DnsError
from ..providers.dns.query import lookup
from ..providers.dns.rfc2136 import TransferRefused
from ..transports import hostsfile
from .args import ActionArgs, Address, DnsName, HostName
from .base import Action, Change, Context, Json, register
from .dns import srv_target
from .hosts import hosts_file_path
from .plugin_ports import open_provider

SRV_NAMES = SRV_LABELS

# what each row of the table is, and whether it stops the run
MOVES, LISTED, OWN, SRV_OK, ABSENT_INFO = "moves", "listed", "own", "srv-ok", "absent"
SRV_MOVES, KEPT, FOREIGN = "srv-moves", "kept", "foreign"
UNLISTED, CNAME, SRV_ELSEWHERE = "unlisted", "cname", "srv-elsewhere"
STOPS = (UNLISTED, CNAME, SRV_ELSEWHERE)

_SAY = {
    MOVES: "the pool name: moves to the VIP now",
    LISTED: "resolves to the legacy FE: moves to the VIP with the pool name",
    OWN: "the legacy FE's own record: stays until it is decommissioned",
    SRV_OK: "targets the pool name: follows the cutover",
    SRV_MOVES: "targets the legacy FE: retargeted to the pool name with it",
    KEPT: "kept where it is (dns.keep): still the legacy FE, which breaks at decommission",
    FOREIGN: "moves with the pool name, but holds neither the legacy FE nor the VIP: the "
    "guarded move would refuse it; list it in dns.keep, or point it at the legacy FE",
    ABSENT_INFO: "absent",
    UNLISTED: "resolves to the legacy FE under a name the pool file does not list",
    CNAME: "a CNAME to the pool name or the legacy FE: clients follow it to whatever it names",
    SRV_ELSEWHERE: "does not target the pool name",
}


def _n(name: str) -> str:
    return name.rstrip(".").lower()


class CutoverInventoryArgs(ActionArgs):
    name: DnsName
    legacy: Address
    #: the SIP domain; not given: not a SIP service (generic-tls), no SIP names
    domain: DnsName | None = None


class CutoverNoPinsArgs(ActionArgs):
    host: HostName


@register
class CutoverInventory(Action):
    """Every name pointing at the legacy FE, shown before the cutover (module docstring)."""

    name = "cutover.inventory"
    read_only = True

    Args = CutoverInventoryArgs
    params: CutoverInventoryArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.pool_name = _n(self.params.name)
        self.legacy = self.params.legacy
        # no domain: not a SIP service (generic-tls), no SIP names to look at
        self.domain = _n(self.params.domain) if self.params.domain is not None else None
        self.settings = ctx.pool.dns

    def targets(self) -> list[str]:
        host = getattr(self.settings, "host", None)  # the Windows DNS server
        return [f"dns:{self.settings.zone}"] + ([host.name] if host is not None else [])

    def describe(self) -> list[Change]:
        moving = sorted(self.listed() - self.kept())
        kept = sorted(self.kept())
        return [
            Change(
                "check",
                f"dns:{self.settings.zone}",
                f"every name resolving to the legacy FE {self.legacy}"
                + (f" and the SIP SRV records of {self.domain}" if self.domain else "")
                + "; a CNAME or an unlisted name stops the run unless acknowledged; "
                + f"moving with {self.pool_name}: {', '.join(moving) or 'no other name'}"
                + (
                    f" (and each SIP SRV record targeting {self.legacy_fqdn()})"
                    if self.domain
                    else ""
                )
                + f"; staying (dns.keep): {', '.join(kept) or 'none'}",
            )
        ]

    # -- what the pool file says ---------------------------------------------
    def listed(self) -> set[str]:
        """The names that move with the pool name, and those dns.keep leaves."""
        return {*self.sip_names()[:1], *(_n(n) for n in self.settings.names), *self.kept()}

    def kept(self) -> set[str]:
        return {_n(n) for n in self.settings.keep}

    def legacy_fqdn(self) -> str:
        return _n(self.ctx.pool.legacy_fe.fqdn)

    def acknowledged(self) -> set[str]:
        return {_n(n) for n in self.settings.acknowledge}

    def srv_names(self) -> list[str]:
        return self.sip_names()[1:]

    def sip_names(self) -> list[str]:
        """sip.<domain>, then the SIP SRV names; none without a SIP domain."""
        if self.domain is None:
            return []
        return [f"sip.{self.domain}", *(f"{label}.{self.domain}" for label in SRV_NAMES)]

    # -- reading the zone ----------------------------------------------------
    def records(self) -> tuple[str, list[tuple[str, str, int, str]]]:
        """(where they came from, the records) of the zone, or of the listed names."""
        provider = open_provider(self.ctx)
        transfer = getattr(provider, "transfer", None)
        note = "zone transfer (AXFR)"
        if transfer is not None:
            try:
                return note, transfer()
            except TransferRefused as exc:
                note = (
                    f"lookups of the listed names only: {exc.message}; allow it with "
                    "`allow-transfer { key NAME; };`, or list every name in dns.names"
                )
        else:
            note = f"lookups of the listed names only ({self.settings.provider}: no zone transfer)"
        names = {self.pool_name, *self.listed(), *self.acknowledged()}
        found: list[tuple[str, str, int, str]] = []
        for name in sorted(names):
            for rdtype in ("A", "CNAME"):
                record = provider.lookup(name, rdtype)
                found += [(name, rdtype, record.ttl or 0, v) for v in record.values]
        server = self._server()
        for name in self.srv_names():
            record = lookup(server, self.settings.port, name, "SRV", self.settings.timeout)
            found += [(name, "SRV", record.ttl or 0, v) for v in record.values]
        return note, found

    def _server(self) -> str:
        if self.settings.servers:
            return str(self.settings.servers[0])
        host = getattr(self.settings, "host", None)
        if host is None:
            raise UsageError("list the zone's servers in dns.servers")
        return str(host.address)

    # -- the table -----------------------------------------------------------
    def table(self, records: list[tuple[str, str, int, str]]) -> list[dict[str, Json]]:
        legacy_names = {_n(spec.fqdn) for spec in [self.ctx.pool.legacy_fe]}
        to_legacy = {n for n, t, _, v in records if t == "A" and v == self.legacy}
        moving = self.listed() - self.kept() - {self.pool_name}
        vip = str(self.ctx.pool.load_balancer.vip.ip)
        rows: list[dict[str, Json]] = []
        for name, rdtype, ttl, value in sorted(records):
            if rdtype == "A" and name in moving and value not in (self.legacy, vip):
                kind = FOREIGN
            elif rdtype == "A" and value == self.legacy:
                kind = (
                    MOVES
                    if name == self.pool_name
                    else OWN
                    if name in legacy_names
                    else KEPT
                    if name in self.kept()
                    else LISTED
                    if name in self.listed()
                    else UNLISTED
                )
            elif rdtype == "CNAME" and _n(value) in {self.pool_name, *to_legacy}:
                kind = CNAME
            elif rdtype == "SRV" and name in self.srv_names():
                target = srv_target(value)
                if target in (self.pool_name, pool_srv_target(self.ctx.pool)):
                    kind = SRV_OK
                elif target == self.legacy_fqdn():
                    kind = KEPT if name in self.kept() else SRV_MOVES
                else:
                    kind = SRV_ELSEWHERE
            else:
                continue
            rows.append({"name": name, "type": rdtype, "ttl": ttl, "value": value, "kind": kind})
        seen = {r["name"] for r in rows}
        for name in self.sip_names():
            if name not in seen:
                rows.append({"name": name, "type": "-", "ttl": None, "value": "", "kind": "absent"})
        return rows

    def apply(self, current: Json) -> Json:
        try:
            source, records = self.records()
        except DnsError as exc:
            raise CheckFailed(
                f"the inventory of {self.settings.zone} failed: {exc.message}"
            ) from None
        rows = self.table(records)
        foreign = [r for r in rows if r["kind"] == FOREIGN]
        if foreign:
            # never acknowledged: the guarded move of that name would refuse it
            # half-way through the cutover
            raise CheckFailed(
                "; ".join(f"{r['name']} A {r['value']}" for r in foreign)
                + f": {_SAY[FOREIGN]}; nothing was changed",
                hint="dns.keep: [" + ", ".join(sorted({str(r["name"]) for r in foreign})) + "]",
            )
        acknowledged = self.acknowledged()
        for row in rows:
            row["acknowledged"] = row["kind"] in STOPS and row["name"] in acknowledged
        self.ctx.emit(
            "findings",
            {
                "title": f"names of {self.settings.zone} pointing at the legacy FE "
                f"{self.legacy} ({source})",
                "findings": [_finding(r) for r in rows],
            },
        )
        open_rows = [r for r in rows if r["kind"] in STOPS and not r["acknowledged"]]
        if open_rows:
            self._ask(open_rows)
            for row in open_rows:
                row["acknowledged"] = "at the terminal"
        return {"source": source, "legacy": self.legacy, "names": rows}

    def _ask(self, rows: list[dict[str, Json]]) -> None:
        names = sorted({str(r["name"]) for r in rows})
        shown = "; ".join(f"{r['name']} {r['type']} {r['value']}: {_SAY[r['kind']]}" for r in rows)
        operator = self.ctx.operator
        try:
            operator.tell(
                "Names that still point at the legacy FE",
                [f"{r['name']} {r['type']} {r['value']}: {_SAY[r['kind']]}" for r in rows],
            )
            answer = operator.ask(
                f"Acknowledge {', '.join(names)} and cut over anyway?", ["yes", "no"], "no"
            )
        except OperatorUnavailable:
            answer = None
        except Declined:
            answer = "no"
        if answer == "yes":
            return
        why = "nobody at a terminal acknowledged them" if answer is None else "not acknowledged"
        raise CheckFailed(
            f"the inventory found names that point at the legacy FE ({why}): {shown}; "
            "nothing was changed",
            hint="change them first, or add them to dns.acknowledge in the pool file "
            f"([{', '.join(names)}]), or run the cutover from a terminal and acknowledge them",
        )


def _finding(row: Mapping[str, Json]) -> dict[str, Json]:
    check = f"{row['name']} {row['type']}" + (f" {row['value']}" if row["value"] else "")
    message = _SAY[str(row["kind"])]
    if row["kind"] in STOPS:
        if row["acknowledged"]:
            return {"check": check, "ok": True, "proven": False, "message": message + " (ack)"}
        return {"check": check, "ok": False, "message": message}
    info = row["kind"] in (ABSENT_INFO, LISTED, OWN, KEPT)
    return {"check": check, "ok": True, "info": info, "message": message}


@register
class CutoverNoPins(Action):
    """No hosts-file pin of the tool left on `host` (module docstring)."""

    name = "cutover.no_pins"
    parallel = True
    read_only = True

    Args = CutoverNoPinsArgs
    params: CutoverNoPinsArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.host_name = self.params.host

    def targets(self) -> list[str]:
        return [self.host_name]

    def describe(self) -> list[Change]:
        return [Change("check", self.host_name, "no pin of ocsscale left in the hosts file")]

    def apply(self, current: Json) -> Json:
        host = self.ctx.host(self.host_name)
        path = hosts_file_path(self.ctx.pool, self.host_name, host)
        data = host.read_file(path)
        try:
            pins = hostsfile.pins(data)
        except hostsfile.HostsFileError as exc:
            raise CheckFailed(f"{self.host_name}: {path}: {exc.message}") from None
        if pins:
            lines = "; ".join(f"'{address} {name}'" for name, address in sorted(pins.items()))
            raise CheckFailed(
                f"{self.host_name}: {path} still holds the pin{'s' if len(pins) > 1 else ''} "
                f"{lines} in the ocsscale block: clients there would not follow the DNS change",
                hint="finish or roll back the phase that pinned it (`ocsscale rollback --to "
                "validate-fe` or `--to validate-lb`), or remove the ocsscale block by hand",
            )
        return {"host": self.host_name, "path": path, "sha256": hostsfile.sha256(data)}
