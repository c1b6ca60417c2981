"""The suite's own guard (tests/netguard.py) refuses a packet to any address
outside loopback and 198.18.0.0/15 before it is sent."""

from __future__ import annotations

import socket

import pytest
from netguard import ForbiddenAddress


@pytest.mark.parametrize("address", ["10.0.0.39", "192.168.1.1", "8.8.8.8", "::ffff:10.0.0.1"])
def test_a_connect_outside_the_allowed_ranges_raises_before_sending(address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock, pytest.raises(ForbiddenAddress):
        sock.connect((address, 22))
    with socket.socket(family, socket.SOCK_DGRAM) as sock, pytest.raises(ForbiddenAddress):
        sock.sendto(b"x", (address, 53))


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
