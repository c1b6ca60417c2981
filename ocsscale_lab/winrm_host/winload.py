"""The stand-in's `load_burst`: the client load's requests, carried out for real.

As load_burst.ps1.j2 does on Windows: each request resolves the name as the
host resolves it (its hosts file, then its DNS server, with its cache), connects
from the host's own address, and for a "tls" target completes a TLS handshake
that verifies the server's certificate and name against the host's trust store:
the CA given with `--trusted-ca` (a domain member trusts its enterprise CA), else
the system's. Failures are classed and worded as .NET words them, so the caller
reads one answer whichever host sent it. Where it differs from a .NET 3.5 client:
it offers TLS 1.0 up to 1.3 (a 2008 R2 host offers TLS 1.2 only once enabled in
its registry), and it checks no revocation.

Only loopback and lab addresses are ever contacted (Sandbox.tcp_check's rule).
"""

from __future__ import annotations

import base64
import contextlib
import ssl
import time
from pathlib import Path
from typing import Any

from ocsscale.probes.evidence import CertSummary
from ocsscale.probes.session import name_matches
from ocsscale.probes.tlsclient import TlsOptions, allow_legacy_tls, build_client_context

from .sandbox import Sandbox, reachable
from .winservices import StandInError

MAX_COUNT = 50
MAX_MS = 10000

_RESOLVE_TEXT = {
    "HostNotFound": "No such host is known",
    "NoData": "The requested name is valid, but no data of the requested type was found",
    "TryAgain": "This is usually a temporary error during hostname resolution and means"
    " that the local server did not receive a response from an authoritative server",
}
_CERT_INVALID = "The remote certificate is invalid according to the validation procedure."
_SSPI = "A call to SSPI failed, see inner exception."
_CLOSED = "Authentication failed because the remote party has closed the transport stream."


def _bounded(params: dict[str, str], name: str, low: int, high: int) -> int:
    value = int(params[name])  # as [int] does: a bad value fails the script
    if not low <= value <= high:
        raise StandInError(f"{name} must be {low}-{high}")
    return value


def _targets(text: str) -> list[tuple[int, str]]:
    targets = []
    for item in text.split(","):
        pair = item.split(":")
        if len(pair) != 2 or pair[1] not in ("tls", "tcp"):
            raise StandInError("Targets must be PORT:tls or PORT:tcp items")
        targets.append((int(pair[0]), pair[1]))
    return targets


def trust_context(trusted_ca: Path | None) -> ssl.SSLContext:
    """The host's trust store. The name is matched after the handshake, as Windows
    matches it: the subject CN or a DNS SAN (the walkthrough's certificate names the
    pool only as its subject). TLS 1.0 is offered too, as a .NET 3.5 client does."""
    options = TlsOptions(verify=True, ca_bundle=str(trusted_ca) if trusted_ca else None)
    context = build_client_context(options)
    allow_legacy_tls(context)
    return context


def load_burst(sandbox: Sandbox, context: ssl.SSLContext, params: dict[str, str]) -> dict[str, Any]:
    started = time.monotonic()
    count = _bounded(params, "Count", 1, MAX_COUNT)
    interval = _bounded(params, "IntervalMs", 0, MAX_MS)
    duration = _bounded(params, "DurationMs", 1, MAX_MS)
    timeout = _bounded(params, "TimeoutMs", 1, MAX_MS)
    targets = _targets(params["Targets"])
    name = params["Name"]

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    results: list[dict[str, Any]] = []
    certificates: list[str] = []
    for i in range(count):
        due = i * interval
        if due >= duration or elapsed() >= duration:
            break
        if (wait := due - elapsed()) > 0:
            time.sleep(wait / 1000)
        port, kind = targets[i % len(targets)]
        began = elapsed()
        outcome = _one(sandbox, context, name, port, kind, timeout / 1000)
        der = outcome.pop("der", None)
        cert = -1
        if der is not None:
            encoded = base64.b64encode(der).decode("ascii")
            if encoded not in certificates:
                certificates.append(encoded)
            cert = certificates.index(encoded)
        done = elapsed()
        results.append({"t": done, "port": port, **outcome, "latency": done - began, "cert": cert})
    return {"name": name, "elapsed": elapsed(), "results": results, "certificates": certificates}


def _one(
    sandbox: Sandbox, context: ssl.SSLContext, name: str, port: int, kind: str, timeout: float
) -> dict[str, Any]:
    def failed(error: str, detail: str, address: str = "") -> dict[str, Any]:
        return {"address": address, "ok": False, "error": error, "detail": detail}

    status, addresses = sandbox.resolve(name)
    if status != "Success":
        return failed("resolve", _RESOLVE_TEXT.get(status, status))
    if not addresses:
        return failed("resolve", "no IPv4 address")
    address = addresses[0]
    if not reachable(address):
        return failed(
            "network",
            f"the WinRM stand-in connects only to loopback and lab addresses, not {address}",
            address,
        )
    try:
        conn = sandbox.connect(address, port, timeout)
    except TimeoutError:
        return failed("timeout", "connect timed out", address)
    except ConnectionRefusedError:
        return failed(
            "refused",
            "No connection could be made because the target machine actively refused it"
            f" {address}:{port}",
            address,
        )
    except ConnectionResetError:
        return failed("reset", "An existing connection was forcibly closed by the remote host")
    except OSError as exc:
        return failed("network", exc.strerror or str(exc), address)
    der = None
    with contextlib.closing(conn):
        if kind == "tls":
            try:
                with context.wrap_socket(conn, server_hostname=name) as tls:
                    der = tls.getpeercert(binary_form=True)
                if der is None or not name_matches(
                    name, CertSummary.from_der(der), "subject-or-san"
                ):
                    return failed("cert-invalid", _CERT_INVALID, address)
            except ssl.SSLCertVerificationError:
                return failed("cert-invalid", _CERT_INVALID, address)
            except TimeoutError:
                return failed(
                    "timeout",
                    "A connection attempt failed because the connected party did not properly"
                    " respond after a period of time",
                    address,
                )
            except ConnectionResetError:
                return failed(
                    "reset",
                    "An existing connection was forcibly closed by the remote host",
                    address,
                )
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionAbortedError):
                return failed("closed", _CLOSED, address)
            except ssl.SSLError:
                return failed("tls", _SSPI, address)
            except OSError as exc:
                return failed("network", exc.strerror or str(exc), address)
    return {"address": address, "ok": True, "error": "", "detail": "", "der": der}
