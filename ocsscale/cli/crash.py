"""An unexpected error: its traceback to a debug log, one line to the terminal.

Expected errors (OcsscaleError) are rendered by render.py; anything else is a
bug. Its traceback helps whoever fixes it but buries the operator's terminal,
so it goes to .ocsscale/debug.log next to the pool file (or, when there is no
pool file or its directory is not writable, ~/.cache/ocsscale/debug.log),
readable by its owner only, and the terminal gets one line that points there.
Only the stack and the exceptions' messages are written, never the frames'
local variables, where a resolved secret could be.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

from .. import __version__
from ..config.loader import STATE_DIR_NAME
from ..errors import EXIT_INTERNAL, EXIT_INTERRUPTED
from .render import err_console

DEBUG_LOG_NAME = "debug.log"
MAX_LOG_BYTES = 1024 * 1024  # past this, the log starts over


def report_unexpected(exc: BaseException, pool_file: Path | None, command: str | None) -> int:
    """Log `exc` with its traceback, print one line that points there; the exit code."""
    log = write_debug_log(exc, pool_file, command)
    where = f"see {log}" if log is not None else "and no debug log could be written"
    err_console.print(f"internal error ({type(exc).__name__}): {where}", markup=False, emoji=False)
    sys.stderr.flush()
    return EXIT_INTERNAL


def report_interrupted() -> int:
    err_console.print("interrupted", markup=False)
    sys.stderr.flush()
    return EXIT_INTERRUPTED


def debug_log_paths(pool_file: Path | None) -> list[Path]:
    """Where the log may go, best first."""
    paths = []
    try:
        # only next to a pool file that is there: `ocsscale lab up` run in some
        # directory does not leave a .ocsscale/ behind in it
        if pool_file is not None and Path(pool_file).is_file():
            paths.append(Path(pool_file).resolve().parent / STATE_DIR_NAME / DEBUG_LOG_NAME)
    except (OSError, RuntimeError):
        pass
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    paths.append(Path(cache) / "ocsscale" / DEBUG_LOG_NAME)
    return paths


def write_debug_log(exc: BaseException, pool_file: Path | None, command: str | None) -> Path | None:
    """Append `exc`'s traceback to the first debug log that can be written."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    entry = (
        f"=== {stamp} ocsscale {__version__}, pid {os.getpid()}, "
        f"command {command or '-'}\n" + "".join(traceback.format_exception(exc)) + "\n"
    ).encode("utf-8", errors="replace")
    for path in debug_log_paths(pool_file):
        try:
            _append_private(path, entry)
        except OSError:
            continue
        return path
    return None


def _append_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # O_NOFOLLOW: a symlink planted in the state directory does not get written through
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an older log may have been made with wider permissions
        if os.fstat(fd).st_size > MAX_LOG_BYTES:
            os.ftruncate(fd, 0)
        os.write(fd, data)
    finally:
        os.close(fd)
