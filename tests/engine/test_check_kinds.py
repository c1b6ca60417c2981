"""The richer check kinds (tls, https, sip-options) against real TLS servers on loopback."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ocsscale.engine.health import CheckFailed, check_port

from .conftest import Net


def _server_tls(tmp: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pool.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
    return ctx


async def _with_server(answer: bytes, tls: ssl.SSLContext | None, kind: str, addr: str) -> None:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            await r.readline()
            w.write(answer)
            await w.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        w.close()

    srv = await asyncio.start_server(handle, addr, 0, ssl=tls)
    port = srv.sockets[0].getsockname()[1]
    try:
        await check_port(addr, port, kind, 2.0, None)
    finally:
        srv.close()


@pytest.mark.parametrize(
    ("kind", "answer", "tls", "error"),
    [
        ("tls", b"", True, None),
        ("tls", b"", False, r"port \d+: (TLS handshake failed|connection closed)"),
        ("https", b"HTTP/1.1 200 OK\r\n\r\n", True, None),
        ("https", b"HTTP/1.1 503 Busy\r\n\r\n", True, "bad HTTP answer"),
        ("sip-options", b"SIP/2.0 200 OK\r\n\r\n", True, None),
        ("sip-options", b"SIP/2.0 486 Busy Here\r\n\r\n", True, "SIP OPTIONS answered"),
    ],
)
def test_check_kinds(
    tmp_path: Path, net: Net, kind: str, answer: bytes, tls: bool, error: str | None
) -> None:
    ctx = _server_tls(tmp_path) if tls else None
    if error is None:
        asyncio.run(_with_server(answer, ctx, kind, net.servers[0]))
    else:
        with pytest.raises(CheckFailed, match=error):
            asyncio.run(_with_server(answer, ctx, kind, net.servers[0]))
