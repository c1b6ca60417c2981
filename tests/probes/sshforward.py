"""A tiny in-process SSH server that only does ``direct-tcpip`` forwarding, for tests.

It lets the probes run over real paramiko ``Channel`` objects, as they do when a
remote host opens the connection, without needing sshd. Loopback only.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import paramiko

from ocsscale.probes import Connector, Stream

USER, PASSWORD = "probe", "test-only-password"


class _ForwardingServer(paramiko.ServerInterface):
    def __init__(self) -> None:
        self.targets: dict[int, socket.socket] = {}

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        if (username, password) == (USER, PASSWORD):
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_direct_tcpip_request(
        self, chanid: int, origin: tuple[str, int], destination: tuple[str, int]
    ) -> int:
        try:
            self.targets[chanid] = socket.create_connection(destination, timeout=5)
        except OSError:
            return paramiko.OPEN_FAILED_CONNECT_FAILED
        return paramiko.OPEN_SUCCEEDED


def _pump(source: socket.socket | paramiko.Channel, sink: socket.socket | paramiko.Channel) -> None:
    with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
        sink.close()
        source.close()


@contextlib.contextmanager
def ssh_forwarding_connector() -> Iterator[paramiko.Transport]:
    """Yield an authenticated client transport whose channels are forwarded by the server."""
    listener = socket.create_server(("127.0.0.1", 0))
    client_sock = socket.create_connection(listener.getsockname(), timeout=10)
    server_sock, _ = listener.accept()
    listener.close()
    server_transport = paramiko.Transport(server_sock)
    server_transport.add_server_key(paramiko.ECDSAKey.generate())
    handler = _ForwardingServer()
    negotiated = threading.Event()  # with an event, start_server does not block
    server_transport.start_server(event=negotiated, server=handler)
    stop = threading.Event()

    def accept_channels() -> None:
        while not stop.is_set() and server_transport.is_active():
            channel = server_transport.accept(timeout=0.2)
            if channel is None:
                continue
            target = handler.targets.pop(channel.get_id())
            for source, sink in ((channel, target), (target, channel)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    acceptor = threading.Thread(target=accept_channels, daemon=True)
    acceptor.start()
    client = paramiko.Transport(client_sock)
    try:
        # In-process server made a moment ago: there is no host key to check against.
        client.start_client(timeout=10)
        client.auth_password(USER, PASSWORD)
        yield client
    finally:
        stop.set()
        client.close()
        server_transport.close()
        acceptor.join(timeout=5)


def channel_connector(transport: paramiko.Transport) -> Connector:
    """A probe connector that opens each stream as a direct-tcpip channel."""

    def connect(host: str, port: int, timeout: float) -> Stream:
        return transport.open_channel(
            "direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=timeout
        )

    return connect
