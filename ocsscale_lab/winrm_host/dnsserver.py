"""The stand-in as a Windows DNS server: the Windows DNS provider's scripts,
carried out against a real DNS server.

A script is recognised only when its body is exactly one of
ocsscale.providers.dns.windows_scripts' bodies (after its `$Name = '...'`
parameter lines). Its effect is then made on the DNS server given with
`--dns-primary` (the lab's BIND), by RFC 2136 updates signed with the TSIG
key given with `--dns-tsig-*`: the record read, the expected-value check,
then each command the script runs (dnscmd /RecordAdd, a TTL changed in
place, dnscmd /RecordDelete) as one update of its own, in the order the
script's body runs its steps (windows_scripts.STEP_TEXT, found in it): the
server goes through every state a Windows DNS server would. Then the
read-back. The answer is the one the PowerShell script prints (OCSSCALE-DNS
lines), and its errors are the script's, with the exit codes dnscmd itself
gives (1722 when the DNS server is unavailable). Which tools the host "has"
is `--dns-tools` (default dnscmd only, as on Windows Server 2003 to 2008 R2).
`--dns-remove-denied` makes every removal fail, as dnscmd does for an account
that may add records but not delete them (a fault: the script's put-back is
then seen at work).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.update

from ocsscale.providers.dns.base import DnsConflict, DnsError, RecordSet, normalise
from ocsscale.providers.dns.query import lookup
from ocsscale.providers.dns.rfc2136 import Rfc2136Provider
from ocsscale.providers.dns.windows_scripts import ERROR_PREFIX, STEP_TEXT, all_scripts
from ocsscale.secrets import Secret

from .sandbox import reachable
from .wsman import CommandOutcome

RPC_UNAVAILABLE = 1722  # what dnscmd exits with when the DNS server cannot be reached
ACCESS_DENIED = 5


class _CommandFailed(Exception):
    """One command of the script failed: its message, as the script words it."""


@dataclass
class DnsServerRole:
    primary: tuple[str, int]
    key_name: str
    algorithm: str
    secret_file: Path
    tools: tuple[str, ...] = ("dnscmd",)
    timeout: float = 5.0
    remove_denied: bool = False

    def _provider(self, zone: str) -> Rfc2136Provider:
        secret = Secret(self.secret_file.read_text(encoding="utf-8").strip(), "stand-in")
        return Rfc2136Provider(
            zone,
            [self.primary],
            key_name=self.key_name,
            algorithm=self.algorithm,
            secret=secret,
            timeout=self.timeout,
        )

    def run(self, tool: str, operation: str, p: dict[str, str], body: str = "") -> CommandOutcome:
        if operation == "detect":
            found = next((t for t in ("dnsserver-module", "dnscmd") if t in self.tools), "none")
            return _out([f"OCSSCALE-DNS tool {found}"])
        if tool not in self.tools:
            program = "dnscmd.exe" if tool == "dnscmd" else "Import-Module DnsServer"
            return _fail(f"The term '{program}' is not recognized on this stand-in.")
        zone, node, rdtype = p["Zone"], p["Node"], p["Type"]
        fqdn = zone if node == "@" else f"{node}.{zone}"
        address, port = self.primary
        try:
            current = lookup(address, port, fqdn, rdtype, self.timeout)
            if operation == "read":
                return _out(_records("read", current))
            expect = _key(p["Expect"].split(","))
            if _key(current.values) != expect:
                return _out(_records("conflict", current))
            values = normalise(rdtype, [v for v in p["Values"].split(",") if v])
            problem = self._replace(zone, fqdn, rdtype, current, values, int(p["Ttl"]), body)
            if problem:
                return _fail(problem + "; the old records were put back")
            return _out(_records("done", lookup(address, port, fqdn, rdtype, self.timeout)))
        except DnsConflict:
            return _out(_records("conflict", lookup(address, port, fqdn, rdtype, self.timeout)))
        except DnsError:
            if tool == "dnscmd":
                command = "/EnumRecords" if operation == "read" else "/RecordDelete"
                return _fail(
                    f"dnscmd {command} {node} failed (exit {RPC_UNAVAILABLE}): Command failed: "
                    f"RPC_S_SERVER_UNAVAILABLE {RPC_UNAVAILABLE} 0x6BA"
                )
            return _fail(
                f"Get-DnsServerResourceRecord {node} failed: Failed to get the zone {zone} "
                "information on server localhost."
            )

    def _replace(
        self,
        zone: str,
        fqdn: str,
        rdtype: str,
        current: RecordSet,
        values: tuple[str, ...],
        ttl: int,
        body: str,
    ) -> str:
        """The replace script's steps, each command one update, in the body's order;
        on a failed command the script's own put-back. The failure's text, or ''."""
        order = sorted(STEP_TEXT, key=lambda step: body.find(STEP_TEXT[step]))
        if any(STEP_TEXT[step] not in body for step in order):
            raise DnsError("the stand-in does not know this replace script's steps")
        old_ttl = current.ttl or ttl
        kept = [v for v in current.values if v in values]
        steps = {
            "add": [("add", v, ttl) for v in values if v not in current.values],
            "retime": [("retime", v, ttl) for v in kept if old_ttl != ttl],
            "remove": [("remove", v, old_ttl) for v in current.values if v not in values],
        }
        done: list[tuple[str, str, int]] = []
        try:
            for step in order:
                for command in steps[step]:
                    self._command(zone, fqdn, rdtype, *command)
                    done.append(command)
        except _CommandFailed as exc:
            undo = {"remove": "add", "retime": "retime", "add": "remove"}
            for first in ("remove", "retime", "add"):  # adding before removing here too
                for what, value, _ in done:
                    if what == first:
                        self._command(zone, fqdn, rdtype, undo[what], value, old_ttl, True)
            # BIND holds one TTL per RRset, so an added value changed the old ones' TTL
            # too; Windows keeps a TTL per record and the old ones never lost theirs
            if done and current.values and old_ttl != ttl:
                self._command(zone, fqdn, rdtype, "retime", current.values[0], old_ttl, True)
            return str(exc)
        return ""

    def _command(
        self, zone: str, fqdn: str, rdtype: str, what: str, value: str, ttl: int, undo: bool = False
    ) -> None:
        """One dnscmd (or WMI Modify) command: one signed update of its own. BIND
        holds one TTL per RRset, so a TTL changed in place is the RRset's."""
        if what == "remove" and self.remove_denied and not undo:
            raise _CommandFailed(
                f"dnscmd /RecordDelete {value} failed (exit {ACCESS_DENIED}): Command failed: "
                f"ERROR_ACCESS_DENIED {ACCESS_DENIED} 0x5"
            )
        provider = self._provider(zone)
        key = provider._key
        update = dns.update.UpdateMessage(
            zone, keyring=key, keyname=key.name, keyalgorithm=key.algorithm
        )
        owner = dns.name.from_text(fqdn)
        # names absolute (an SRV target read without its final dot too): a name left
        # relative would be made relative to the zone when the update is written
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN,
            dns.rdatatype.from_text(rdtype),
            value,
            dns.name.root,
            relativize=False,
        )
        if what == "remove":
            update.delete(owner, rdata)
        else:  # add, or the same value added again with the new TTL (BIND: the RRset's TTL)
            update.add(owner, ttl, rdata)
        try:
            address, port = self.primary
            response = dns.query.tcp(update, address, port=port, timeout=self.timeout)
        except (OSError, EOFError, dns.exception.DNSException) as exc:
            raise DnsError(str(exc)) from None
        if response.rcode() != dns.rcode.NOERROR:
            raise _CommandFailed(
                f"dnscmd {what} {value} failed: {dns.rcode.to_text(response.rcode())}"
            )


def dns_script(body: str) -> tuple[str, str] | None:
    """(tool, operation) when `body` is one of the Windows DNS provider's scripts."""
    return all_scripts().get(body)


def _key(values: tuple[str, ...] | list[str]) -> str:
    # the script's Set-Key: trimmed, final dot dropped, lower case, sorted, unique
    return ",".join(sorted({v.strip().rstrip(".").lower() for v in values if v.strip()}))


def _records(state: str, record: RecordSet) -> list[str]:
    lines = [f"OCSSCALE-DNS {state}"]
    lines += [f"OCSSCALE-DNS-RR {record.ttl} {v}" for v in record.values]
    return lines + ["OCSSCALE-DNS end"]


def _out(lines: list[str]) -> CommandOutcome:
    return CommandOutcome(("\r\n".join(lines) + "\r\n").encode(), b"", 0)


def _fail(message: str) -> CommandOutcome:
    return CommandOutcome(b"", f"{ERROR_PREFIX}{message}\r\n".encode(), 1)


def role_from_arguments(
    primary: str | None,
    key_name: str,
    algorithm: str,
    secret_file: Path | None,
    tools: str,
    remove_denied: bool = False,
) -> DnsServerRole | None:
    if not primary:
        return None
    if secret_file is None:
        raise ValueError("--dns-primary needs --dns-tsig-file")
    host, _, port = primary.rpartition(":") if ":" in primary else (primary, "", "53")
    if not reachable(host):  # the stand-in's own rule: loopback and the lab's range only
        raise ValueError("--dns-primary must be a loopback or lab address")
    dns.tsig.Key(key_name, secret_file.read_text(encoding="utf-8").strip(), algorithm)  # checks it
    chosen = tuple(t for t in tools.split(",") if t)
    return DnsServerRole(
        (host, int(port or 53)),
        key_name,
        algorithm,
        secret_file,
        chosen,
        remove_denied=remove_denied,
    )
