"""This machine's own default route, for tests that compare it with what the tool reads
from a host that is this machine (the suite's sshd, the WinRM stand-in)."""

from __future__ import annotations

import shutil
import subprocess


def machine_gateway() -> str | None:
    """This machine's IPv4 default gateway, as `ip` says (None: no `ip`, or no default)."""
    if shutil.which("ip") is None:
        return None
    out = subprocess.run(
        ["ip", "-4", "route", "show", "default"], capture_output=True, text=True, check=False
    ).stdout.split()
    return out[out.index("via") + 1] if "via" in out else None
