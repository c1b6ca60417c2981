"""Files the tool writes for the operator (the report, the failover procedure):
whole or not at all, and in `.ocsscale/` owner-only like the journal beside them.

A temporary file in the target's directory is written, flushed to disk and renamed
over the target, so a reader (or a run cut short) never sees half a file. mkstemp
creates it 0600, so a private file is never readable by others, not even for the
moment before the rename.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def private_dir(path: Path) -> Path:
    """The state directory, owner-only (0700): the journal in it holds the
    before-images of hosts files. One made by an older ocsscale is tightened."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_file(path, 0o700)
    return path


def private_file(path: Path, mode: int = 0o600) -> None:
    """Tighten an existing file of ours to `mode` (one someone else owns is left
    as it is: chmod would fail, and it is not ours to change)."""
    try:
        st = path.stat()
        if st.st_uid == os.geteuid() and st.st_mode & 0o777 != mode:
            os.chmod(path, mode)
    except FileNotFoundError:
        pass


def write_atomic(path: Path, text: str, *, private: bool = False) -> None:
    """Write `text` to `path` whole or not at all (OSError when it cannot be).
    private: 0600; else the mode a file written the ordinary way gets (umask)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if not private:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` (in the state directory) 0600, its directory made or
    tightened to 0700 first (OSError when it cannot be)."""
    private_dir(Path(path).parent)
    write_atomic(path, text, private=True)
