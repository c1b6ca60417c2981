"""Plain DNS questions to one authoritative server (dnspython, over TCP).

Non-recursive: the answer is what that server itself holds, never a cache.
Every library error becomes a DnsError naming the server and the cause.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig

from .base import ABSENT, DnsError, RecordSet, canonical_text


def server_label(address: str, port: int) -> str:
    return f"DNS server {address}:{port}" if port != 53 else f"DNS server {address}"


@contextmanager
def dns_errors(where: str, what: str) -> Iterator[None]:
    """dnspython and socket errors as DnsError (the text names no secret: TSIG
    errors are named by their code, never by the key material)."""
    try:
        yield
    except DnsError:
        raise
    except dns.tsig.PeerBadKey:
        raise DnsError(
            f"{where} does not know the TSIG key named in the pool file ({what}): "
            "check dns.tsig.name and algorithm against the server's key"
        ) from None
    except (dns.tsig.PeerBadSignature, dns.tsig.BadSignature):
        raise DnsError(
            f"{where} refused the TSIG signature ({what}): the secret does not match "
            "the server's key"
        ) from None
    except (dns.tsig.PeerBadTime, dns.tsig.PeerBadTruncation) as exc:
        raise DnsError(
            f"{where} refused the TSIG signature ({what}): {type(exc).__name__}"
        ) from None
    except dns.exception.Timeout:
        raise DnsError(f"{where} did not answer in time ({what})") from None
    except ConnectionRefusedError:
        raise DnsError(
            f"{where} refused the connection ({what}): is the DNS server running?"
        ) from None
    except (TimeoutError, OSError, EOFError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise DnsError(f"{where} cannot be reached ({what}): {reason}") from None
    except dns.exception.DNSException as exc:
        raise DnsError(f"{where}: {what} failed: {type(exc).__name__}") from None


def ask(address: str, port: int, name: str, rdtype: str, timeout: float) -> dns.message.Message:
    """One non-recursive question over TCP; the response (rcode unchecked)."""
    query = dns.message.make_query(dns.name.from_text(name), rdtype)
    query.flags &= ~dns.flags.RD
    with dns_errors(server_label(address, port), f"asking {name} {rdtype}"):
        return dns.query.tcp(query, address, port=port, timeout=timeout)


def lookup(address: str, port: int, name: str, rdtype: str, timeout: float) -> RecordSet:
    """The RRset `name rdtype` as that server holds it (ABSENT for NXDOMAIN or no data)."""
    where = server_label(address, port)
    response = ask(address, port, name, rdtype, timeout)
    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return ABSENT
    if rcode != dns.rcode.NOERROR:
        raise DnsError(f"{where} answered {dns.rcode.to_text(rcode)} for {name} {rdtype}")
    if not response.flags & dns.flags.AA:
        raise DnsError(
            f"{where} is not authoritative for {name}: list the zone's own servers in dns.servers"
        )
    qname = dns.name.from_text(name)
    wanted = dns.rdatatype.from_text(rdtype)
    for rrset in response.answer:
        if rrset.name == qname and rrset.rdtype == wanted:
            values = (canonical_text(rdtype, r.to_text()) for r in rrset)
            return RecordSet(tuple(sorted(values)), rrset.ttl)
    return ABSENT


def soa_serial(address: str, port: int, zone: str, timeout: float) -> int:
    record = lookup(address, port, zone, "SOA", timeout)
    if not record.values:
        raise DnsError(f"{server_label(address, port)} has no SOA for {zone}")
    return int(record.values[0].split()[2])


def name_servers(address: str, port: int, zone: str, timeout: float) -> list[tuple[str, str]]:
    """The zone's NS set as `address` holds it: (NS name, IPv4 address) pairs,
    the addresses looked up on the same server (in-zone glue or A records)."""
    servers = []
    for target in lookup(address, port, zone, "NS", timeout).values:
        found = lookup(address, port, target, "A", timeout).values
        if not found:
            raise DnsError(
                f"{server_label(address, port)}: the name server {target} of {zone} has no "
                "A record there, so it cannot be asked"
            )
        servers += [(target, a) for a in found]
    return servers
