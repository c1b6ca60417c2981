"""The lab's AD replication stand-in (`lab up --dns ad`): copies the zone's
changes from the first DNS server to the others, `--delay` seconds late.

    python -m ocsscale_lab.dnsrepl --zone Z --source ADDR --targets A,B --delay S
        --tsig-name N --tsig-algorithm ALG --tsig-file PATH

Every POLL seconds it reads the source's SOA serial; a new serial means a
change: the zone is transferred (AXFR, TSIG-signed) and, once `--delay` has
passed, every RRset but the SOA that differs on a target is replaced there by
one TSIG-signed RFC 2136 update. Each target's serial moves on by itself (its
own count), as a domain controller's does. Runs as a lab service (tracked by
pid, stopped by `lab down`); every question has a timeout, and a target that
does not answer is tried again on the next round.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update

POLL = 0.25
TIMEOUT = 3.0
#: changes waiting out the delay, at most (older ones are superseded anyway)
MAX_PENDING = 100

Zone = dict[tuple[str, str], tuple[int, frozenset[str]]]


def serial(address: str, zone: str) -> int | None:
    response = dns.query.tcp(dns.message.make_query(zone, "SOA"), address, timeout=TIMEOUT)
    if response.rcode() != dns.rcode.NOERROR or not response.answer:
        return None
    return int(response.answer[0][0].serial)


def transfer(address: str, zone: str, key: dns.tsig.Key) -> Zone:
    records: Zone = {}
    messages = dns.query.xfr(
        address, zone, keyring={key.name: key}, keyname=key.name, keyalgorithm=key.algorithm,
        timeout=TIMEOUT, lifetime=TIMEOUT * 3, relativize=False,
    )  # fmt: skip
    for message in messages:
        for rrset in message.answer:
            rdtype = dns.rdatatype.to_text(rrset.rdtype)
            if rdtype == "SOA":
                continue
            values = frozenset(r.to_text() for r in rrset)
            records[(rrset.name.to_text(), rdtype)] = (rrset.ttl, values)
    return records


def push(address: str, zone: str, key: dns.tsig.Key, wanted: Zone) -> int:
    """Make the target hold `wanted` (every RRset but the SOA); RRsets changed."""
    current = transfer(address, zone, key)
    update = dns.update.UpdateMessage(
        zone, keyring=key, keyname=key.name, keyalgorithm=key.algorithm
    )
    changed = 0
    for (name, rdtype), (ttl, values) in wanted.items():
        if current.get((name, rdtype)) != (ttl, values):
            update.replace(dns.name.from_text(name), ttl, rdtype, *sorted(values))
            changed += 1
    for name, rdtype in current.keys() - wanted.keys():
        if rdtype != "NS":  # the apex NS set is the same everywhere
            update.delete(dns.name.from_text(name), rdtype)
            changed += 1
    if changed:
        response = dns.query.tcp(update, address, timeout=TIMEOUT)
        if response.rcode() != dns.rcode.NOERROR:
            raise dns.exception.DNSException(dns.rcode.to_text(response.rcode()))
    return changed


def run(zone: str, source: str, targets: Sequence[str], delay: float, key: dns.tsig.Key) -> None:
    pending: deque[tuple[float, Zone]] = deque(maxlen=MAX_PENDING)
    due: dict[str, Zone] = {}  # per target: the newest zone whose delay has passed
    last: int | None = None
    while True:
        try:
            now_serial = serial(source, zone)
            if now_serial is not None and now_serial != last:
                pending.append((time.monotonic() + delay, transfer(source, zone, key)))
                if last is not None:
                    print(
                        f"change on {source} (serial {now_serial}): due in {delay:g} s", flush=True
                    )
                last = now_serial
        except (OSError, EOFError, dns.exception.DNSException) as exc:
            print(f"source {source}: {type(exc).__name__}", flush=True)
        while pending and pending[0][0] <= time.monotonic():
            records = pending.popleft()[1]
            due.update({t: records for t in targets})
        for target, records in list(due.items()):
            try:
                changed = push(target, zone, key, records)
            except (OSError, EOFError, dns.exception.DNSException) as exc:
                print(f"target {target}: {type(exc).__name__}: tried again", flush=True)
                continue
            del due[target]
            if changed:
                print(f"replicated {changed} RRset(s) to {target}", flush=True)
        time.sleep(POLL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocsscale_lab.dnsrepl")
    parser.add_argument("--zone", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--targets", required=True, help="comma list, or - for none")
    parser.add_argument("--delay", type=float, required=True)
    parser.add_argument("--tsig-name", required=True)
    parser.add_argument("--tsig-algorithm", default="hmac-sha256")
    parser.add_argument("--tsig-file", type=Path, required=True)
    args = parser.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t and t != "-"]
    secret = args.tsig_file.read_text(encoding="utf-8").strip()
    key = dns.tsig.Key(args.tsig_name, secret, args.tsig_algorithm)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"replicating {args.zone} from {args.source} to {targets or 'nobody'}", flush=True)
    run(args.zone, args.source, targets, args.delay, key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
