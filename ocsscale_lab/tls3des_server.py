"""The server side of TLS 1.0 with 3DES only, for the lab's `FE:tls10-3des` fault.

OpenSSL 3 as built here has no 3DES suite, so asyncio's TLS cannot serve it: the
pool member accepts plain TCP on its TLS ports and runs tlslite-ng over an
in-memory socket, driven by the event loop (tlslite's generators yield 0 when
they need bytes from the peer). The protocol handlers get a real
asyncio.StreamReader and a writer with the StreamWriter calls they use.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from ocsscale.probes.tls3des import load_tlslite, settings

Handler = Callable[[asyncio.StreamReader, Any], Awaitable[None]]


class _MemorySocket:
    """A socket for tlslite-ng: bytes in from the peer, bytes out to it."""

    def __init__(self) -> None:
        self.incoming = bytearray()
        self.outgoing = bytearray()
        self.eof = False

    def recv(self, n: int) -> bytes:
        if self.incoming:
            data = bytes(self.incoming[:n])
            del self.incoming[:n]
            return data
        if self.eof:
            return b""
        raise BlockingIOError(errno.EWOULDBLOCK, "would block")

    def send(self, data: bytes) -> int:
        self.outgoing += data
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.outgoing += data

    def close(self) -> None:
        return None

    def shutdown(self, how: int) -> None:  # noqa: ARG002 - socket API
        return None


class ServerIdentity:
    """The certificate chain and key, parsed once per service."""

    def __init__(self, cert: Path, key: Path) -> None:
        load_tlslite()
        from tlslite import X509CertChain, parsePEMKey

        self.chain = X509CertChain()
        self.chain.parsePemList(cert.read_text())
        self.key = parsePEMKey(key.read_text(), private=True)


class _Writer:
    """The StreamWriter calls the pool member's handlers make, through the TLS session."""

    def __init__(self, conn: Any, sock: _MemorySocket, raw: asyncio.StreamWriter) -> None:
        self._conn, self._sock, self._raw = conn, sock, raw
        self.transport = raw.transport

    def write(self, data: bytes) -> None:
        if self._raw.is_closing():
            return
        self._conn.write(bytes(data))  # never blocks: the socket is memory
        self._flush()

    async def drain(self) -> None:
        await self._raw.drain()

    def _flush(self) -> None:
        if self._sock.outgoing and not self._raw.is_closing():
            self._raw.write(bytes(self._sock.outgoing))
        self._sock.outgoing.clear()

    def is_closing(self) -> bool:
        return self._raw.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._raw.get_extra_info(name, default)

    def close(self) -> None:
        if not self._raw.is_closing():
            with contextlib.suppress(Exception):
                self._conn.close()  # close_notify, as Windows sends it
            self._flush()
        self._raw.close()

    async def wait_closed(self) -> None:
        await self._raw.wait_closed()


async def _drive(
    steps: Iterator[Any],
    sock: _MemorySocket,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    timeout: float | None,
) -> Any:
    """Run a tlslite generator, feeding it the peer's bytes; its last value."""
    result: Any = None
    for result in steps:
        if sock.outgoing:
            writer.write(bytes(sock.outgoing))
            sock.outgoing.clear()
            await writer.drain()
        if isinstance(result, int) and result == 0:
            data = await asyncio.wait_for(reader.read(65536), timeout)
            if data:
                sock.incoming += data
            else:
                sock.eof = True
    if sock.outgoing:
        writer.write(bytes(sock.outgoing))
        sock.outgoing.clear()
        await writer.drain()
    return result


async def serve(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    identity: ServerIdentity,
    handler: Handler,
    handshake_timeout: float,
) -> None:
    """Shake hands (TLS 1.0, DES-CBC3-SHA only), then let `handler` speak through it."""
    load_tlslite()
    from tlslite import TLSConnection
    from tlslite.errors import TLSError

    sock = _MemorySocket()
    conn = TLSConnection(sock)
    try:
        await _drive(
            conn.handshakeServerAsync(
                certChain=identity.chain, privateKey=identity.key, settings=settings(server=True)
            ),
            sock,
            reader,
            writer,
            handshake_timeout,
        )
    except (TLSError, TimeoutError, ConnectionError):
        writer.close()
        return
    plain = asyncio.StreamReader()

    async def pump() -> None:
        try:
            while True:
                data = await _drive(conn.readAsync(max=65536), sock, reader, writer, None)
                if not data:
                    break
                plain.feed_data(bytes(data))
        except (TLSError, ConnectionError, OSError):
            pass
        finally:
            plain.feed_eof()

    pumping = asyncio.create_task(pump())
    try:
        await handler(plain, _Writer(conn, sock, writer))
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
