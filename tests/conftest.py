"""Fixtures shared by the whole suite (each kept in its own module)."""

from sshd_fixture import sshd_server, sshd_server_without_sftp

__all__ = ["sshd_server", "sshd_server_without_sftp"]
