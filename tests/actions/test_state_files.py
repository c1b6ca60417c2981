"""Files written into `.ocsscale/` are owner-only (0600 in a 0700 directory) whatever
the umask and whatever an older ocsscale left there, and are written whole."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocsscale.actions.base import Context, registry
from ocsscale.config import load_pool
from ocsscale.runner.plugins import load_actions
from ocsscale.statefiles import write_atomic, write_private

REPO = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The umask most systems have: files 0644, directories 0755."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_the_failover_procedure_is_owner_only(tmp_path: Path, open_umask: None) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text((REPO / "examples" / "one-armed.yaml").read_text(encoding="utf-8"))
    state = tmp_path / ".ocsscale"
    state.mkdir(mode=0o755)  # as an older ocsscale, or a person, made it
    (state / "failover-procedure.md").write_text("an older procedure\n")
    os.chmod(state / "failover-procedure.md", 0o644)
    load_actions()
    loaded = load_pool(pool)
    ctx = Context(
        pool=loaded.pool,
        profile=loaded.profile,
        host=lambda name: pytest.fail(f"no host is needed (asked for {name})"),
        pool_path=pool,
    )
    action = registry()["lb.failover_procedure"](ctx, {})
    evidence = action.apply(action.read())
    written = Path(evidence["written"])
    assert written == (state / "failover-procedure.md").resolve()
    assert written.read_text(encoding="utf-8").startswith("# Responding to a failed front end")
    assert _mode(written) == 0o600 and _mode(state) == 0o700
    assert sorted(p.name for p in state.iterdir()) == ["failover-procedure.md"]  # no temp left


def test_a_private_write_is_whole_or_nothing(tmp_path: Path, open_umask: None) -> None:
    target = tmp_path / ".ocsscale" / "report.html"
    write_private(target, "first\n")
    assert _mode(target) == 0o600 and _mode(target.parent) == 0o700
    os.chmod(target, 0o644)
    write_private(target, "second\n")
    assert target.read_text() == "second\n" and _mode(target) == 0o600

    with pytest.raises(UnicodeEncodeError):  # fails mid-write: a lone surrogate
        write_private(target, "third\n" * 10_000 + "\ud800")
    assert target.read_text() == "second\n"  # the old one is intact, nothing left behind
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]


def test_an_ordinary_write_gets_the_umask_mode(tmp_path: Path, open_umask: None) -> None:
    target = tmp_path / "migration.md"
    write_atomic(target, "report\n")
    assert _mode(target) == 0o644
