"""What fe.gate reads on a Windows front end over WinRM (see fe_gate.py).

- `service.<NAME>`: every service of the profile on the FE (by name, and by
  display name like `Office Communications Server*`, with the running services
  that depend on them) and its state: one that Windows starts at boot (or that
  runs now) must be Running; a named service (W3SVC) must exist, and at least
  one service must match each display-name pattern (else OCS is not installed).

Each function returns findings (fe_gate.finding) and never raises for what
the host answers; a host that cannot be asked is a failed finding.
"""

from __future__ import annotations

from typing import Any

from ..errors import OcsscaleError


def _finding(check: str, ok: bool, message: str, proven: bool = True) -> dict[str, Any]:
    return {"check": check, "ok": ok, "proven": proven, "message": message}


def service_findings(ctx: Any, fe: Any) -> list[dict[str, Any]]:
    profile = ctx.profile.services
    patterns, names = list(profile.windows_display_names), list(profile.windows)
    if not patterns and not names:
        return []
    host = ctx.host(fe.name)
    try:
        # names as patterns too: a missing W3SVC is a finding, not an error of the script
        found = host.services([], [*patterns, *names])
    except OcsscaleError as exc:
        return [_finding("service", False, f"cannot list services: {exc.message}")]
    out = []
    for name in names:
        if not any(s.name.lower() == name.lower() for s in found):
            out.append(_finding(f"service.{name}", False, f"{name} is not installed"))
    for pattern in patterns:
        if not any(_like(s.display_name, pattern) for s in found):
            out.append(
                _finding(
                    "service.display",
                    False,
                    f"no service whose display name is like {pattern!r}: is OCS installed?",
                )
            )
    for s in found:
        label = f"{s.name} ({s.display_name})"
        if s.status == "Running":
            out.append(_finding(f"service.{s.name}", True, f"{label} is Running"))
        elif s.should_run:
            out.append(
                _finding(
                    f"service.{s.name}",
                    False,
                    f"{label} is {s.status}, but starts with Windows ({s.start_mode})",
                )
            )
        else:
            out.append(
                _finding(
                    f"service.{s.name}",
                    True,
                    f"{label} is {s.status} and does not start with Windows ({s.start_mode})",
                )
            )
    return out


def _like(text: str, pattern: str) -> bool:
    from fnmatch import fnmatchcase

    return fnmatchcase(text.lower(), pattern.lower())
