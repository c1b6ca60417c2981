"""Hostile and broken farm files through the real CLI: `check` refuses everything
`serve` would refuse, with FILE:LINE:COL, exit 2, no traceback and no hang (each
run is bounded by a timeout; the limits themselves make it quick)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 20  # a hang guard only; a refusal takes well under a second

BASE = """\
farm: hostile
vip: [127.0.0.1]
ports: [5061]
servers:
  - {name: fe1, address: 127.0.0.3}
  - {name: fe2, address: 127.0.0.4}
snat: {addresses: [127.0.0.2]}
timeouts: {idle: 1800}
admin: {socket: SOCKET}
workers: 1
"""


def _run(*args: str | Path, module: str = "ocsscale.engine") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def _refused(path: Path, expected: str, command: str = "check") -> str:
    result = _run(command, "--farm", path)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Traceback" not in out
    assert expected in out, out
    return out


@pytest.fixture
def base(tmp_path: Path) -> str:
    return BASE.replace("SOCKET", str(tmp_path / "admin.sock"))


def test_base_file_passes(tmp_path: Path, base: str) -> None:
    path = tmp_path / "farm.yaml"
    path.write_text(base)
    result = _run("check", "--farm", path)
    assert result.returncode == 0, result.stderr
    assert "farm hostile" in result.stdout


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("{idle: 1800}", "{idle: 1e-9}", "8:18: timeouts.idle: Input should be greater than or"),
        ("{idle: 1800}", "{idle: .nan}", "8:18: timeouts.idle: Input should be a finite number"),
        ("127.0.0.3}", "127.0.0.3, weight: true}", "5:45: servers[0].weight: Input should be a"),
        ("workers: 1", 'workers: "2"', "10:10: workers: Input should be a valid integer"),
        ("vip: [127.0.0.1]", "vip: [true]", "2:7: vip[0]: Input should be a valid string"),
        ("workers: 1", "workers: " + "7" * 5000, "10:10: yaml: a run of more than 100 digits"),
        ("127.0.0.4}", "127.0.0.3}", "5:3: servers: servers fe1 and fe2 have the same address"),
        ("[127.0.0.1]", "[198.18.0.40]", "2:7: vip[0]: not an address of this machine"),
        ("[127.0.0.2]", "[198.19.0.40]", "7:20: snat.addresses[0]: not an address of this"),
        ("ports: [5061]", "ports: [5061]\nmaxconn: 0", "4:10: maxconn: Input should be greater"),
        # the wildcard binds (so the host check passes): it would listen on everything
        ("[127.0.0.1]", "[0.0.0.0]", "2:7: vip[0]: 0.0.0.0 is the wildcard address (any"),
        ("[127.0.0.1]", '[127.0.0.1, "::"]', "2:18: vip[1]: :: is the wildcard address"),
        ("[127.0.0.1]", '["::ffff:0.0.0.0"]', "2:7: vip[0]: ::ffff:0:0 is the wildcard"),
        ("127.0.0.3}", "255.255.255.255}", "5:26: servers[0].address: 255.255.255.255 is the b"),
        ("127.0.0.3}", "224.0.0.18}", "5:26: servers[0].address: 224.0.0.18 is a multicast"),
        ("[127.0.0.1]", '["ff02::1"]', "2:7: vip[0]: ff02::1 is a multicast address"),
        ("[127.0.0.2]", "[0.0.0.0]", "7:20: snat.addresses[0]: 0.0.0.0 is the wildcard"),
    ],
)
def test_check_refuses_with_position(
    tmp_path: Path, base: str, old: str, new: str, expected: str
) -> None:
    assert old in base
    path = tmp_path / "farm.yaml"
    path.write_text(base.replace(old, new, 1))
    _refused(path, f"{path}:{expected}")


@pytest.mark.parametrize(
    ("socket_path", "expected"),
    [
        ("DIR", "9:17: admin.socket: names a directory"),
        ("DIR/" + "s" * 120, "9:17: admin.socket: a Unix socket path has at most 107 bytes"),
        ('"DIR/a\\0b.sock"', "9:17: admin.socket: a socket path cannot hold a NUL byte"),
        ("DIR/file/x.sock", "9:17: admin.socket: a parent of the path is not a directory"),
        ("DIR/file", "9:17: admin.socket: names an existing file that is not a socket"),
    ],
)
def test_admin_socket_paths_serve_refuses(tmp_path: Path, socket_path: str, expected: str) -> None:
    (tmp_path / "file").write_text("not a socket\n")
    path = tmp_path / "farm.yaml"
    path.write_text(BASE.replace("SOCKET", socket_path.replace("DIR", str(tmp_path))))
    _refused(path, f"{path}:{expected}")


def test_serve_refuses_the_same_before_binding(tmp_path: Path, base: str) -> None:
    path = tmp_path / "farm.yaml"
    path.write_text(base.replace("[127.0.0.2]", "[198.19.0.40]"))
    expected = f"{path}:7:20: snat.addresses[0]: not an address of this machine"
    _refused(path, expected, command="serve")
    assert not (tmp_path / "admin.sock").exists()
    # The main CLI mounts the same command.
    result = _run("lb", "check", "--farm", path, module="ocsscale")
    assert result.returncode == 2 and expected in result.stderr, result.stderr


def test_serve_refuses_a_wildcard_vip_before_binding(tmp_path: Path, base: str) -> None:
    path = tmp_path / "farm.yaml"
    path.write_text(base.replace("[127.0.0.1]", "[0.0.0.0]"))
    _refused(path, f"{path}:2:7: vip[0]: 0.0.0.0 is the wildcard address", command="serve")
    assert not (tmp_path / "admin.sock").exists()


def test_missing_file_and_directory(tmp_path: Path) -> None:
    _refused(tmp_path / "nothere.yaml", "nothere.yaml")
    _refused(tmp_path, str(tmp_path))


def test_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "farm.fifo"
    os.mkfifo(fifo)
    _refused(fifo, "FIFO")


# The reading limits (regular files only, size, depth, aliases, bytes that are not
# text, by line and column) are the shared YAML reader's (ocsscale/yamlguard.py),
# the same as for the pool file.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # billion laughs: 9 levels of 9 aliases
        (
            "".join(
                f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9 if i else ['"lol"'] * 9) + "]\n"
                for i in range(10)
            ),
            "yaml: more than",
        ),
        ("servers: " + "[" * 100_000 + "\n", "1:"),
        ("health: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", "1:"),
        (BASE.replace("workers: 1", "workers: 1\x00"), ":10:11: "),
        (BASE.replace("farm: hostile", "farm: hostil\xe9"), ":1:13: "),
    ],
    ids=["alias-bomb", "brackets", "nested-mappings", "nul-byte", "latin-1"],
)
def test_reading_limits(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "farm.yaml"
    path.write_bytes(text.encode("latin-1"))
    _refused(path, f"{path}{expected}" if expected.startswith(":") else expected)
