"""Hostile pool files through the real `ocsscale` command in a subprocess.

Each must end in a clean refusal: exit 2, one line FILE:LINE:COL ... [RULE],
no traceback and no value from the file. The subprocess timeout only turns a
hang into a failure (an alias bomb or a FIFO used to run forever).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocsscale.yamlguard import MAX_BYTES, MAX_DEPTH, MAX_KEYS, MAX_NODES
from ocsscale.yamlpos import parse_yaml

from .helpers import ONE_ARMED, line_of, variant, write

SECRET = "HookSecret42"
HANG_GUARD = 60  # seconds; a refusal takes well under one


def check(path: Path | str, *, config_after: bool = False) -> subprocess.CompletedProcess[str]:
    args = ["check", "-c", str(path)] if config_after else ["-c", str(path), "check"]
    return subprocess.run(
        [sys.executable, "-m", "ocsscale", *args],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


def refused(result: subprocess.CompletedProcess[str], rule: str) -> str:
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Traceback" not in out
    assert SECRET not in out
    assert f"[{rule}]" in result.stderr, out
    return result.stderr


def alias_bomb() -> str:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 10):
        ref = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([ref] * 9)}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused(tmp_path: Path) -> None:
    text = alias_bomb()
    err = refused(check(write(tmp_path, text)), "yaml.too-large")
    # a0 is 10 nodes, a1 91, a2 820, a3 7,381: past the limit while a3 is read
    assert f"pool.yaml:{line_of(text, 'a3: &a3')}:" in err


def test_too_many_aliases_are_refused(tmp_path: Path) -> None:
    text = "a: &a x\nb: [" + ", ".join(["*a"] * 150) + "]\n"
    refused(check(write(tmp_path, text)), "yaml.too-many-aliases")


def test_anchors_used_a_few_times_are_fine() -> None:
    text = (
        "cred: &admin {user: a, password: {env: P}}\nhosts: [" + ", ".join(["*admin"] * 50) + "]\n"
    )
    doc = parse_yaml(text, "f.yaml")
    assert doc.data["hosts"][49] == {"user": "a", "password": {"env": "P"}}


@pytest.mark.parametrize(
    ("text", "column"),
    [
        # the scanner stops at the first bracket past the limit, as it reads ahead
        ("a: " + "[" * 50_000 + "]" * 50_000 + "\n", 4 + MAX_DEPTH),
        # the parser counts the top mapping as a level too
        ("a: " + "{b: " * 3_000 + "}" * 3_000 + "\n", 4 + 4 * (MAX_DEPTH - 1)),
    ],
    ids=["brackets", "mappings"],
)
def test_deep_nesting_is_refused_at_its_position(tmp_path: Path, text: str, column: int) -> None:
    err = refused(check(write(tmp_path, text)), "yaml.too-deep")
    assert f"pool.yaml:1:{column}:" in err


def test_deep_block_nesting_is_refused(tmp_path: Path) -> None:
    text = "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5))
    err = refused(check(write(tmp_path, text)), "yaml.too-deep")
    assert f"pool.yaml:{MAX_DEPTH + 1}:" in err


def test_too_many_keys_are_refused(tmp_path: Path) -> None:
    text = "".join(f"k{i}: {i}\n" for i in range(MAX_KEYS + 100))
    err = refused(check(write(tmp_path, text)), "yaml.too-many-keys")
    assert f"pool.yaml:{MAX_KEYS + 1}:1:" in err


def test_too_many_items_are_refused(tmp_path: Path) -> None:
    text = "a: [" + ", ".join(["1"] * (MAX_NODES + 10)) + "]\n"
    refused(check(write(tmp_path, text)), "yaml.too-large")


def test_a_large_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "pool.yaml"
    path.write_text("# " + "x" * MAX_BYTES + "\n")
    err = refused(check(path), "file.too-large")
    assert f"{MAX_BYTES // 1024} KiB" in err


def test_a_duplicated_secret_key_names_the_key_not_the_value(tmp_path: Path) -> None:
    old = "password: {env: OCS_ADMIN_PASSWORD}"
    indent = next(
        line[: len(line) - len(line.lstrip())] for line in ONE_ARMED.splitlines() if old in line
    )
    text = variant(ONE_ARMED, (old, f"{old}\n{indent}password: {SECRET}"))
    err = refused(check(write(tmp_path, text)), "yaml.duplicate-key")
    line = line_of(text, f"password: {SECRET}")
    assert f"pool.yaml:{line}:{len(indent) + 1}: key 'password' appears twice" in err


def test_a_duplicated_key_with_a_strange_name_is_not_quoted(tmp_path: Path) -> None:
    text = f'"{SECRET} x": 1\n"{SECRET} x": 2\n'
    err = refused(check(write(tmp_path, text)), "yaml.duplicate-key")
    assert "pool.yaml:2:1: this key appears twice" in err


def test_a_nul_byte_is_named_by_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "pool.yaml"
    path.write_bytes(b"a: 1\nb: xy\0z\n")
    err = refused(check(path), "file.nul-byte")
    assert "pool.yaml:2:6:" in err


def test_bytes_that_are_not_utf8_are_named_by_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "pool.yaml"
    path.write_bytes("a: 1\nb: \u00e9t\u00e9 ".encode() + b"caf\xe9\n")
    err = refused(check(path), "file.not-utf8")
    assert "pool.yaml:2:11:" in err  # columns count characters, not bytes


def test_a_control_character_is_named_by_line_and_column(tmp_path: Path) -> None:
    err = refused(check(write(tmp_path, "a: 1\nb: x\x07\n")), "yaml.control-character")
    assert "pool.yaml:2:5:" in err


def test_a_syntax_error_does_not_quote_the_file(tmp_path: Path) -> None:
    # ruamel's own text would quote the alias name
    err = refused(check(write(tmp_path, f"a: *{SECRET}\n")), "yaml.syntax")
    assert "pool.yaml:1:4: an alias (*name) with no anchor" in err


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "pool.yaml"
    os.mkfifo(fifo)
    err = refused(check(fifo), "file.not-regular")
    assert "a FIFO" in err


def test_a_directory_is_refused(tmp_path: Path) -> None:
    err = refused(check(tmp_path), "file.not-regular")
    assert "a directory" in err


def test_a_device_is_refused_without_reading_it() -> None:
    err = refused(check("/dev/zero"), "file.not-regular")
    assert "a character device" in err


def test_a_five_thousand_digit_number_is_refused_at_its_position(tmp_path: Path) -> None:
    digits = "9" * 5000
    text = variant(
        ONE_ARMED, ("expected_peak_connections: 20000", f"expected_peak_connections: {digits}")
    )
    out = refused(check(write(tmp_path, text)), "yaml.number-too-long")
    assert f":{line_of(text, 'expected_peak_connections:')}:" in out
    assert digits[:50] not in out
