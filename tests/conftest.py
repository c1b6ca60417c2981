"""Fixtures shared by the whole suite (each kept in its own module)."""

import netguard
from sshd_fixture import sshd_server, sshd_server_without_sftp

netguard.install()  # no packet outside loopback and 198.18.0.0/15, from any test

__all__ = ["sshd_server", "sshd_server_without_sftp"]
