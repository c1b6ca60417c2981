"""Service control for lab hosts: what the transports run to control a "service".

    python -m ocsscale_lab.svc --lab-dir DIR --host HOST ACTION NAME|all

ACTION: start, stop, restart, reload (the service's reload signal), status;
is-active and is-enabled print one word and exit as `systemctl` does (active /
inactive: 0 / 3; enabled / disabled: 0 / 1); enable and disable set whether the
host's boot starts it (kept in the lab directory); boot does what a restart of
the host does to its services: starts the enabled ones, stops the disabled ones.

Lab hosts have no init system; this stands in for `systemctl`. It reads the
service's definition from the lab directory, stops it by its recorded pid
(checked against /proc/PID/cmdline) and starts it again, waiting until it
listens. The lab pool file's `service_command` calls it through the lab's
`lab-svc` wrapper. Exit codes: 0 done (for status: running), 1 failed or not
running, 2 bad arguments or unknown service, 3 inactive (is-active).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import services
from .system import LabError

ACTIONS = (
    "start", "stop", "restart", "reload", "status", "is-active", "enable", "disable",
    "is-enabled", "boot",
)  # fmt: skip
#: systemctl is-active's exit status for a unit that does not run
INACTIVE = 3


def control(lab_dir: Path, host: str, action: str, name: str) -> tuple[int, list[str]]:
    """Apply `action` to one service (or `all` of the host's); exit code and report lines."""
    names = [n for n in services.names(lab_dir, host) if n != "sshd"] if name == "all" else [name]
    lines: list[str] = []
    code = 0
    for service_name in names:
        service = services.load(lab_dir, host, service_name)
        if action == "is-enabled":
            mode = services.start_mode(lab_dir, service)
            lines.append(mode)
            code = code or (0 if mode == "enabled" else 1)
            continue
        if action == "is-active":
            running = services.pid_of(lab_dir, service) is not None
            lines.append("active" if running else "inactive")
            code = code or (0 if running else INACTIVE)
            continue
        if action in ("enable", "disable"):
            services.set_start_mode(lab_dir, service, action + "d")
            lines.append(f"{host}: {service_name} {action}d")
            continue
        step = action
        if action == "boot":
            step = "start" if services.start_mode(lab_dir, service) == "enabled" else "stop"
        if step == "reload":
            lines.append(
                f"{host}: {service_name} reloaded (pid {services.reload(lab_dir, service)})"
            )
            continue
        if step in ("stop", "restart"):
            services.stop(lab_dir, service)
        if step in ("start", "restart"):
            pid = services.start(lab_dir, service)
            lines.append(f"{host}: {service_name} running (pid {pid})")
        elif step == "stop":
            lines.append(f"{host}: {service_name} stopped")
        else:
            pid_now = services.pid_of(lab_dir, service)
            state = f"running (pid {pid_now})" if pid_now else "stopped"
            lines.append(f"{host}: {service_name} {state}")
            code = code or (0 if pid_now else 1)
    return code, lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocsscale_lab.svc")
    parser.add_argument("--lab-dir", required=True, type=Path)
    parser.add_argument("--host", required=True)
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("service", help="a service of the host, or `all` (not sshd)")
    args = parser.parse_args(argv)
    if not (args.lab_dir / "state.json").is_file():
        print(f"error: {args.lab_dir} is not a lab directory", file=sys.stderr)
        return 2
    if args.service != "all" and args.service not in services.names(args.lab_dir, args.host):
        known = ", ".join(services.names(args.lab_dir, args.host)) or "none"
        print(f"error: {args.host} has no service {args.service!r} ({known})", file=sys.stderr)
        return 2
    try:
        code, lines = control(args.lab_dir, args.host, args.action, args.service)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
