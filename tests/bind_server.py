"""BIND 9 on loopback for the DNS provider tests: the primary for contoso.test
on 127.0.0.1 (a free port), TSIG-signed updates with an hmac-sha256 key.
(named listens only on addresses configured on an interface, so a second
server on 127.0.0.2 would need the host's loopback changed: not done here.)

Lighter than a whole lab (no namespaces), and the same named the lab runs.
Each test seeds the records it uses with a raw dnspython update, so the
provider code under test never prepares its own ground.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update

NAMED = "/usr/sbin/named"
ZONE = "contoso.test"
KEY_NAME = "ocsscale"
PRIMARY = "127.0.0.1"

_ZONE_FILE = """$ORIGIN {zone}.
$TTL 3600
@    IN SOA ns1.{zone}. hostmaster.{zone}. ( 1 3600 600 86400 300 )
@    IN NS  ns1.{zone}.
ns1  IN A   {primary}
ocspool 3600 IN A 10.0.0.30
"""

_OPTIONS = """key "{key}" {{ algorithm hmac-sha256; secret "{secret}"; }};
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ {address}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    allow-transfer {{ key {key}; }};
    dnssec-validation no;
}};
controls {{ }};
logging {{ channel f {{ file "{d}/named.log"; severity info; }}; category default {{ f; }}; }};
"""

_PRIMARY_ZONE = """zone "{zone}" {{
    type primary;
    file "{d}/{zone}.zone";
    update-policy {{ grant {key} zonesub ANY; }};
    notify no;
}};
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((PRIMARY, 0))
        return int(s.getsockname()[1])


@dataclass
class Bind:
    directory: Path
    port: int = 0
    secret: str = ""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    last_error: str = ""

    @property
    def secret_file(self) -> Path:
        return self.directory / "tsig-secret"

    @property
    def journal(self) -> Path:
        """The primary's zone journal: every update, one transaction each."""
        return self.directory / "primary" / f"{ZONE}.zone.jnl"

    def start(self) -> Bind:
        self.port = free_port()
        self.secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self.secret_file.write_text(self.secret + "\n")
        self.secret_file.chmod(0o600)
        try:
            self._start()
        except BaseException:
            self.stop()  # never leave a named behind
            raise
        return self

    def _start(self) -> None:
        for role, address in (("primary", PRIMARY),):
            d = self.directory / role
            d.mkdir(parents=True, exist_ok=True)
            values = dict(
                d=d,
                port=self.port,
                address=address,
                key=KEY_NAME,
                secret=self.secret,
                zone=ZONE,
                primary=PRIMARY,
            )
            conf = _OPTIONS.format(**values)
            (d / f"{ZONE}.zone").write_text(_ZONE_FILE.format(**values))
            conf += _PRIMARY_ZONE.format(**values)
            (d / "named.conf").write_text(conf)
            self.processes.append(
                subprocess.Popen(
                    [NAMED, "-f", "-4", "-n", "1", "-c", str(d / "named.conf")],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        self.wait_for(lambda: self.soa_serial(PRIMARY) is not None)

    def wait_for(self, condition: object, what: str = "named to answer") -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if condition():  # type: ignore[operator]
                    return
            except (OSError, EOFError, dns.exception.DNSException) as exc:
                self.last_error = repr(exc)
            time.sleep(0.1)
        log = "".join(
            p.read_text()[-1500:] for p in self.directory.glob("*/named.log") if p.is_file()
        )
        raise RuntimeError(f"timed out waiting for {what} ({self.last_error}): {log}")

    def soa_serial(self, address: str) -> int | None:
        query = dns.message.make_query(ZONE, "SOA")
        response = dns.query.tcp(query, address, port=self.port, timeout=2)
        if response.rcode() != dns.rcode.NOERROR or not response.answer:
            return None
        return int(response.answer[0][0].serial)

    def read(self, name: str, rdtype: str = "A", address: str = PRIMARY) -> tuple[set[str], int]:
        response = dns.query.tcp(
            dns.message.make_query(name, rdtype), address, port=self.port, timeout=2
        )
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.from_text(rdtype):
                return {r.to_text() for r in rrset}, rrset.ttl
        return set(), 0

    def set(self, name: str, rdtype: str, values: list[str], ttl: int) -> None:
        """Seed a record (signed raw update; not the code under test)."""
        key = dns.tsig.Key(KEY_NAME, self.secret, "hmac-sha256")
        update = dns.update.UpdateMessage(ZONE, keyring=key)
        update.replace(name + ".", ttl, rdtype, *values)
        response = dns.query.tcp(update, PRIMARY, port=self.port, timeout=5)
        assert response.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(response.rcode())

    def remove(self, name: str, rdtype: str, value: str) -> None:
        """Remove one value (the apex NS RRset cannot be replaced as a whole:
        RFC 2136 3.4.2.4 ignores the deletion of every NS of the apex)."""
        key = dns.tsig.Key(KEY_NAME, self.secret, "hmac-sha256")
        update = dns.update.UpdateMessage(ZONE, keyring=key)
        update.delete(name + ".", rdtype, value)
        response = dns.query.tcp(update, PRIMARY, port=self.port, timeout=5)
        assert response.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(response.rcode())

    def clear(self, name: str) -> None:
        """Remove every record of `name` (a test's own name, once it is done: the
        inventory of a later test reads the whole zone)."""
        key = dns.tsig.Key(KEY_NAME, self.secret, "hmac-sha256")
        update = dns.update.UpdateMessage(ZONE, keyring=key)
        update.delete(name + ".")
        response = dns.query.tcp(update, PRIMARY, port=self.port, timeout=5)
        assert response.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(response.rcode())

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.processes.clear()


def bind_unavailable() -> str | None:
    if not os.access(NAMED, os.X_OK):
        return f"BIND 9 is not installed ({NAMED})"
    return None


JOURNALPRINT = "/usr/bin/named-journalprint"


def rrset_history(journal: Path, name: str, rdtype: str = "A") -> list[tuple[frozenset[str], int]]:
    """The RRset `name` `rdtype` after each update that touched it, replayed from
    named's zone journal (each update is one transaction there: `del` the old
    SOA, the deletions, `add` the new SOA, the additions). What a resolver could
    ever have been answered, with no polling to miss a moment: an empty set in
    this list is a moment when the name had no such record."""
    text = subprocess.run(
        [JOURNALPRINT, str(journal)], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    owner = name.rstrip(".").lower() + "."
    values: dict[str, int] = {}
    history: list[tuple[frozenset[str], int]] = []
    touched = False

    def close() -> None:
        if touched:
            history.append((frozenset(values), min(values.values(), default=0)))

    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6 or parts[0] not in ("del", "add"):
            continue
        op, rr_name, ttl, _, rr_type, rdata = parts
        if rr_type == "SOA" and op == "del":  # a new transaction begins
            close()
            touched = False
        if rr_name.lower() != owner or rr_type != rdtype.upper():
            continue
        touched = True
        if op == "del":
            values.pop(rdata.lower(), None)
        else:
            values[rdata.lower()] = int(ttl)
    close()
    return history
