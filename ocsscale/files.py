"""Reading a file named by someone else: a regular file, without blocking, bounded.

A path in a pool file or on the command line may name a FIFO (opening it would
wait for a writer forever), a directory, or a device such as /dev/zero (reading
it would never end). Such files are refused before a byte is read, and no file
is read past a limit. Depends on nothing of ocsscale, so the engine may use it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class Unreadable(Exception):
    """Why a file was not read; `rule` is a short id such as file.not-regular."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


def read_regular(path: Path | str, max_bytes: int) -> bytes:
    """The bytes of the regular file at `path`, at most `max_bytes` of them."""
    too_large = Unreadable("file.too-large", f"larger than {_size(max_bytes)}, the limit")
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise Unreadable("file.missing", "no such file") from None
    except OSError as exc:
        raise Unreadable("file.unreadable", f"cannot read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise Unreadable("file.not-regular", f"{kind}: give the path of a regular file")
        if info.st_size > max_bytes:
            raise too_large
        chunks = []
        left = max_bytes + 1  # the file may grow while it is read
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise Unreadable("file.unreadable", f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise too_large
    return data


def _size(n: int) -> str:
    return f"{n // 1024} KiB" if n >= 1024 else f"{n} bytes"
