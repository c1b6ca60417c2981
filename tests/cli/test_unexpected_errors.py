"""A bug's traceback goes to .ocsscale/debug.log; the terminal gets one line.

The real `ocsscale` entry point runs in a subprocess, with one function of the
tool replaced by one that fails the way a bug would (the only way to make a
bug on purpose); Ctrl-C is a real SIGINT.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ocsscale.errors import EXIT_INTERNAL, EXIT_INTERRUPTED

REPO = Path(__file__).resolve().parents[2]
SECRET = "HookSecret42"
HANG_GUARD = 60

# check_cmd calls load_pool; here it fails as a bug would, with a secret in a local
BUGGY = f"""
import sys, time
import ocsscale.cli.config_cmds as cmds

MODE = sys.argv[-1]

def load_pool(path):
    password = {SECRET!r}
    if MODE == "sleep":
        print("ready", flush=True)
        time.sleep(60)
    raise ValueError("the bug's own message")

cmds.load_pool = load_pool
sys.argv = ["ocsscale", *sys.argv[1:-1]]
from ocsscale.cli.main import main
main()
"""


def run(cwd: Path, *args: str, mode: str = "fail", **kw: object) -> subprocess.Popen[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cwd / "cache"), "COLUMNS": "200"}
    env.pop("OCSSCALE_POOL", None)
    return subprocess.Popen(
        [sys.executable, "-c", BUGGY, *args, mode],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,  # type: ignore[arg-type]
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=HANG_GUARD)
    return proc.returncode, out, err


def test_a_bug_prints_one_line_and_logs_the_traceback(tmp_path: Path) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text((REPO / "examples" / "one-armed.yaml").read_text())
    code, out, err = finish(run(tmp_path, "check"))
    log = tmp_path / ".ocsscale" / "debug.log"
    assert code == EXIT_INTERNAL
    assert err == f"internal error (ValueError): see {log}\n"
    assert "Traceback" not in out + err
    text = log.read_text()
    assert "Traceback (most recent call last)" in text
    assert "ValueError: the bug's own message" in text
    assert "command check" in text
    assert SECRET not in text  # locals are never written
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700

    # a second bug appends; a log made wider by hand is made owner-only again
    log.chmod(0o644)
    code, _, _ = finish(run(tmp_path, "-c", str(pool), "check"))
    assert code == EXIT_INTERNAL
    assert log.read_text().count("Traceback (most recent call last)") == 2
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


@pytest.mark.parametrize("pool", ["no/such/pool.yaml", "pool.yaml"])
def test_without_a_pool_file_the_log_goes_to_the_cache(tmp_path: Path, pool: str) -> None:
    code, _, err = finish(run(tmp_path, "check", "-c", str(tmp_path / pool)))
    log = tmp_path / "cache" / "ocsscale" / "debug.log"
    assert code == EXIT_INTERNAL
    assert err == f"internal error (ValueError): see {log}\n"
    assert "ValueError: the bug's own message" in log.read_text()
    assert not (tmp_path / "no").exists()
    assert not (tmp_path / ".ocsscale").exists()


def test_a_symlink_in_place_of_the_log_is_not_written_through(tmp_path: Path) -> None:
    (tmp_path / "pool.yaml").write_text("")
    (tmp_path / ".ocsscale").mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("untouched\n")
    (tmp_path / ".ocsscale" / "debug.log").symlink_to(target)
    code, _, err = finish(run(tmp_path, "check"))
    assert code == EXIT_INTERNAL
    assert target.read_text() == "untouched\n"
    assert err == f"internal error (ValueError): see {tmp_path / 'cache/ocsscale/debug.log'}\n"


def test_ctrl_c_says_interrupted(tmp_path: Path) -> None:
    proc = run(tmp_path, "check", mode="sleep")
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc)
    assert code == EXIT_INTERRUPTED
    assert err == "interrupted\n"
    assert not (tmp_path / ".ocsscale").exists()
