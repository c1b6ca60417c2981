"""hosts.pin / hosts.unpin against real files, through SSH (a real sshd) and locally.

Every test points the host's `hosts_file` at a temp file: the suite never
edits the machine's /etc/hosts.
"""

from __future__ import annotations

import base64
import codecs
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocsscale.actions.base import Action, Context, registry
from ocsscale.actions.hosts import BACKUP_SUFFIX, HostsPin, HostsUnpin
from ocsscale.errors import StepFailed, UsageError
from ocsscale.transports import hostsfile
from ocsscale.transports.local import LocalHost
from ocsscale.transports.ssh import SSHHost

NAME = "ocspool.contoso.com"
HOSTS = "client01"

ORIGINALS = {
    "lf": b"127.0.0.1 localhost\n::1 localhost ip6-localhost\n",
    "crlf": b"# Copyright (c) 1993-2009 Microsoft Corp.\r\n127.0.0.1 localhost\r\n",
    "utf16-le-bom": codecs.BOM_UTF16_LE
    + "# h\u00f4tes\r\n127.0.0.1 localhost\r\n".encode("utf-16-le"),
    "no-trailing-newline": b"127.0.0.1 localhost\n10.0.0.30 ocsfe00",
    "foreign-line-same-name": b"127.0.0.1 localhost\n10.0.0.30 ocspool.contoso.com ocspool\n",
}


@pytest.fixture(params=[pytest.param("ssh", marks=pytest.mark.sshd), "local"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A host (over SSH to a real sshd, or local) whose hosts file is a temp file."""
    hosts_path = tmp_path / "etc-hosts"
    if request.param == "ssh":
        server = request.getfixturevalue("sshd_server")
        known = tmp_path / "known_hosts"
        shutil.copy(server.known_hosts, known)
        host: Any = SSHHost(
            HOSTS,
            server.address,
            port=server.port,
            username=server.username,
            key_file=server.client_key,
            known_hosts=known,
            hosts_file=str(hosts_path),
        )
    else:
        host = LocalHost(HOSTS, hosts_file=str(hosts_path))
    yield host, hosts_path
    host.close()


def ctx_for(host: Any) -> Context:
    def by_name(name: str) -> Any:
        assert name == HOSTS
        return host

    return Context(pool=None, profile=None, host=by_name)


def run_step(action: Action) -> tuple[Any, Any]:
    """What the runner does: read, diff, journal the undo record, apply, verify."""
    current = action.read()
    if not action.diff(current):
        return None, None
    undo = json.loads(json.dumps(action.undo_record(current)))  # must be plain JSON
    evidence = action.verify(action.apply(current))
    json.dumps(evidence)
    return undo, evidence


def rollback(action: Action, undo: Any) -> Any:
    action.revert(undo)
    return action.verify_reverted(undo)


def pin(host: Any, address: str, name: str = NAME) -> Action:
    return HostsPin(ctx_for(host), {"host": HOSTS, "name": name, "address": address})


def unpin(host: Any, name: str = NAME) -> Action:
    return HostsUnpin(ctx_for(host), {"host": HOSTS, "name": name})


def test_actions_are_registered() -> None:
    assert registry()["hosts.pin"] is HostsPin and registry()["hosts.unpin"] is HostsUnpin


@pytest.mark.parametrize("original", ORIGINALS.values(), ids=ORIGINALS.keys())
def test_pin_then_unpin_restores_the_file_byte_for_byte(target: Any, original: bytes) -> None:
    host, path = target
    path.write_bytes(original)
    inode = path.stat().st_ino
    undo, evidence = run_step(pin(host, "198.18.0.41"))
    assert evidence["verified"] and evidence["pins"] == {NAME: "198.18.0.41"}
    assert base64.b64decode(undo["original_b64"]) == original
    assert undo["original_sha256"] == hostsfile.sha256(original)
    assert hostsfile.pins(path.read_bytes()) == {NAME: "198.18.0.41"}
    assert path.stat().st_ino == inode
    assert Path(f"{path}{BACKUP_SUFFIX}").read_bytes() == original
    if b"10.0.0.30 ocspool" in original:
        assert evidence["other_lines_for_name"] == ["10.0.0.30 ocspool.contoso.com ocspool"]
        # the block sits above the foreign line, so the pin is what resolvers see first
        assert path.read_bytes().index(b"198.18.0.41") < path.read_bytes().index(b"10.0.0.30")

    assert run_step(pin(host, "198.18.0.41")) == (None, None)  # already pinned: no change

    undo2, evidence2 = run_step(unpin(host))
    assert evidence2["pins"] == {}
    assert path.read_bytes() == original and path.stat().st_ino == inode
    assert run_step(unpin(host)) == (None, None)


@pytest.mark.parametrize("original", ORIGINALS.values(), ids=ORIGINALS.keys())
def test_rollback_of_a_pin_restores_the_original_bytes(target: Any, original: bytes) -> None:
    host, path = target
    path.write_bytes(original)
    action = pin(host, "198.18.0.41")
    undo, _ = run_step(action)
    proof = rollback(action, undo)
    assert proof["byte_identical"] and path.read_bytes() == original
    assert rollback(action, undo)["byte_identical"]  # safe to replay
    # then the backup (it holds pinned content) goes: nothing of the tool remains
    backup = Path(f"{path}{BACKUP_SUFFIX}")
    assert backup.exists()
    assert action.tidy(undo) == {"backup": str(backup), "removed": True}
    assert not backup.exists() and action.tidy(undo)["removed"] is False


def test_repin_replaces_the_tool_line_and_rolls_back_newest_first(target: Any) -> None:
    host, path = target
    original = ORIGINALS["crlf"]
    path.write_bytes(original)
    steps = [pin(host, "198.18.0.41"), pin(host, "198.18.0.42"), pin(host, "198.18.0.9", "sip.x")]
    undos = []
    for step in steps:
        undos.append(run_step(step)[0])
    after = path.read_bytes()
    assert hostsfile.pins(after) == {NAME: "198.18.0.42", "sip.x": "198.18.0.9"}
    assert after.count(NAME.encode()) == 1 and b"\r\n" in after and b"\n\n" not in after
    second = path.read_bytes()
    for step, undo in reversed(list(zip(steps, undos, strict=True))):
        rollback(step, undo)
        if step is steps[1]:
            assert hostsfile.pins(path.read_bytes()) == {NAME: "198.18.0.41"}
    assert path.read_bytes() == original and second != original


def test_crash_before_apply_then_rollback_changes_nothing(target: Any) -> None:
    host, path = target
    path.write_bytes(ORIGINALS["lf"])
    action = pin(host, "198.18.0.41")
    undo = action.undo_record(action.read())  # journaled, then the run died
    assert rollback(action, undo)["byte_identical"]
    assert path.read_bytes() == ORIGINALS["lf"]


def test_rollback_keeps_an_edit_made_by_someone_else(target: Any) -> None:
    host, path = target
    path.write_bytes(ORIGINALS["lf"])
    action = pin(host, "198.18.0.41")
    undo, _ = run_step(action)
    with path.open("ab") as f:
        f.write(b"10.9.9.9 added-by-an-admin\n")
    proof = rollback(action, undo)
    assert proof["byte_identical"] is False
    assert path.read_bytes() == ORIGINALS["lf"] + b"10.9.9.9 added-by-an-admin\n"


def test_verify_reverted_fails_when_the_pin_is_back(target: Any) -> None:
    host, path = target
    path.write_bytes(ORIGINALS["lf"])
    action = pin(host, "198.18.0.41")
    undo, _ = run_step(action)
    action.revert(undo)
    path.write_bytes(hostsfile.pin(ORIGINALS["lf"] + b"# edited\n", NAME, "198.18.0.77"))
    with pytest.raises(StepFailed, match="was not restored"):
        action.verify_reverted(undo)


def test_apply_refuses_a_file_changed_since_it_was_read(target: Any) -> None:
    host, path = target
    path.write_bytes(ORIGINALS["lf"])
    action = pin(host, "198.18.0.41")
    current = action.read()
    path.write_bytes(ORIGINALS["lf"] + b"# changed\n")
    with pytest.raises(StepFailed, match="changed between reading and writing"):
        action.apply(current)
    assert path.read_bytes() == ORIGINALS["lf"] + b"# changed\n"


def test_a_broken_block_stops_the_step(target: Any) -> None:
    host, path = target
    path.write_bytes(hostsfile.BEGIN_MARKER.encode() + b"\n1.2.3.4 x\n")
    with pytest.raises(hostsfile.HostsFileError, match="fix the block by hand"):
        pin(host, "198.18.0.41").read()


def test_bad_arguments_are_usage_errors() -> None:
    ctx = Context(pool=None, profile=None, host=lambda name: LocalHost())
    with pytest.raises(UsageError, match="'address' is required"):
        HostsPin(ctx, {"host": HOSTS, "name": NAME})
    with pytest.raises(UsageError, match="needs an IPv4 or IPv6 address"):
        HostsPin(ctx, {"host": HOSTS, "name": NAME, "address": "10.0.0"})
    with pytest.raises(UsageError, match="'host' is required"):
        HostsUnpin(ctx, {"name": NAME})


def test_plan_describes_the_change_without_connecting() -> None:
    def no_connection(name: str) -> Any:
        raise AssertionError("describe must not connect")

    ctx = Context(pool=None, profile=None, host=no_connection)
    action = HostsPin(ctx, {"host": HOSTS, "name": NAME, "address": "198.18.0.41"})
    assert action.targets() == [HOSTS]
    [change] = action.describe()
    assert change.to_dict() == {
        "kind": "add",
        "target": HOSTS,
        "summary": f"pin {NAME} -> 198.18.0.41 in /etc/hosts",
    }
    [change] = HostsUnpin(ctx, {"host": HOSTS, "name": NAME, "path": "/tmp/h"}).describe()
    assert (change.kind, change.summary) == ("remove", f"unpin {NAME} in /tmp/h")


@pytest.fixture
def bind_mounted_hosts(target: Any, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    """The hosts file as a bind mount, as /etc/hosts is in a container: a
    rename over it fails, only an in-place write works."""
    host, path = target
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("bind-mounting a file needs root and mount(8)")
    source = tmp_path / "hosts-source"
    source.write_bytes(ORIGINALS["lf"])
    path.write_bytes(b"")
    done = subprocess.run(["mount", "--bind", source, path], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.strip()}")
    try:
        yield host, path
    finally:
        subprocess.run(["umount", path], check=True)


def test_a_bind_mounted_hosts_file_is_edited_in_place(bind_mounted_hosts: Any) -> None:
    host, path = bind_mounted_hosts
    replacement = path.with_name("by-rename")
    replacement.write_bytes(b"x")
    with pytest.raises(OSError):  # what a write-then-rename would run into
        os.replace(replacement, path)
    action = pin(host, "198.18.0.41")
    undo, _ = run_step(action)
    assert hostsfile.pins(path.read_bytes()) == {NAME: "198.18.0.41"}
    assert path.with_name("hosts-source").read_bytes() == path.read_bytes()
    assert rollback(action, undo)["byte_identical"]
    assert path.read_bytes() == ORIGINALS["lf"]


def test_a_bind_mounted_backup_is_emptied_when_it_cannot_be_removed(
    target: Any, tmp_path: Path
) -> None:
    """The lab bind-mounts each namespace's own, empty hosts.ocsscale.bak: it
    cannot be unlinked, so the rollback's tidy-up empties it as it was."""
    host, path = target
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("bind-mounting a file needs root and mount(8)")
    path.write_bytes(ORIGINALS["lf"])
    backup = Path(f"{path}{BACKUP_SUFFIX}")
    source = tmp_path / "backup-source"
    source.write_bytes(b"")
    backup.write_bytes(b"")
    done = subprocess.run(["mount", "--bind", source, backup], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.strip()}")
    try:
        action = pin(host, "198.18.0.41")
        undo, _ = run_step(action)
        assert source.read_bytes() == ORIGINALS["lf"]  # the backup went through the mount
        assert rollback(action, undo)["byte_identical"]
        assert action.tidy(undo)["removed"] is True
        assert source.read_bytes() == b"" and backup.read_bytes() == b""
    finally:
        subprocess.run(["umount", backup], check=True)
