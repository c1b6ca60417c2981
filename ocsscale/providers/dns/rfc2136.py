"""rfc2136: TSIG-signed dynamic updates (RFC 2136) to the zone's primary server.

One UPDATE message over TCP carries the whole change: a prerequisite that the
RRset still holds exactly the expected values (RFC 2136 2.4.2, "RRset exists,
value dependent"; 2.4.3 "RRset does not exist" when nothing was expected),
then the RRset's deletion and the new values' addition. The server applies
all of it or nothing, so a concurrent change is refused (NXRRSET), never
overwritten. The first of `dns.servers` is updated and read back.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence

import dns.exception
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tsig
import dns.update

from ...config.model import Rfc2136Dns
from ...errors import UsageError
from ...secrets import Secret
from ..plugin import Ports, fixed
from .base import PROVIDERS, DnsConflict, DnsError, ProviderBase, RecordSet, conflict
from .query import dns_errors, lookup, server_label

#: the pool file's algorithm names, as TSIG puts them on the wire (RFC 8945)
_ALGORITHMS = {
    "hmac-md5": dns.tsig.HMAC_MD5,  # HMAC-MD5.SIG-ALG.REG.INT: only when the pool file asks
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
}


class TransferRefused(DnsError):
    """The server does not let the pool file's key transfer the zone."""


class Rfc2136Provider(ProviderBase):
    kind = "rfc2136"

    def __init__(
        self,
        zone: str,
        servers: Sequence[tuple[str, int]],
        *,
        key_name: str,
        algorithm: str,
        secret: Secret,
        timeout: float = 10.0,
    ) -> None:
        if not servers:
            raise UsageError("rfc2136 needs at least one server (dns.servers)")
        self.zone = zone.rstrip(".")
        self.address, self.port = servers[0]
        self.timeout = timeout
        self.key_name = key_name
        self.algorithm = algorithm
        wire_algorithm = _ALGORITHMS.get(algorithm)
        if wire_algorithm is None:
            raise UsageError(f"unknown TSIG algorithm {algorithm!r}: {', '.join(_ALGORITHMS)}")
        try:
            # the Key object keeps the material; messages only ever name key_name
            self._key = dns.tsig.Key(key_name, secret.reveal(), wire_algorithm)
        except (binascii.Error, ValueError, dns.exception.DNSException):
            raise UsageError(
                f"the TSIG secret of key {key_name} ({secret.source}) is not valid base64"
            ) from None

    @classmethod
    def from_settings(cls, settings: Rfc2136Dns, ports: Ports) -> Rfc2136Provider:
        """Built from the pool file's `dns`; a secret file is read relative to the
        pool file (ports.base_dir), at the moment it is needed."""
        from ...config.credentials import resolve_ref

        if settings.tsig is None:
            raise UsageError("rfc2136 needs dns.tsig in the pool file")
        base = ports.base_dir
        return cls(
            settings.zone,
            [(str(s), settings.port) for s in settings.servers],
            key_name=settings.tsig.name,
            algorithm=settings.tsig.algorithm,
            secret=resolve_ref(settings.tsig.secret, base),
            timeout=settings.timeout,
        )

    def where(self) -> str:
        return server_label(self.address, self.port)

    def lookup(self, name: str, rdtype: str) -> RecordSet:
        return lookup(self.address, self.port, name, rdtype, self.timeout)

    def transfer(self) -> list[tuple[str, str, int, str]]:
        """Every record of the zone (AXFR, signed with the pool file's key), as
        (absolute name, type, TTL, value). TransferRefused when the server does
        not allow the key to transfer the zone (BIND: `allow-transfer { key NAME; }`)."""
        where = self.where()
        records: list[tuple[str, str, int, str]] = []
        with dns_errors(where, f"transferring {self.zone}"):
            messages = dns.query.xfr(
                self.address,
                self.zone,
                port=self.port,
                timeout=self.timeout,
                lifetime=self.timeout * 3,
                keyring={self._key.name: self._key},
                keyname=self._key.name,
                keyalgorithm=self._key.algorithm,
                relativize=False,
            )
            try:
                for message in messages:
                    for rrset in message.answer:
                        rdtype = dns.rdatatype.to_text(rrset.rdtype)
                        name = rrset.name.to_text().rstrip(".").lower()
                        records += [(name, rdtype, rrset.ttl, r.to_text()) for r in rrset]
            except dns.query.TransferError as exc:
                raise TransferRefused(
                    f"{where} refused the zone transfer of {self.zone} to key "
                    f"{self.key_name} ({dns.rcode.to_text(exc.rcode)})"
                ) from None
        return records

    def _change(
        self, name: str, rdtype: str, values: tuple[str, ...], ttl: int, expect: tuple[str, ...]
    ) -> None:
        update = dns.update.UpdateMessage(
            self.zone, keyring=self._key, keyname=self._key.name, keyalgorithm=self._key.algorithm
        )
        owner = dns.name.from_text(name)
        if expect:
            update.present(owner, _rdataset(rdtype, expect, 0))
        else:
            update.absent(owner, rdtype)
        update.delete(owner, rdtype)
        update.add(owner, _rdataset(rdtype, values, ttl))
        what = f"updating {name} {rdtype} (TSIG key {self.key_name}, {self.algorithm})"
        with dns_errors(self.where(), what):
            response = dns.query.tcp(update, self.address, port=self.port, timeout=self.timeout)
        rcode = response.rcode()
        if rcode == dns.rcode.NOERROR:
            return
        if rcode in (dns.rcode.NXRRSET, dns.rcode.YXRRSET, dns.rcode.NXDOMAIN):
            raise conflict(self.where(), name, rdtype, self.lookup(name, rdtype), expect)
        if rcode == dns.rcode.NOTAUTH:
            raise DnsError(
                f"{self.where()} refused the update of {name} (NOTAUTH): it is not the "
                f"primary for {self.zone}, or does not accept key {self.key_name}"
            )
        if rcode == dns.rcode.REFUSED:
            raise DnsError(
                f"{self.where()} refused the update of {name} (REFUSED): its update policy "
                f"does not let key {self.key_name} change this name"
            )
        raise DnsError(f"{self.where()} answered {dns.rcode.to_text(rcode)} to {what}")


def _rdataset(rdtype: str, values: Sequence[str], ttl: int) -> dns.rdataset.Rdataset:
    return dns.rdataset.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), ttl, *values)


PROVIDERS.add(
    "rfc2136",
    Rfc2136Dns,
    Rfc2136Provider.from_settings,
    capabilities=fixed(Rfc2136Provider.capabilities),
)

__all__ = ["DnsConflict", "Rfc2136Provider", "TransferRefused"]
