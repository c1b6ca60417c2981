"""`make demo`: the main job, rehearsed on the built-in lab.

Brings a lab up, runs `preflight` through `validate-fe` from the lab's admin
host as an operator would, shows the status, rolls everything back, proves
every Linux host's /etc/hosts is byte-identical to before, and takes the lab
down again (also when a step fails or the demo is interrupted).

Without root (the lab needs network namespaces) it runs `check` and `plan`
on the shipped example instead and says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
LAB = "ocsdemo"
POOL = f"/run/ocsscale-lab/{LAB}/pool.yaml"
THROUGH = "validate-fe"
LINUX_HOSTS = ("client01", "ocsfe00", "ocsfe01", "ocsfe02")

console = Console(highlight=False)


def ocsscale(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "ocsscale", *args]
    if not capture:
        console.print(f"\n[bold]$ ocsscale {' '.join(args)}[/]")
    return subprocess.run(cmd, cwd=REPO, text=True, capture_output=capture)


def on_admin(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    """`ocsscale ARGS` run from the lab's admin host, against the lab's pool file."""
    return ocsscale(
        "lab", "exec", "admin", "-n", LAB, "--", "ocsscale", "-c", POOL, *args, capture=capture
    )


def hosts_digests() -> dict[str, str]:
    digests = {}
    for host in LINUX_HOSTS:
        out = ocsscale("lab", "exec", host, "-n", LAB, "--", "cat", "/etc/hosts", capture=True)
        if out.returncode != 0:
            raise RuntimeError(f"cannot read /etc/hosts on {host}: {out.stderr.strip()}")
        digests[host] = hashlib.sha256(out.stdout.encode()).hexdigest()
    return digests


def without_lab() -> int:
    console.print(
        "[yellow]The lab needs root on Linux (network namespaces).[/] Showing `check` and "
        "`plan` on the shipped example instead; run `sudo make demo` for the full rehearsal."
    )
    example = str(REPO / "examples" / "one-armed.yaml")
    for args in (("-c", example, "check"), ("-c", example, "plan", "--phase", THROUGH)):
        if ocsscale(*args).returncode != 0:
            return 1
    return 2


def rehearse() -> int:
    results: list[tuple[str, str, str]] = []

    def record(what: str, ok: bool, detail: str = "") -> bool:
        results.append((what, "[green]ok[/]" if ok else "[red]FAILED[/]", detail))
        return ok

    started = time.monotonic()
    up = ocsscale("lab", "up", "--name", LAB)
    if not record("lab up", up.returncode == 0, "namespaces, sshd, BIND, pool members, WinRM"):
        return summary(results, 1)
    try:
        before = hosts_digests()
        on_admin("plan", "--phase", THROUGH)
        run = on_admin("run", "--through", THROUGH, "--yes")
        record(f"run preflight → {THROUGH}", run.returncode == 0, f"exit code {run.returncode}")
        on_admin("status")
        back = on_admin("rollback", "--yes")
        record("rollback", back.returncode == 0, f"exit code {back.returncode}")
        after = hosts_digests()
        same = [h for h in LINUX_HOSTS if before[h] == after[h]]
        record(
            "hosts files byte-identical after rollback",
            len(same) == len(LINUX_HOSTS),
            ", ".join(f"{h} {'=' if h in same else '≠'}" for h in LINUX_HOSTS),
        )
        status = on_admin("status", "--json", capture=True)
        if status.returncode == 0:
            undo = json.loads(status.stdout).get("rollback_would_undo", [])
            record("nothing left to undo", not undo, f"{len(undo)} undo records left")
    finally:
        down = ocsscale("lab", "down", "--name", LAB)
        record("lab down", down.returncode == 0, "nothing left behind")
    failed = any("FAILED" in status for _, status, _ in results)
    console.print(f"\n(demo took {time.monotonic() - started:.0f} s)")
    return summary(results, 1 if failed else 0)


def summary(results: list[tuple[str, str, str]], code: int) -> int:
    table = Table(title="ocsscale demo: the front-end phases on the lab", title_justify="left")
    table.add_column("step")
    table.add_column("result")
    table.add_column("detail")
    for row in results:
        table.add_row(*row)
    console.print()
    console.print(table)
    return code


def main() -> int:
    if sys.platform != "linux" or os.geteuid() != 0:
        return without_lab()
    # A demo lab left by an earlier, interrupted demo is taken down first.
    ocsscale("lab", "down", "--name", LAB, capture=True)
    return rehearse()


if __name__ == "__main__":
    sys.exit(main())
