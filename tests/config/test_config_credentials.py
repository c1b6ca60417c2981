from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocsscale.config.credentials import resolve, resolve_tsig_secret
from ocsscale.errors import SecretError
from ocsscale.secrets import MAX_SECRET_FILE_BYTES

from .helpers import ONE_ARMED, load_text, variant


def test_nothing_is_resolved_at_load_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCS_ADMIN_PASSWORD", raising=False)
    loaded = load_text(tmp_path, ONE_ARMED)  # no secret in the environment: still valid
    with pytest.raises(SecretError) as caught:
        resolve(loaded, "ocs-admin")
    assert "OCS_ADMIN_PASSWORD" in caught.value.message


def test_resolve_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCS_ADMIN_PASSWORD", "pa55-word")
    cred = resolve(load_text(tmp_path, ONE_ARMED), "ocs-admin")
    assert cred.username == "CONTOSO\\ocsadmin"
    assert cred.password is not None and cred.password.reveal() == "pa55-word"
    assert "pa55" not in repr(cred) and "pa55" not in str(cred)
    assert cred.key_file is None and cred.passphrase is None


def test_resolve_from_a_file_relative_to_the_pool(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "client.txt").write_text("from-a-file\n")
    (tmp_path / "key").write_text("not really a key")
    text = variant(
        ONE_ARMED,
        ("password: {env: OCS_CLIENT_PASSWORD}", "password: {file: secrets/client.txt}"),
        (
            "key_file: ~/.ssh/id_ed25519",
            "key_file: key\n    passphrase: {file: secrets/client.txt}",
        ),
    )
    loaded = load_text(tmp_path, text)
    cred = resolve(loaded, "client-admin")
    assert cred.password is not None and cred.password.reveal() == "from-a-file"
    lb = resolve(loaded, "lb-admin")
    assert lb.key_file == tmp_path / "key"
    assert lb.passphrase is not None and lb.passphrase.reveal() == "from-a-file"


def test_missing_key_file(tmp_path: Path) -> None:
    text = variant(ONE_ARMED, ("key_file: ~/.ssh/id_ed25519", "key_file: absent-key"))
    with pytest.raises(SecretError, match="absent-key"):
        resolve(load_text(tmp_path, text), "lb-admin")


def test_unknown_credential(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="no credential named 'x'"):
        resolve(load_text(tmp_path, ONE_ARMED), "x")


def test_tsig_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCSSCALE_TSIG_SECRET", "c2VjcmV0")
    assert resolve_tsig_secret(load_text(tmp_path, ONE_ARMED)).reveal() == "c2VjcmV0"


def _with_secret_file(path: str) -> str:
    return variant(
        ONE_ARMED, ("password: {env: OCS_CLIENT_PASSWORD}", f"password: {{file: '{path}'}}")
    )


def test_a_secret_file_that_is_a_fifo_or_a_device_is_refused_without_blocking(
    tmp_path: Path,
) -> None:
    os.mkfifo(tmp_path / "fifo")
    for path, kind in (("fifo", "a FIFO"), ("/dev/zero", "a character device")):
        loaded = load_text(tmp_path, _with_secret_file(path))
        with pytest.raises(SecretError) as caught:
            resolve(loaded, "client-admin")
        assert kind in caught.value.message


def test_a_secret_file_that_is_not_text_is_refused_without_quoting_it(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"Pa\xe9\xff55")
    loaded = load_text(tmp_path, _with_secret_file("secret"))
    with pytest.raises(SecretError) as caught:
        resolve(loaded, "client-admin")
    assert caught.value.message.endswith("not UTF-8 text")
    assert "xe9" not in caught.value.message and "Pa" not in caught.value.message


def test_a_huge_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"x" * (MAX_SECRET_FILE_BYTES + 1))
    loaded = load_text(tmp_path, _with_secret_file("secret"))
    with pytest.raises(SecretError) as caught:
        resolve(loaded, "client-admin")
    assert "64 KiB" in caught.value.message
