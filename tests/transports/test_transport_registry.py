"""Transports come from the one registry style (ocsscale/registry.py) the LB drivers
and DNS providers use: one factory per pool-file `transport.kind`, built only from
that transport's own settings."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from ocsscale.config.model import HostSpec, LocalTransport, SshTransport, Transport
from ocsscale.errors import UsageError
from ocsscale.providers.dns import PROVIDERS
from ocsscale.providers.lb import DRIVERS
from ocsscale.registry import Registry
from ocsscale.transports.factory import TRANSPORTS, connect_spec
from ocsscale.transports.local import LocalHost


def _no_credential() -> typing.NoReturn:
    raise AssertionError("a local host logs in to nothing")


def test_every_transport_of_the_pool_file_is_registered() -> None:
    union = typing.get_args(Transport)[0]
    kinds = {typing.get_args(m.model_fields["kind"].annotation)[0] for m in typing.get_args(union)}
    assert TRANSPORTS.names() == sorted(kinds) == ["local", "ssh", "winrm"]


def test_one_registry_style_for_every_plugin_family() -> None:
    assert all(isinstance(r, Registry) for r in (TRANSPORTS, DRIVERS, PROVIDERS))


def test_a_transport_is_built_only_from_its_own_settings(tmp_path: Path) -> None:
    local = LocalTransport(kind="local", service_control="true {action} {service}")
    spec = HostSpec(name="fe01", address="198.18.0.41", transport=local)
    host = connect_spec(spec, tmp_path, _no_credential)
    assert isinstance(host, LocalHost) and host.name == "fe01"
    assert host.service_control == "true {action} {service}"
    with pytest.raises(UsageError, match="the transport ssh was given another one's settings"):
        TRANSPORTS.build("ssh", local, spec, tmp_path, _no_credential)
    with pytest.raises(
        UsageError, match=r"no transport 'telnet' \(transports: local, ssh, winrm\)"
    ):
        TRANSPORTS.build("telnet", local, spec, tmp_path, _no_credential)
    ssh = SshTransport(kind="ssh", credentials="admin")
    windows = HostSpec(name="fe02", address="198.18.0.42", os="windows", transport=ssh)
    with pytest.raises(UsageError, match="drives Linux hosts"):
        connect_spec(windows, tmp_path, _no_credential)  # refused before any credential
