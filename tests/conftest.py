"""Fixtures shared by the whole suite (each kept in its own module)."""

import markers
import netguard
import pytest
from dns_fixture import bind, dns_down_standin, record_name, remove_denied_standin, standins
from sshd_fixture import sshd_server, sshd_server_without_sftp

netguard.install()  # no packet outside loopback and 198.18.0.0/15, from any test

__all__ = [
    "bind",
    "dns_down_standin",
    "record_name",
    "remove_denied_standin",
    "sshd_server",
    "sshd_server_without_sftp",
    "standins",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    markers.mark(items)  # `lab` for tests/lab/, `sshd` for the sshd fixture's users
