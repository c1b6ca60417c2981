"""The shape every action has.

`plan` only calls `read` and `diff`, so the dry run and the real run are the
same code, and a second run finds nothing to do. `run` asks for the undo
record *before* `apply` (the runner journals it first, so a crash mid-apply
can still be undone), then calls `apply` and `verify`. `rollback` calls
`revert` with that record and then `verify_reverted`; before the first revert
it asks `check_undo` of every record it will replay.

Everything an action returns (state, undo record, evidence) must be plain
JSON (dict/list/str/int/float/bool/None) and must never contain a secret.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from ..errors import OcsscaleError
from ..operator import NoOperator, Operator
from .args import ActionArgs, parse_args

if TYPE_CHECKING:
    from pathlib import Path

    from ..config.model import Pool
    from ..config.profiles import Profile
    from ..transports.base import Host
    from .history import History, Reverted

ChangeKind = Literal["add", "change", "remove", "check", "none"]
Json = Any


@dataclass(frozen=True)
class Change:
    """One thing a step will do to one target, as the plan shows it."""

    kind: ChangeKind
    target: str  # host name (or "lb", "dns:<server>", "admin")
    summary: str  # e.g. "pin ocspool.contoso.com -> 198.18.0.41 in /etc/hosts"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "target": self.target, "summary": self.summary}


class Faults(Protocol):
    """How an action breaks production on purpose (a drill's stopped service or
    cut link, a member drained at the LB) and puts it right. The runner's
    version journals the fault *before* it is put in place and shields both
    moves from signals (runner/faults.py), so an interrupted run leaves either
    nothing broken or a record that the next command acts on first."""

    def held(
        self,
        kind: str,
        target: str,
        summary: str,
        restore: Json,
        put: Callable[[], Any],
        take_away: Callable[[], Any],
    ) -> AbstractContextManager[None]:
        """`put()` the fault in place for the block, `take_away()` after it,
        whatever ends the block (an error in `take_away` then leaves the first
        error to show). `restore`: what `Action.restore_fault` needs when an
        interruption left it in place."""
        ...


class UnjournaledFaults:
    """Outside a run (tests of one action; a dry run never breaks anything)."""

    @contextmanager
    def held(
        self,
        kind: str,
        target: str,
        summary: str,
        restore: Json,
        put: Callable[[], Any],
        take_away: Callable[[], Any],
    ) -> Iterator[None]:
        put()
        try:
            yield
        except BaseException:
            with suppress(OcsscaleError):
                take_away()
            raise
        take_away()


@dataclass(frozen=True)
class RunOptions:
    """What `ocsscale run` was told on its command line (cli/run_cmds.py), built
    once by the runner (runner/session.py, `run_options`)."""

    #: `--no-hold`: holds record "skipped: --no-hold" (actions/operator_hold.py)
    no_hold: bool = False
    #: `--hold-timeout SECONDS`: a hold with no sign-off fails after this long
    hold_timeout: float | None = None
    #: `--watch SECONDS`: the cutover's watch window instead of dns.watch_window
    watch: int | None = None
    #: `--wait`: wait out the old TTL (cutover, decommission) instead of stopping
    wait: bool = False
    #: `--client-load RATE`: requests/s to the pool name for the whole run
    client_load: float | None = None
    #: `--forks N`: steps at once, instead of run.forks in the pool file
    forks: int | None = None


@dataclass(frozen=True)
class Context:
    """What an action may use. Built by the runner; actions never build their own.
    Frozen: a step that needs another (its own emit, the run's faults) gets a copy
    (dataclasses.replace). Fully typed, no Any (tests/test_architecture.py)."""

    pool: Pool
    profile: Profile
    host: Callable[[str], Host]  # name -> connected Host (cached, closed by the runner)
    emit: Callable[[str, Mapping[str, object]], None] = lambda kind, data: None
    dry_run: bool = False
    #: the pool file (relative paths in it are relative to its folder); None: none read
    pool_path: Path | None = None
    options: RunOptions = field(default_factory=RunOptions)
    #: host name -> what preflight read of it (its services), for `plan` (plan/build.py):
    #: facts the plan shows, not the run's record (that is `history`)
    preflight: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    #: what this pool's runs did, read-only (runner/history.py over the journal);
    #: None outside a run (a dry run, `plan`, tests of one action)
    history: History | None = None
    #: how an action reports a change it put back itself (the cutover watch's
    #: revert): the runner journals it; None outside a run
    report_revert: Callable[[Reverted], None] | None = None
    #: the person at the console (manual drivers, holds); NoOperator when unattended
    operator: Operator = field(default_factory=NoOperator)
    #: faults put in place on purpose, journaled (runner/faults.py)
    faults: Faults = field(default_factory=UnjournaledFaults)


class Action(ABC):
    """Base class. Subclasses set `name` and document, in their docstring, what
    they read, what they change, how that is undone and what proves it."""

    name: ClassVar[str]
    #: read-only actions (checks, probes) have no undo and change nothing
    read_only: ClassVar[bool] = False
    #: steps of one playbook entry (one `foreach`) may run at the same time when
    #: they touch different hosts; False for anything with a shared target the
    #: pool file does not name per step (the LB's farm, DNS, the operator)
    parallel: ClassVar[bool] = False
    #: the playbook phases this action may be put in (empty: any). Actions that stop
    #: production services or take members out of the farm name the phases the
    #: walkthrough runs them in, so a playbook of one's own cannot run them at another
    #: moment (a service stop on the legacy FE before the cutover). plan/build.py checks it.
    phases: ClassVar[tuple[str, ...]] = ()
    #: True when `restore_fault` puts back all that `revert` would (a drill: its fault
    #: is its only change): a rollback that has just put its fault right proves the
    #: revert (`verify_reverted`) instead of replaying it
    fault_restore_reverts: ClassVar[bool] = False

    #: the action's playbook arguments as a typed model (actions/args.py), checked
    #: when the plan is built; None for an action that takes none
    Args: ClassVar[type[ActionArgs] | None] = None
    params: ActionArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        self.ctx = ctx
        self.args = dict(args)
        if self.Args is not None:
            self.params = parse_args(self.Args, args, self.name)

    @abstractmethod
    def targets(self) -> list[str]:
        """The host names this step touches (for the plan), without connecting."""

    @abstractmethod
    def describe(self) -> list[Change]:
        """The changes this step would make, from the pool file alone (no
        connection): what `plan` shows when hosts are not contacted."""

    def read(self) -> Json:
        """The current state of what this step changes (may connect)."""
        return None

    def diff(self, current: Json) -> list[Change]:
        """Pure: the changes needed to go from `current` to the desired state.
        An empty list means nothing to do."""
        return self.describe()

    def undo_record(self, current: Json) -> Json:
        """What `revert` needs to put back exactly what was there (journaled
        before `apply`)."""
        return None

    def apply(self, current: Json) -> Json:
        """Make the change (or, for a read-only action, run the check). Returns
        evidence. Raise StepFailed/CheckFailed when it does not hold."""
        raise NotImplementedError

    def verify(self, evidence: Json) -> Json:
        """Read back and prove the change took; return evidence, or raise."""
        return evidence

    def check_undo(self, undo: Json) -> None:
        """Raise UndoRecordError when `undo` is not of the shape `revert`,
        `verify_reverted`, `tidy`, `revert_targets` and `undo_chain` read (a
        journal edited or damaged): rollback checks every record before its
        first revert. Contacts nothing. Say what was wrong, never the value
        (actions/undo_shape.py). The default accepts any record: an action
        whose revert reads its record checks it here."""
        return None

    def revert(self, undo: Json) -> Json:
        """Put back what `undo` records. Must be safe to call twice."""
        return None

    def tidy(self, undo: Json) -> Json:
        """Remove what the change left on its host besides the change itself (a
        backup copy), once a rollback has put it back or found nothing to put
        back. Must be safe to call twice."""
        return None

    def undo_chain(self, undo: Json) -> tuple[str, Json, Json] | None:
        """(what this change changed, its value before, its value after) when a
        later change of the same thing can supersede it: rollback then reverts
        only the oldest of such a chain, and nothing when the chain ends where
        it began (a pin and its later unpin). None: revert every record."""
        return None

    def revert_targets(self, undo: Json) -> list[str]:
        """The hosts `revert` and `verify_reverted` connect to. The journal
        records how to reach them with the undo record, and a rollback logs in
        to each before it reverts anything."""
        return self.targets()

    def verify_reverted(self, undo: Json) -> Json:
        """Read back and prove the revert took."""
        return None

    def restore_fault(self, kind: str, restore: Json) -> Json:
        """Put right a fault this action put in place through `Context.faults`
        and that an interruption left there (`restore` as journaled), and prove
        it; returns evidence. Must be safe to call twice."""
        raise NotImplementedError(f"{self.name} puts no fault in place")


_REGISTRY: dict[str, type[Action]] = {}


def register(cls: type[Action]) -> type[Action]:
    if cls.name in _REGISTRY:
        raise ValueError(f"action {cls.name} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> Mapping[str, type[Action]]:
    return _REGISTRY
