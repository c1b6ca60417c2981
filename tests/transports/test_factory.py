"""The factory and HostPool over a real pool file: lazy connections by host
name, credentials resolved at use time, one connection per host per run."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ocsscale.actions.base import Context
from ocsscale.actions.hosts import HostsPin
from ocsscale.config.loader import LoadedPool, load_pool
from ocsscale.errors import SecretError, UsageError
from ocsscale.transports.commands import ShCommand
from ocsscale.transports.factory import ADMIN_HOST, HostPool, connect
from ocsscale.transports.local import LocalHost
from ocsscale.transports.ssh import SSHHost

pytestmark = pytest.mark.sshd

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-armed.yaml"


def write_pool(tmp_path: Path, server: Any) -> LoadedPool:
    """The one-armed example, with the LB host on the test sshd and one test
    client on the admin machine (local)."""
    src = EXAMPLE.read_text()
    lb_transport = (
        f"{{kind: ssh, credentials: lb-admin, port: {server.port}, known_hosts: known_hosts, "
        'service_command: "true"}'
    )
    src = src.replace(
        "    address: 10.0.0.39\n    transport: {kind: ssh, credentials: lb-admin}",
        f"    address: {server.address}\n    transport: {lb_transport}",
    )
    src = src.replace(
        "    address: 10.0.0.102\n    transport: {kind: winrm, credentials: client-admin}",
        f"    address: 10.0.0.102\n    transport: {{kind: local, hosts_file: {tmp_path}/hosts}}",
    )
    src = src.replace("key_file: ~/.ssh/id_ed25519", "key_file: keys/lb_key")
    assert src.count(str(server.port)) == 1 and "kind: local" in src
    (tmp_path / "keys").mkdir()
    shutil.copy(server.client_key, tmp_path / "keys" / "lb_key")
    shutil.copy(server.known_hosts, tmp_path / "known_hosts")
    (tmp_path / "pool.yaml").write_text(src)
    return load_pool(tmp_path / "pool.yaml")


@pytest.fixture
def loaded(sshd_server: Any, tmp_path: Path) -> LoadedPool:
    return write_pool(tmp_path, sshd_server)


def test_pool_connects_lazily_and_caches(loaded: LoadedPool, tmp_path: Path) -> None:
    with HostPool(loaded) as hosts:
        assert hosts.open_hosts == []
        lb = hosts("lb01")
        assert isinstance(lb, SSHHost)
        assert lb.key_file == tmp_path / "keys" / "lb_key"  # relative to the pool file
        assert lb.known_hosts == tmp_path / "known_hosts"
        assert lb.run(ShCommand.of("echo", "from lb01")).stdout == "from lb01\n"
        assert hosts("lb01") is lb
        client = hosts.get("client02")
        assert isinstance(client, LocalHost) and client.hosts_file == f"{tmp_path}/hosts"
        assert isinstance(hosts(ADMIN_HOST), LocalHost)
        assert sorted(hosts.open_hosts) == sorted(["lb01", "client02", ADMIN_HOST])
    assert hosts.open_hosts == []
    assert lb._client is None  # closed by close_all


def test_directory_and_unknown_hosts_are_refused(loaded: LoadedPool) -> None:
    hosts = HostPool(loaded)
    with pytest.raises(UsageError, match="directory server"):
        hosts("dc01")
    with pytest.raises(UsageError, match="no host named 'nope'.*lb01"):
        hosts("nope")


def test_credentials_are_resolved_only_when_a_host_is_used(
    loaded: LoadedPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OCS_ADMIN_PASSWORD", raising=False)
    hosts = HostPool(loaded)  # loading and building the pool needed no secret
    with pytest.raises(SecretError, match="OCS_ADMIN_PASSWORD"):
        hosts("ocsfe01")


def test_winrm_hosts_are_built_with_their_password(
    loaded: LoadedPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCS_ADMIN_PASSWORD", "pw-not-in-repr")
    host = connect(loaded.pool.host("ocsfe01"), loaded)
    assert type(host).__name__ == "WinRMHost" and host.os == "windows"
    assert "pw-not-in-repr" not in repr(host) and "pw-not-in-repr" not in repr(vars(host))


def test_ssh_for_a_windows_host_is_refused(loaded: LoadedPool) -> None:
    spec = loaded.pool.host("lb01").model_copy(update={"os": "windows"})
    with pytest.raises(UsageError, match="Linux hosts"):
        connect(spec, loaded)


def test_pin_action_through_the_pool(loaded: LoadedPool, tmp_path: Path) -> None:
    (tmp_path / "hosts").write_bytes(b"127.0.0.1 localhost\n")
    with HostPool(loaded) as hosts:
        ctx = Context(pool=loaded.pool, profile=loaded.profile, host=hosts)
        args = {"host": "client02", "name": "ocspool.contoso.com", "address": "198.18.0.41"}
        action = HostsPin(ctx, args)
        assert action.describe()[0].summary.endswith(f"in {tmp_path}/hosts")
        current = action.read()
        action.verify(action.apply(current))
    assert b"198.18.0.41 ocspool.contoso.com" in (tmp_path / "hosts").read_bytes()


def test_plan_paths_follow_each_hosts_os(loaded: LoadedPool) -> None:
    for pool in (loaded.pool, loaded):  # the model, or the loaded file
        ctx = Context(pool=pool, profile=loaded.profile, host=lambda n: None)  # type: ignore[arg-type,return-value]
        args = {"name": "ocspool.contoso.com", "address": "10.0.1.41"}
        fe = HostsPin(ctx, {"host": "ocsfe01", **args})
        lb = HostsPin(ctx, {"host": "lb01", **args})
        assert fe.describe()[0].summary.endswith(r"in C:\Windows\System32\drivers\etc\hosts")
        assert lb.describe()[0].summary.endswith("in /etc/hosts")
    with pytest.raises(UsageError, match="no host named 'ghost'"):
        HostsPin(ctx, {"host": "ghost", "name": "a.b", "address": "10.0.1.41"}).describe()


def test_paramiko_warnings_never_reach_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    # a refused probe channel is reported by the probe; paramiko's own warning
    # would otherwise be printed by Python's last-resort handler over the live table
    import logging

    import ocsscale.transports.ssh  # noqa: F401

    logging.getLogger("paramiko.transport").warning("Secsh channel 3 open FAILED")
    assert "Secsh" not in capsys.readouterr().err
