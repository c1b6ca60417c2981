"""What the SSH and local transports share on a POSIX host: the commands for
resolving a name, flushing resolver caches and restarting services, and the
parsers of their output. Transports only differ in how a command gets run."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import CommandFailed, StepFailed
from .commands import PsScript, ShCommand, sh_quote
from .connections import Connection, check_ports, parse_ss, ss_command

if TYPE_CHECKING:
    from .base import CommandResult

DEFAULT_SERVICE_COMMAND = "systemctl restart {service}"
_SYSTEMD_STATUS = "systemctl is-active --quiet {service}"

# Each resolver cache that may exist on a Linux host. A host without any of
# them (plain glibc, no nscd, no systemd-resolved) caches nothing, so there is
# nothing to flush and that is not an error.
_FLUSH_SCRIPT = r"""
found=0
attempt() {
  if command -v "$1" >/dev/null 2>&1; then
    found=1
    if out=$("$@" 2>&1); then echo "ok: $*"; else echo "failed: $*: $out"; fi
  fi
}
attempt resolvectl flush-caches
attempt nscd -i hosts
[ "$found" = 1 ] || echo "none: no resolver cache on this host (no resolvectl, no nscd)"
exit 0
"""


def resolve_command(name: str) -> ShCommand:
    return ShCommand.of("getent", "ahostsv4", name)


def parse_getent(stdout: str) -> list[str]:
    """Unique IPv4 addresses from `getent ahostsv4` output, first seen first."""
    seen: list[str] = []
    for line in stdout.splitlines():
        fields = line.split()
        if not fields:
            continue
        try:
            addr = str(ipaddress.IPv4Address(fields[0]))
        except ValueError:
            continue
        if addr not in seen:
            seen.append(addr)
    return seen


# getent's status when the name does not resolve (the others are real errors)
GETENT_NOT_FOUND = 2


def flush_dns_command() -> ShCommand:
    return ShCommand.of("sh", "-c", _FLUSH_SCRIPT)


def flush_notes(stdout: str) -> list[str]:
    return [line.strip() for line in stdout.splitlines() if line.strip()]


def status_template_for(service_command: str, status_command: str | None) -> str | None:
    """The status check to run after a restart: the one configured, else the
    systemd one when the restart itself goes through systemd."""
    if status_command is not None:
        return status_command or None
    if service_command.strip().startswith("systemctl restart"):
        return _SYSTEMD_STATUS
    return None


SERVICE_ACTIONS = ("start", "stop", "enable", "disable", "is-active", "is-enabled")


#: `systemctl is-active` words: whether the exit status is 0 with it (active or reloading)
ACTIVE_WORDS = {
    "active": True, "reloading": True, "inactive": False, "failed": False,
    "activating": False, "deactivating": False,
}  # fmt: skip
#: `systemctl is-enabled` words (systemctl(1)): whether the exit status is 0 with it
START_MODE_WORDS = {
    "enabled": True, "enabled-runtime": True, "alias": True, "static": True,
    "indirect": True, "generated": True, "transient": True, "disabled": False,
    "linked": False, "linked-runtime": False, "masked": False, "masked-runtime": False,
    "bad": False, "not-found": False,
}  # fmt: skip


def service_word(words: dict[str, bool], exit_status: int, stdout: str) -> str | None:
    """The one word `systemctl is-active` / `is-enabled` printed, when it is one of
    `words` and the exit status agrees with it; None for any other answer."""
    word = stdout.strip()
    if word not in words or words[word] != (exit_status == 0):
        return None
    return word


def control_template(service_command: str, explicit: str | None, action: str) -> str | None:
    """The command for `action` on one service: the configured service_control, else
    systemd's when restarts go through systemd; None when neither is known."""
    if action not in SERVICE_ACTIONS:
        raise ValueError(action)
    if explicit:
        return explicit.replace("{action}", action)
    if service_command.strip().startswith("systemctl restart"):
        return f"systemctl {action} {{service}}"
    return None


def service_command(template: str, service: str) -> ShCommand:
    """The template is shell text written by the operator; the service name is
    quoted into it, so a name cannot add commands of its own."""
    return ShCommand.of("sh", "-c", template.replace("{service}", sh_quote(service)))


class PosixHostMixin:
    """resolve / flush_dns / restart_services for any host that can `run` an
    sh command. The host class sets the attributes declared here."""

    name: str
    service_command: str
    status_command: str | None
    #: the pool file's command to start, stop, enable or disable one service (set by
    #: transports/factory.py); None: derived from service_command
    service_control: str | None = None
    #: what the last flush_dns found and did (evidence for the caller)
    last_flush: list[str]

    def run(
        self, command: ShCommand | PsScript, *, timeout: float = 120.0, check: bool = True
    ) -> CommandResult:
        raise NotImplementedError

    def resolve(self, name: str) -> list[str]:
        result = self.run(resolve_command(name), timeout=30.0, check=False)
        if result.exit_status == GETENT_NOT_FOUND:
            return []
        if not result.ok:
            raise CommandFailed(self.name, result.command, result.exit_status, result.stderr)
        return parse_getent(result.stdout)

    def flush_dns(self) -> None:
        result = self.run(flush_dns_command(), timeout=60.0)
        self.last_flush = flush_notes(result.stdout)

    def connections(self, ports: Sequence[int]) -> list[Connection]:
        """The established TCP connections on local `ports` (connections.py): `ss`'s
        fixed layout, read strictly; a failed or unreadable answer raises."""
        wanted = check_ports(self.name, ports)
        result = self.run(ss_command(wanted), timeout=60.0)
        return parse_ss(self.name, result.stdout, wanted)

    def control_services(
        self, action: str, names: Sequence[str], *, check: bool = True
    ) -> list[bool]:
        """`action` (start, stop, enable, disable, is-active, is-enabled) on each named
        service; for each, whether the command succeeded (with `check`, a failure raises)."""
        template = control_template(
            self.service_command, getattr(self, "service_control", None), action
        )
        if template is None:
            raise StepFailed(
                f"{self.name}: no command to {action} a service: set the transport's "
                "service_control in the pool file (e.g. 'systemctl {action} {service}')"
            )
        return [
            self.run(service_command(template, service), timeout=300.0, check=check).ok
            for service in names
        ]

    def service_states(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        """Each named service's {'active': ..., 'start_mode': ...}, the words `systemctl
        is-active` and `is-enabled` print ('active', 'inactive', ...; 'enabled', 'disabled',
        'static', ...). Read by the word, checked against the exit status: any other
        answer (an error, a service_control that is not systemctl-like) raises."""
        states: dict[str, dict[str, str]] = {}
        for service in names:
            state = {}
            for key, action, words in (
                ("active", "is-active", ACTIVE_WORDS),
                ("start_mode", "is-enabled", START_MODE_WORDS),
            ):
                template = control_template(
                    self.service_command, getattr(self, "service_control", None), action
                )
                if template is None:
                    raise StepFailed(
                        f"{self.name}: no command to read a service's state: set the "
                        "transport's service_control in the pool file (e.g. "
                        "'systemctl {action} {service}')"
                    )
                result = self.run(service_command(template, service), timeout=60.0, check=False)
                word = service_word(words, result.exit_status, result.stdout)
                if word is None:
                    raise StepFailed(
                        f"{self.name}: unreadable answer from `{action}` for {service} "
                        f"(exit {result.exit_status}, {len(result.stdout)} bytes): expected "
                        "one word as systemctl prints it"
                    )
                state[key] = word
            states[service] = state
        return states

    def restart_services(self, names: Sequence[str], *, wait: float = 60.0) -> None:
        status = status_template_for(self.service_command, self.status_command)
        for service in names:
            self.run(service_command(self.service_command, service), timeout=300.0)
            if status is None:
                continue
            deadline = time.monotonic() + wait
            while True:
                check = self.run(service_command(status, service), timeout=30.0, check=False)
                if check.ok:
                    break
                if time.monotonic() > deadline:
                    raise StepFailed(
                        f"{self.name}: service {service} is not running {wait:.0f}s after "
                        f"its restart (`{check.command}` exited {check.exit_status})"
                    )
                time.sleep(1.0)
