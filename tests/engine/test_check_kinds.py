"""The richer check kinds (tls, https, sip-options) against real TLS servers on loopback."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from ocsscale.engine.health import HealthCheckFailed, check_port
from ocsscale_lab.ca import create_ca, issue_server_cert

from .conftest import Net


def _server_tls(tmp: Path) -> ssl.SSLContext:
    # the engine's checks do not verify certificates: any CA-issued one will do
    files = issue_server_cert(
        create_ca(tmp),
        tmp,
        file_stem="server",
        pool_fqdn="pool.test",
        fe_fqdn="pool.test",
        sip_domain="test",
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(files.cert, files.key)
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
        with pytest.raises(HealthCheckFailed, match=error):
            asyncio.run(_with_server(answer, ctx, kind, net.servers[0]))
