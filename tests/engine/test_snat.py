"""SNAT exhaustion, for real: the kernel runs out of source ports and says EADDRNOTAVAIL.

The scenario runs in a private network namespace whose ip_local_port_range holds two
ports, so one SNAT address reaches one server port twice; host sysctls are untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCENARIO = Path(__file__).with_name("snat_scenario.py")


def _can_unshare() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(
    not _can_unshare(), reason="needs root with unshare(1) and ip(8) for a private netns"
)


def _run(n_snat: int, n_clients: int) -> dict:
    script = (
        "ip link set lo up && echo '40000 40001' > /proc/sys/net/ipv4/ip_local_port_range && "
        f"exec {sys.executable} {SCENARIO} {n_snat} {n_clients}"
    )
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_one_snat_address_refuses_cleanly_when_exhausted() -> None:
    out = _run(1, 3)
    # Two source ports towards the one server port; the third client is closed at
    # once (not left hanging) and the exhaustion is an event.
    assert out["results"] == ["ok", "ok", "closed"]
    assert out["snat"]["exhausted"] == 1
    assert out["snat"]["in_use"] == {"127.0.30.1": 2}
    assert "snat-exhausted" in out["events"]
    assert out["active"] == 2


def test_second_snat_address_lifts_the_limit() -> None:
    out = _run(2, 5)
    assert out["results"] == ["ok"] * 4 + ["closed"]
    assert out["snat"]["in_use"] == {"127.0.30.1": 2, "127.0.30.2": 2}
    assert out["snat"]["exhausted"] == 1
