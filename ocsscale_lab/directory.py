"""The directory-server stand-in: a TCP listener on 135, as a domain controller has.

The front ends must reach Active Directory on 135; this is what they reach in
the lab. Each connection gets one line naming the server and the source address
it saw, then is closed, so a check can also tell whether NAT was in the path.

    python -m ocsscale_lab.directory --name dc01 --listen 198.18.0.10 [--port 135]

It runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence


async def _serve(name: str, listen: str, port: int) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        writer.write(f"ocsscale-directory server={name} peer={peer[0]}:{peer[1]}\r\n".encode())
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, listen, port, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocsscale_lab.directory")
    parser.add_argument("--name", required=True)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--port", type=int, default=135)
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args.name, args.listen, args.port))
    except OSError as exc:
        print(f"cannot listen on {args.listen}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
