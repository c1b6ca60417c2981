"""Health checks: a server is up only while every check port answers.

Each server has one checker task. A round checks all health ports at once; the
round fails if any port fails, and the first failing port is the reason. `fall`
failed rounds in a row take an up server down, `rise` good rounds bring a down
one up. As in HAProxy, the next round starts `inter` after the previous one
*completed* (`fastinter` while a change is in progress, `downinter` while the
server is down), so a server's rounds never overlap or run back to back: a check
lost for one timeout costs exactly one failed round, and `fall: 2` keeps the
server in. Each wait has up to 10% jitter so checks of many servers do not
synchronise. A server starts up
(HAProxy's init-state "up") and its first failed round takes it down at once.
TCP checks send FIN right after the handshake and read until the server closes,
so servers see an orderly close, not a reset. A check the engine cannot even
start (no descriptor or memory left: EMFILE, ENFILE, ENOBUFS, ENOMEM) is the
engine's fault, never the server's: that round is not counted either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import random
import socket
import ssl
from collections.abc import Callable

from .balancer import ServerRuntime
from .farm import Health
from .snat import connect_socket, handshake_seconds, make_upstream_socket

StateCallback = Callable[[ServerRuntime, bool, str], None]
SkipCallback = Callable[[ServerRuntime, str], None]
# Errors that say the engine itself ran out of something (see accept.py).
_ENGINE_FAULTS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def _client_tls() -> ssl.SSLContext:
    # A health check proves the service answers, not who it is: servers in a pool
    # present the pool's certificate, which rarely names the address we dial.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class HealthCheckFailed(Exception):
    """A server failed a check: its reason is the server's state, not an error of
    the engine (never raised out of the checker)."""


class CheckSkipped(Exception):
    """The engine could not run the check (its own resources): no verdict."""


def _engine_fault(port: int, err: OSError) -> CheckSkipped:
    return CheckSkipped(f"port {port}: the engine is out of resources ({err.strerror})")


async def check_port(
    address: str, port: int, kind: str, timeout: float, source: str | None
) -> None:
    """One check of one port; raises HealthCheckFailed with a short reason."""
    loop = asyncio.get_running_loop()
    try:
        sock = make_upstream_socket(address, source)
    except OSError as err:
        if err.errno in _ENGINE_FAULTS:
            raise _engine_fault(port, err) from None
        raise
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            await connect_socket(loop, sock, (address, port))
            if kind == "tcp":
                await _close_gently(sock)
                return
            tls = _client_tls()
            reader, writer = await asyncio.open_connection(sock=sock, ssl=tls, server_hostname="")
            if kind == "https":
                writer.write(b"GET / HTTP/1.1\r\nHost: check\r\nConnection: close\r\n\r\n")
                line = await reader.readline()
                parts = line.split()
                if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or parts[1][:1] == b"5":
                    raise HealthCheckFailed(f"port {port}: bad HTTP answer {line[:40]!r}")
            elif kind == "sip-options":
                writer.write(_sip_options(address, port))
                line = await reader.readline()
                if not line.startswith(b"SIP/2.0 200"):
                    raise HealthCheckFailed(f"port {port}: SIP OPTIONS answered {line[:40]!r}")
    except TimeoutError:
        answered = handshake_seconds(sock) if kind == "tcp" else None
        if answered is None or answered > timeout:
            raise HealthCheckFailed(f"port {port}: no answer within {timeout}s") from None
        # The server answered in time by the kernel's clock; this process was too
        # busy to notice before the timer fired. Its own load is no server fault.
    except ssl.SSLError as err:
        raise HealthCheckFailed(f"port {port}: TLS handshake failed ({err.reason})") from None
    except OSError as err:
        if err.errno in _ENGINE_FAULTS:
            raise _engine_fault(port, err) from None
        reason = err.strerror or str(err) or f"connection closed ({type(err).__name__})"
        raise HealthCheckFailed(f"port {port}: {reason}") from None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 0.2)
        else:
            sock.close()


async def _close_gently(sock: socket.socket, grace: float = 0.2) -> None:
    """Send FIN and read until the server closes, so the server sees an orderly close
    (closing with its greeting unread would reset the connection instead)."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(OSError, TimeoutError):
        sock.shutdown(socket.SHUT_WR)
        async with asyncio.timeout(grace):
            while await loop.sock_recv(sock, 4096):
                pass


def _sip_options(address: str, port: int) -> bytes:
    tag = random.getrandbits(32)
    return (
        f"OPTIONS sip:{address}:{port};transport=tls SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS check;branch=z9hG4bK{tag:x}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:check@ocsscale>;tag={tag:x}\r\n"
        f"To: <sip:{address}>\r\n"
        f"Call-ID: {tag:x}@ocsscale\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class HealthMonitor:
    """Runs one checker task per server; reports up/down changes through `on_change`."""

    def __init__(
        self,
        settings: Health,
        source: Callable[[str], str | None],
        on_change: StateCallback,
        on_skip: SkipCallback,
    ) -> None:
        self.settings = settings
        self.source = source
        self.on_change = on_change
        self.on_skip = on_skip
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.results: dict[tuple[str, str], int] = {}

    def watch(self, server: ServerRuntime) -> None:
        self.unwatch(server.name)
        if self.settings.ports and server.admin != "maint" and not server.removed:
            self.tasks[server.name] = asyncio.get_running_loop().create_task(self._run(server))

    def unwatch(self, name: str) -> None:
        task = self.tasks.pop(name, None)
        if task is not None:
            task.cancel()

    def stop(self) -> None:
        for name in list(self.tasks):
            self.unwatch(name)

    async def check_round(self, server: ServerRuntime) -> str | None:
        """None when every port answered, else the first failure; raises
        CheckSkipped when no port failed but one could not be checked."""
        h = self.settings
        src = self.source(server.address)
        results = await asyncio.gather(
            *(check_port(server.address, p, h.kind, h.timeout, src) for p in h.ports),
            return_exceptions=True,
        )
        skipped = next((r for r in results if isinstance(r, CheckSkipped)), None)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, CheckSkipped):
                self._count(server.name, "fail")
                return str(r) if isinstance(r, HealthCheckFailed) else f"check error: {r!r}"
        if skipped is not None:
            self._count(server.name, "skipped")
            raise skipped
        self._count(server.name, "ok")
        return None

    def _count(self, name: str, result: str) -> None:
        self.results[(name, result)] = self.results.get((name, result), 0) + 1

    async def _run(self, server: ServerRuntime) -> None:
        h = self.settings
        # A never-checked server starts "up but fragile": one failed round takes it
        # down. One already proven (checker restarted by a reload) gets full `fall`.
        fresh = server.check_reason == "not checked yet"
        health = (1 if fresh else h.fall) if server.healthy else 0
        ok_streak = 0
        await asyncio.sleep(random.uniform(0, min(h.inter, 0.05)))
        while True:
            try:
                failure = await self.check_round(server)
            except CheckSkipped as skipped:
                # Not the server's fault: keep its state and try again soon.
                self.on_skip(server, str(skipped))
                await asyncio.sleep(h.fastinter * random.uniform(0.9, 1.0))
                continue
            if failure is None:
                server.check_reason = "all check ports answered"
                if server.healthy:
                    health = h.fall
                else:
                    ok_streak += 1
                    if ok_streak >= h.rise:
                        health, ok_streak = h.fall, 0
                        self.on_change(server, True, f"{h.rise} check rounds in a row passed")
            else:
                server.check_reason = failure
                ok_streak = 0
                if server.healthy:
                    health -= 1
                    if health <= 0:
                        self.on_change(server, False, failure)
            if not server.healthy and ok_streak == 0:
                wait = h.downinter
            elif (server.healthy and health < h.fall) or (not server.healthy and ok_streak):
                wait = h.fastinter
            else:
                wait = h.inter
            # Counted from the end of the round: a round that timed out is never
            # followed at once by another one that the same outage also catches.
            await asyncio.sleep(wait * random.uniform(0.9, 1.0))
