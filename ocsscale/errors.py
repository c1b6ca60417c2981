"""One error tree for everything ocsscale expects to go wrong.

The CLI renders these in one place as a clear message and an exit code;
anything else is a bug, whose traceback goes to a debug log (cli/crash.py).
Messages must never contain a secret: code that builds them only has masked
values at hand (see secrets.py).
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1  # a step or check failed; state kept, rollback possible
EXIT_USAGE = 2  # invalid input or usage
EXIT_LOCKED = 3  # another run holds the lock
EXIT_DECLINED = 4  # the operator declined
EXIT_INTERNAL = 70  # an unexpected error, a bug: EX_SOFTWARE of sysexits.h
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


class OcsscaleError(Exception):
    """Base of every expected error; `exit_code` is what the CLI returns."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(OcsscaleError):
    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a YAML input, with where it is and which rule it breaks."""

    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    path: str  # dotted path in the document, e.g. load_balancer.mode
    rule: str  # short rule id, e.g. lb.mode.out-of-path
    message: str

    def render(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}:{self.column}"
        path = f" {self.path}:" if self.path else ""
        return f"{where}:{path} {self.message} [{self.rule}]"


class ConfigError(UsageError):
    """All problems of one input file at once."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.file, i.line, i.column, i.path))
        first = self.issues[0].render() if self.issues else "invalid configuration"
        more = f" (and {len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        super().__init__(first + more)

    def render_all(self) -> str:
        return "\n".join(i.render() for i in self.issues)


class JournalError(UsageError):
    """The journal cannot be trusted: missing or empty next to the evidence of a
    run, or not a journal at all. Nothing is read from it and nothing written."""


class UndoRecordError(UsageError):
    """A journaled undo record is not of the shape its action's revert needs:
    bad input, so the rollback stops before it reverts anything."""


class SecretError(UsageError):
    """A credential reference that cannot be resolved (never includes the value)."""


class TransportError(OcsscaleError):
    """A host could not be reached, authenticated or driven."""


class HostKeyError(TransportError):
    """An SSH host key was unknown or did not match known_hosts."""


class CommandFailed(TransportError):
    """A remote command exited non-zero (its output is kept for evidence)."""

    def __init__(self, host: str, command: str, exit_status: int, stderr: str) -> None:
        super().__init__(
            f"{host}: `{command}` exited with status {exit_status}: {stderr.strip()[:400]}"
        )
        self.host = host
        self.command = command
        self.exit_status = exit_status
        self.stderr = stderr


class StepFailed(OcsscaleError):
    """A step's apply or verify failed; the journal keeps the state for rollback."""


class CheckFailed(StepFailed):
    """A read-only check (a gate, a probe) did not hold."""


class Refused(CheckFailed):
    """A guard refused a change before anything was changed (the record is not
    what the change was planned against, a member is not up): the step leaves
    no undo record, so a rollback never writes back what someone else set."""


class NotImplementedAction(StepFailed):
    """A playbook step names an action that is not built yet: run refuses it."""


class Interrupted(OcsscaleError):
    """The run or rollback was stopped by Ctrl-C, SIGHUP or SIGTERM: exit 128 +
    the signal, as shells report it (130 for Ctrl-C). The journal keeps every
    step, as after a kill."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str, *, hint: str | None = None, code: int = 130) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = code


class LockHeld(OcsscaleError):
    exit_code = EXIT_LOCKED


class Declined(OcsscaleError):
    exit_code = EXIT_DECLINED
