"""How long each phase and step took in an earlier run (a rehearsal, e.g. the
lab's), as plain typed records: what `plan --format html --rehearsal JOURNAL`
shows beside its estimates. The journal is opened read-only and never written;
only timings, statuses and ids leave it (no evidence, no undo record)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config.loader import STATE_DIR_NAME
from ..errors import UsageError
from .evidence import reading_file
from .journal import JOURNAL_NAME

#: phases and steps read at most (a rehearsal journal is small; a huge one is not read whole)
MAX_ROWS = 50_000


@dataclass(frozen=True)
class PhaseTime:
    phase: str
    status: str  # of the latest finished cycle of the phase
    seconds: float
    started: float


@dataclass(frozen=True)
class StepTime:
    phase: str
    step_id: str
    action: str
    status: str
    seconds: float


@dataclass(frozen=True)
class Rehearsal:
    path: Path
    pool: str | None  # the pool FQDN its first run recorded
    phases: tuple[PhaseTime, ...]
    steps: tuple[StepTime, ...]

    def phase(self, phase_id: str) -> PhaseTime | None:
        return next((p for p in self.phases if p.phase == phase_id), None)


def journal_path(given: Path) -> Path:
    """The journal file `given` names: the file itself, a state directory
    holding one, or the directory of a pool file whose .ocsscale/ holds one."""
    given = Path(given)
    if given.is_dir():
        for candidate in (given / JOURNAL_NAME, given / STATE_DIR_NAME / JOURNAL_NAME):
            if candidate.is_file():
                return candidate
        raise UsageError(f"no journal in {given} (nor in its {STATE_DIR_NAME}/)")
    return given


def read_rehearsal(given: Path) -> Rehearsal:
    """The timings of `given`'s journal: per phase its latest cycle that ended
    (done first, else failed or interrupted), per step its latest finished
    attempt. UsageError/JournalError (exit 2) when it is no journal or holds no run."""
    path = journal_path(given)
    with reading_file(path) as journal:
        if journal is None:
            raise UsageError(f"the rehearsal journal {path} is empty: nothing has run")
        runs = journal.runs()
        cycles = journal.cycles()[-MAX_ROWS:]
        entries = journal.entries()[-MAX_ROWS:]
    pool = next(
        (
            str(r["detail"]["pool"])
            for r in runs
            if isinstance(r.get("detail"), dict) and isinstance(r["detail"].get("pool"), str)
        ),
        None,
    )
    best: dict[str, PhaseTime] = {}
    for c in cycles:
        if c.finished is None or c.status == "running":
            continue
        took = PhaseTime(c.phase, c.status, max(0.0, c.finished - c.started), c.started)
        have = best.get(c.phase)
        # a done cycle is the measure; a later failed one does not replace it
        if have is None or c.status == "done" or have.status != "done":
            best[c.phase] = took
    steps: dict[str, StepTime] = {}
    for e in entries:
        if e.finished is None or e.status in ("pending", "applying", "reverting"):
            continue
        steps[e.step_id] = StepTime(
            e.phase, e.step_id, e.action, e.status, max(0.0, e.finished - e.started)
        )
    if not best and not steps:
        raise UsageError(f"the rehearsal journal {path} holds no finished phase")
    ordered = tuple(sorted(best.values(), key=lambda p: p.started))
    return Rehearsal(path, pool, ordered, tuple(steps.values()))
