"""`make demo`: the main job on the shipped example, so a newcomer sees it work.

Runs `check` and `plan` on the walkthrough's one-armed example. Nothing is
contacted: the example's 10.x addresses are only ever planned.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _ocsscale(*args: str) -> int:
    cmd = [sys.executable, "-m", "ocsscale", *args]
    print(f"\n$ ocsscale {' '.join(args)}", flush=True)
    return subprocess.call(cmd, cwd=REPO)


def main() -> int:
    example = str(REPO / "examples" / "one-armed.yaml")
    print("ocsscale demo: check and plan the walkthrough's one-armed pool (nothing is contacted).")
    for args in (("-c", example, "check"), ("-c", example, "plan")):
        rc = _ocsscale(*args)
        if rc != 0:
            print(f"demo: `ocsscale {' '.join(args)}` failed with exit code {rc}", file=sys.stderr)
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
