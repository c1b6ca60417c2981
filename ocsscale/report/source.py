"""What the report is built from: the pool file (when it still validates) and
the journal, opened read-only.

The report must work while a run is going on and after the pool file has been
edited into something that no longer validates, so neither is required: the
journal alone names the pool (its runs record the FQDN and the phases), and
the pool file alone gives the topology of a pool that has not run yet. Only
the validated model of the pool file is used, never its raw text: a file that
no longer validates may hold anything, a pasted password included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.loader import LoadedPool, load_pool
from ..errors import ConfigError, OcsscaleError, UsageError
from ..runner.lock import LockInfo, read_lock
from ..runner.records import Cycle, Entry, Fault, read_records
from ..runner.session import state_dir_for


@dataclass
class Sources:
    """Everything read, once; the model is built from this alone."""

    config: Path
    state_dir: Path
    loaded: LoadedPool | None
    #: why the pool file was not used (None: it was, or it is absent and said so)
    pool_problem: str | None
    runs: list[dict[str, Any]] = field(default_factory=list)
    cycles: list[Cycle] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    undoable: list[Entry] = field(default_factory=list)
    #: faults the tool put in place on purpose and an interruption left there
    faults: list[Fault] = field(default_factory=list)
    lock: LockInfo | None = None
    #: the operator's answers (runner/asking.py), oldest first
    answers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def has_journal(self) -> bool:
        return bool(self.runs or self.entries)


def _read_pool(config: Path) -> tuple[LoadedPool | None, str | None]:
    if not config.exists():
        return None, f"the pool file {config} is not there"
    try:
        return load_pool(config), None
    except ConfigError as exc:
        n = len(exc.issues)
        # counts only: the problems' texts may quote values of the file
        return None, (
            f"the pool file {config} does not validate now ({n} problem{'s' if n != 1 else ''};"
            " `ocsscale check` lists them)"
        )
    except (OcsscaleError, OSError, ValueError):
        return None, f"the pool file {config} cannot be read now (`ocsscale check` says why)"


def _read_journal(sources: Sources) -> None:
    # read-only, and refused (exit 2, no report written) when it cannot be
    # trusted: missing or empty next to the evidence of a run, or not a journal
    records = read_records(sources.state_dir)
    if records is None:
        return
    sources.runs = [dict(run) for run in records.runs]
    sources.cycles = list(records.cycles)
    sources.entries = list(records.entries)
    sources.undoable = list(records.undoable)
    sources.faults = list(records.faults)
    sources.answers = [dict(answer) for answer in records.answers]


def read_sources(config: Path) -> Sources:
    """The pool file and journal of `config`; UsageError (exit 2) when there is
    neither, or the journal or lock cannot be read."""
    config = Path(config)
    state_dir = state_dir_for(config)
    loaded, problem = _read_pool(config)
    sources = Sources(config=config, state_dir=state_dir, loaded=loaded, pool_problem=problem)
    _read_journal(sources)
    try:
        sources.lock = read_lock(state_dir)
    except OcsscaleError:
        sources.lock = None  # an unreadable lock says nothing about the steps done
    if loaded is None and not sources.has_journal:
        raise UsageError(
            f"nothing to report: {problem}, and there is no journal in {state_dir}",
            hint="name the pool file with -c FILE (or OCSSCALE_POOL)",
        )
    return sources
