"""Idle-connection holders: open (client) or accept (server) tens of thousands of TCP
connections, keep them idle, and report counts as JSON lines on stdout.

Run as a separate process so its own memory never counts against the proxy's:
    python holder.py client --dest 127.0.10.1:9100 --sources 127.0.40.1-8 --count 50000
    python holder.py server --listen 127.0.20.1:9100,127.0.20.2:9100

Both read one command per line on stdin: `status` prints the counts, `quit` (or EOF)
closes everything and exits. The server also takes `close ADDR:PORT` and
`open ADDR:PORT` to stop and restart one listener (a check port that refuses).
Plain epoll, no asyncio: the point is to hold many sockets cheaply and predictably.
"""

from __future__ import annotations

import argparse
import errno
import itertools
import json
import os
import resource
import select
import socket
import sys
import time
from collections import Counter

IP_BIND_ADDRESS_NO_PORT = 24  # from linux/in.h; not exported by the socket module


def _emit(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _raise_nofile() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def expand_addresses(spec: str) -> list[str]:
    """`127.0.40.1-8,127.0.41.1` -> each address; a range varies the last octet."""
    out: list[str] = []
    for part in spec.split(","):
        if "-" in part:
            base, last = part.rsplit("-", 1)
            prefix, first = base.rsplit(".", 1)
            out.extend(f"{prefix}.{n}" for n in range(int(first), int(last) + 1))
        elif part:
            out.append(part)
    return out


def _read_command(buffer: bytearray) -> list[str]:
    chunk = os.read(sys.stdin.fileno(), 4096)
    if not chunk:
        return ["quit"]
    buffer.extend(chunk)
    lines = buffer.split(b"\n")
    buffer[:] = lines.pop()
    return [line.decode().strip() for line in lines if line.strip()]


def run_client(args: argparse.Namespace) -> None:
    dests = [_endpoint(d) for d in args.dest.split(",")]
    pairs = itertools.cycle([(s, d) for s in expand_addresses(args.sources) for d in dests])
    ep = select.epoll()
    pending: dict[int, socket.socket] = {}
    open_socks: dict[int, socket.socket] = {}
    errors: Counter[str] = Counter()
    started = connected = closed_by_peer = 0
    deadline = time.monotonic() + args.timeout
    t0 = time.monotonic()

    def drop(fd: int, table: dict[int, socket.socket]) -> None:
        sock = table.pop(fd)
        ep.unregister(fd)
        sock.close()

    while time.monotonic() < deadline and (started < args.count or pending):
        while started < args.count and len(pending) < args.inflight:
            src, dst = next(pairs)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            # Lets the kernel choose the port at connect(), per destination tuple.
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            started += 1
            try:
                sock.bind((src, 0))
                rc = sock.connect_ex(dst)
            except OSError as exc:
                errors[errno.errorcode.get(exc.errno or 0, str(exc.errno))] += 1
                sock.close()
                continue
            if rc not in (0, errno.EINPROGRESS):
                errors[errno.errorcode.get(rc, str(rc))] += 1
                sock.close()
                continue
            pending[sock.fileno()] = sock
            ep.register(sock.fileno(), select.EPOLLOUT)
        for fd, _ in ep.poll(0.05):
            if fd in pending:
                sock = pending[fd]
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    errors[errno.errorcode.get(err, str(err))] += 1
                    drop(fd, pending)
                    continue
                del pending[fd]
                open_socks[fd] = sock
                ep.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
                connected += 1
            elif fd in open_socks:
                closed_by_peer += 1
                drop(fd, open_socks)
    for fd in list(pending):
        errors["timeout"] += 1
        drop(fd, pending)
    _emit(
        {
            "event": "connected",
            "attempted": started,
            "connected": connected,
            "open": len(open_socks),
            "closed_by_peer": closed_by_peer,
            "errors": dict(errors),
            "seconds": round(time.monotonic() - t0, 3),
        }
    )
    ep.register(sys.stdin.fileno(), select.EPOLLIN)
    buffer = bytearray()
    while True:
        for fd, _ in ep.poll(1.0):
            if fd == sys.stdin.fileno():
                for cmd in _read_command(buffer):
                    if cmd == "quit":
                        for ofd in list(open_socks):
                            drop(ofd, open_socks)
                        return
                    _emit(
                        {
                            "event": "status",
                            "open": len(open_socks),
                            "closed_by_peer": closed_by_peer,
                        }
                    )
            elif fd in open_socks:
                closed_by_peer += 1
                drop(fd, open_socks)


def run_server(args: argparse.Namespace) -> None:
    ep = select.epoll()
    listeners: dict[int, tuple[socket.socket, str]] = {}
    by_name: dict[str, socket.socket] = {}
    conns: dict[int, tuple[socket.socket, str]] = {}
    accepted: Counter[str] = Counter()
    open_per: Counter[str] = Counter()

    def listen(name: str) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Several holder processes may share a port: one process holds at most what
        # its RLIMIT_NOFILE allows.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(_endpoint(name))
        sock.listen(args.backlog)
        sock.setblocking(False)
        listeners[sock.fileno()] = (sock, name)
        by_name[name] = sock
        ep.register(sock.fileno(), select.EPOLLIN)

    def unlisten(name: str) -> None:
        sock = by_name.pop(name)
        del listeners[sock.fileno()]
        ep.unregister(sock.fileno())
        sock.close()  # pending, unaccepted connections get a reset; new SYNs are refused

    names = [n for n in args.listen.split(",") if n]
    for name in names:
        listen(name)
    ep.register(sys.stdin.fileno(), select.EPOLLIN)
    _emit({"event": "listening", "listen": names})
    buffer = bytearray()
    while True:
        for fd, _ in ep.poll(1.0):
            if fd == sys.stdin.fileno():
                for cmd in _read_command(buffer):
                    verb, _, arg = cmd.partition(" ")
                    if verb == "quit":
                        return
                    if verb == "close" and arg in by_name:
                        unlisten(arg)
                    elif verb == "open" and arg not in by_name:
                        listen(arg)
                    _emit(
                        {
                            "event": "status",
                            "open": len(conns),
                            "accepted": dict(accepted),
                            "open_per": dict(open_per),
                            "listening": sorted(by_name),
                        }
                    )
            elif fd in listeners:
                sock, name = listeners[fd]
                for _ in range(256):
                    try:
                        conn, _addr = sock.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as exc:  # EMFILE and friends: say so, keep going
                        _emit({"event": "accept-error", "error": str(exc)})
                        break
                    conn.setblocking(False)
                    conns[conn.fileno()] = (conn, name)
                    ep.register(conn.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
                    accepted[name] += 1
                    open_per[name] += 1
            elif fd in conns:
                conn, name = conns[fd]
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if data:
                    continue  # anything a check or client sends is read and dropped
                del conns[fd]
                ep.unregister(fd)
                conn.close()
                open_per[name] -= 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    client = sub.add_parser("client")
    client.add_argument("--dest", required=True, help="ADDR:PORT[,ADDR:PORT...]")
    client.add_argument("--sources", required=True, help="source addresses, e.g. 127.0.40.1-8")
    client.add_argument("--count", type=int, required=True)
    client.add_argument("--inflight", type=int, default=512)
    client.add_argument("--timeout", type=float, default=120.0)
    server = sub.add_parser("server")
    server.add_argument("--listen", required=True, help="ADDR:PORT[,ADDR:PORT...]")
    server.add_argument("--backlog", type=int, default=65535)
    args = parser.parse_args()
    _raise_nofile()
    if args.role == "client":
        run_client(args)
    else:
        run_server(args)


if __name__ == "__main__":
    main()
