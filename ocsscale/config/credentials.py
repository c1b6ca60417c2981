"""Credentials resolved at the moment a transport needs them, never at load time.

`check` and `plan` therefore work without any secret in the environment, and a
secret only exists in memory as a `Secret`, which never prints its value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import SecretError
from ..secrets import Secret, resolve_env, resolve_file
from .loader import LoadedPool
from .model import SecretRef


@dataclass(frozen=True)
class ResolvedCredential:
    username: str
    password: Secret | None
    key_file: Path | None
    passphrase: Secret | None


def resolve_ref(ref: SecretRef, base: Path) -> Secret:
    """The secret a reference points at; relative files are read from `base`."""
    if ref.env is not None:
        return resolve_env(ref.env)
    assert ref.file is not None  # SecretRef guarantees exactly one
    return resolve_file(ref.file, base=base)


def resolve(loaded: LoadedPool, name: str) -> ResolvedCredential:
    """Resolve credential `name` of the pool file (raises SecretError, never echoing values)."""
    cred = loaded.pool.credentials.get(name)
    if cred is None:
        raise SecretError(f"no credential named '{name}' in {loaded.path}")
    base = loaded.base_dir
    key_file: Path | None = None
    if cred.key_file is not None:
        key_file = Path(os.path.expanduser(cred.key_file))
        if not key_file.is_absolute():
            key_file = base / key_file
        if not key_file.is_file():
            raise SecretError(f"credential '{name}': key file {key_file} does not exist")
    return ResolvedCredential(
        username=cred.username,
        password=resolve_ref(cred.password, base) if cred.password is not None else None,
        key_file=key_file,
        passphrase=resolve_ref(cred.passphrase, base) if cred.passphrase is not None else None,
    )


def resolve_tsig_secret(loaded: LoadedPool) -> Secret:
    """The TSIG key for RFC 2136 updates (SecretError when not configured)."""
    tsig = getattr(loaded.pool.dns, "tsig", None)  # only rfc2136 has one
    if tsig is None:
        raise SecretError("the pool file has no dns.tsig key")
    return resolve_ref(tsig.secret, loaded.base_dir)
