"""The runner in-process: cleanup on failure, re-evaluation of a failed phase,
careful resume of a step cut short mid-apply, refusal of unbuilt actions,
dry run, rollback --to, and a rollback that is interrupted and resumed."""

from __future__ import annotations

import pytest

from ocsscale.errors import NotImplementedAction, StepFailed
from ocsscale.runner import session
from ocsscale.runner.events import Event
from ocsscale.runner.journal import Entry, Journal
from ocsscale.runner.status import status_report

from .conftest import ORIGINAL_HOSTS, VALIDATE_HEAD, LocalPool

PLAYBOOK = (
    VALIDATE_HEAD
    + """\
      - id: pin
        action: hosts.pin
        foreach: test_clients
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}", address: "198.18.0.41"}
      - id: gate
        action: test.exists
        args: {path: "@DIR@/gate-open"}
    cleanup:
      - id: unpin
        action: hosts.unpin
        foreach: test_clients
        as: host
        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}"}
  - id: cutover
    title: Cut over
    section: test
    steps:
      - id: first
        action: test.mark
        args: {path: "@DIR@/first", text: one, log: "@DIR@/log"}
      - id: second
        action: test.mark
        args: {path: "@DIR@/second", text: two, log: "@DIR@/log", fail_revert: "@DIR@/fail"}
"""
)


def _prepare(pool: LocalPool, text: str = PLAYBOOK) -> session.Prepared:
    path = pool.dir / "playbook.yaml"
    path.write_text(text.replace("@DIR@", str(pool.dir)))
    return session.prepare(pool.pool, path)


def _run(prepared: session.Prepared, phase: str | None = None) -> list[Event]:
    events: list[Event] = []
    gate = session.gate_run(prepared, prepared.plan.select(only=phase))
    session.execute_run(gate, events.append, command="test")
    return events


def _rollback(pool: LocalPool, to: str | None = None) -> list[str]:
    events: list[Event] = []
    gate = session.prepare_rollback(pool.pool, to_phase=to)
    _, done = session.execute_rollback(gate, events.append, command="test")
    return [e.step_id for e in done]


def _entries(pool: LocalPool, step: str) -> list:  # noqa: ANN401
    journal = Journal.open(pool.state_dir)
    try:
        return [e for e in journal.entries() if e.step_id == step]
    finally:
        journal.close()


def test_cleanup_runs_when_a_step_fails_and_a_failed_phase_runs_afresh(
    local_pool: LocalPool,
) -> None:
    prepared = _prepare(local_pool)
    with pytest.raises(StepFailed, match="phase validate-fe: step validate-fe/gate failed"):
        _run(prepared, "validate-fe")
    # the temporary pins were removed although the gate failed
    assert local_pool.snapshot()["client01"] == ORIGINAL_HOSTS
    assert [e.status for e in _entries(local_pool, "validate-fe/gate")] == ["failed"]

    (local_pool.dir / "gate-open").write_text("")
    events = _run(prepared, "validate-fe")
    # a new cycle: the pins are applied again, not skipped as "done"
    assert [e.status for e in _entries(local_pool, "validate-fe/pin[client01]")] == [
        "done",
        "done",
    ]
    assert "step_skipped" not in [e.kind for e in events]
    assert local_pool.snapshot()["client01"] == ORIGINAL_HOSTS

    # a done phase is not run again
    events = _run(prepared, "validate-fe")
    assert [e.kind for e in events] == ["phase_already_done"]


def _crashed_mid_apply(pool: LocalPool, prepared: session.Prepared, landed: bool) -> None:
    """The journal as a run killed inside cutover/first's apply leaves it."""
    journal = Journal.open(pool.state_dir)
    try:
        cycle = journal.open_cycle("cutover", 7, "killed-run")
        step = prepared.plan.phase("cutover").steps[0]
        seq = journal.begin_step(cycle, "killed-run", step.id, step.action, step.args, False)
        journal.record_undo(
            seq, [{"kind": "add", "target": "admin", "summary": "x"}], {"content": None}
        )
    finally:
        journal.close()
    if landed:
        (pool.dir / "first").write_text("one")


def test_a_step_found_applying_whose_change_landed_is_marked_done(local_pool: LocalPool) -> None:
    prepared = _prepare(local_pool)
    _crashed_mid_apply(local_pool, prepared, landed=True)
    _run(prepared, "cutover")
    (entry,) = _entries(local_pool, "cutover/first")
    assert entry.status == "done" and entry.undo == {"content": None}
    # only the second step was applied: the first one's diff was empty
    assert (local_pool.dir / "log").read_text().splitlines() == [f"apply {local_pool.dir}/second"]


def test_a_step_found_applying_is_reapplied_keeping_its_first_undo(
    local_pool: LocalPool,
) -> None:
    prepared = _prepare(local_pool)
    _crashed_mid_apply(local_pool, prepared, landed=False)
    _run(prepared, "cutover")
    (entry,) = _entries(local_pool, "cutover/first")
    assert (entry.status, entry.attempts, entry.undo) == ("done", 2, {"content": None})
    assert _rollback(local_pool) == ["cutover/second", "cutover/first"]
    assert not (local_pool.dir / "first").exists()


def test_unbuilt_actions_are_refused_before_anything_is_touched(local_pool: LocalPool) -> None:
    text = PLAYBOOK + (
        "  - id: decommission\n    title: D\n    section: s\n    steps:\n"
        "      - {id: drain, action: lb.drain_legacy, target: fe00, change: check}\n"
    )
    prepared = _prepare(local_pool, text)
    with pytest.raises(NotImplementedAction) as err:
        _run(prepared)
    assert "phase decommission, step decommission/drain" in err.value.message
    assert "lb.drain_legacy is not built yet" in err.value.message
    assert not local_pool.state_dir.exists()  # no journal, no lock
    assert local_pool.snapshot()["client01"] == ORIGINAL_HOSTS


def test_dry_run_reads_and_diffs_only(local_pool: LocalPool) -> None:
    prepared = _prepare(local_pool)
    gate = session.gate_run(prepared, prepared.plan.select(only="validate-fe"), dry_run=True)
    found = session.dry_run(gate, lambda e: None)
    by_id = {step.id: changes for step, changes in found}
    assert [c.kind for c in by_id["validate-fe/pin[client01]"]] == ["add"]
    assert by_id["validate-fe/unpin[client01]"] == []  # nothing pinned now
    assert local_pool.snapshot()["client01"] == ORIGINAL_HOSTS
    assert not local_pool.state_dir.exists()


def test_rollback_to_a_phase_and_an_interrupted_rollback_resumes(local_pool: LocalPool) -> None:
    (local_pool.dir / "gate-open").write_text("")
    (local_pool.dir / "second").write_text("before")
    prepared = _prepare(local_pool)
    _run(prepared)
    assert (local_pool.dir / "second").read_text() == "two"

    # the revert of cutover/second fails once: the rollback stops there
    (local_pool.dir / "fail").write_text("")
    with pytest.raises(StepFailed, match="rollback stopped at cutover/second"):
        _rollback(local_pool, "cutover")
    (stuck,) = _entries(local_pool, "cutover/second")
    assert stuck.status == "reverting"
    assert (local_pool.dir / "first").exists()  # older entries untouched

    # run again: it resumes with the interrupted one, newest first, cutover only
    assert _rollback(local_pool, "cutover") == ["cutover/second", "cutover/first"]
    assert (local_pool.dir / "second").read_text() == "before"
    assert not (local_pool.dir / "first").exists()
    validate = _entries(local_pool, "validate-fe/pin[client01]")
    assert [e.status for e in validate] == ["done"]
    report = status_report(local_pool.state_dir)
    assert {p["id"]: p["status"] for p in report["phases"]} == {
        "validate-fe": "done",
        "cutover": "reverted",
    }
    # validate-fe's pins and unpins cancel out: listed apart, as rollback counts them;
    # newest first, the two unpins ran side by side (one wave), in either order
    assert report["rollback_would_undo"] == []
    cancelled = report["rollback_cancel_out"]
    assert sorted(e["step"] for e in cancelled[:2]) == [
        "validate-fe/unpin[client01]",
        "validate-fe/unpin[client02]",
    ]
    assert len(cancelled) == 4 and all("cancel out" in e["reason"] for e in cancelled)


def test_a_failed_step_keeps_its_own_hint(local_pool: LocalPool) -> None:
    # a hosts file with two BEGIN markers: the step refuses it and says how to fix it
    broken = b"# BEGIN ocsscale (do not edit: managed by ocsscale)\n" * 2 + ORIGINAL_HOSTS
    local_pool.hosts_file("client01").write_bytes(broken)
    prepared = _prepare(local_pool)
    with pytest.raises(StepFailed) as failed:
        _run(prepared, "validate-fe")
    assert "wrong shape" in failed.value.message
    hint = failed.value.hint or ""
    assert hint.startswith("the tool edits only one well-formed block"), hint
    assert "`ocsscale rollback`" in hint
    assert local_pool.hosts_file("client01").read_bytes() == broken


def test_a_failed_revert_keeps_its_own_hint(local_pool: LocalPool) -> None:
    pin_only = PLAYBOOK.split("      - id: gate")[0]
    _run(_prepare(local_pool, pin_only), "validate-fe")
    pinned = local_pool.hosts_file("client01").read_bytes()
    broken = pinned + b"\n# END ocsscale\n"  # someone pasted a second END marker
    local_pool.hosts_file("client01").write_bytes(broken)
    with pytest.raises(StepFailed) as failed:
        _rollback(local_pool)
    assert failed.value.message.startswith("rollback stopped at validate-fe/pin[client01]")
    hint = failed.value.hint or ""
    assert hint.startswith("the tool edits only one well-formed block"), hint
    assert "`ocsscale rollback` again" in hint
    assert local_pool.hosts_file("client01").read_bytes() == broken


def test_a_chain_of_pins_is_reverted_by_its_oldest_change_only(local_pool: LocalPool) -> None:
    # two pins of the same name on the same host, no unpin: reverting the newer
    # one would re-pin the first address on the way back; only the oldest is
    # reverted, and it puts the file back byte for byte
    twice = PLAYBOOK.split("      - id: gate")[0] + (
        "      - id: repin\n"
        "        action: hosts.pin\n"
        "        foreach: test_clients\n"
        "        as: host\n"
        '        args: {host: "{{ host.name }}", name: "{{ pool.fqdn }}", address: "198.18.0.42"}\n'
    )
    _run(_prepare(local_pool, twice), "validate-fe")
    assert b"198.18.0.42" in local_pool.hosts_file("client01").read_bytes()
    events: list[Event] = []
    gate = session.prepare_rollback(local_pool.pool)
    session.execute_rollback(gate, events.append, command="test")
    assert local_pool.snapshot()["client01"] == ORIGINAL_HOSTS
    skipped = [e.step for e in events if e.kind == "revert_skipped"]
    reverted = [e.step for e in events if e.kind == "revert_done"]
    # one host each: reverted side by side, in either order
    assert sorted(skipped) == ["validate-fe/repin[client01]", "validate-fe/repin[client02]"]
    assert sorted(reverted) == ["validate-fe/pin[client01]", "validate-fe/pin[client02]"]


def _hosts_entry(
    seq: int, action: str, address: str | None, before: str | None, status: str
) -> Entry:
    args = {"host": "client01", "name": "pool.lab.test"}
    if address is not None:
        args["address"] = address
    undo = {"host": "client01", "path": "/h", "name": "pool.lab.test", "original_pin": before}
    return Entry(
        seq=seq,
        cycle_id=1,
        run_id="r",
        phase="validate-fe",
        phase_index=3,
        step_id=f"s{seq}",
        action=action,
        args=args,
        cleanup=False,
        status=status,
        started=0.0,
        finished=None,
        attempts=1,
        changes=None,
        undo=undo,
        evidence=None,
        error=None,
        rollback_id=None,
    )


def test_only_chains_of_finished_changes_are_collapsed(local_pool: LocalPool) -> None:
    from ocsscale.actions.base import Context
    from ocsscale.runner.plugins import load_actions
    from ocsscale.runner.rollback import needless_reverts

    ctx = Context(pool=None, profile=None, host=lambda name: None)  # type: ignore[arg-type,return-value]
    actions = load_actions()
    pin1 = _hosts_entry(1, "hosts.pin", "198.18.0.41", None, "done")
    pin2 = _hosts_entry(2, "hosts.pin", "198.18.0.42", "198.18.0.41", "done")
    unpin = _hosts_entry(3, "hosts.unpin", None, "198.18.0.42", "done")
    # pin, re-pin, unpin: they end where they began, none is replayed
    assert sorted(needless_reverts([unpin, pin2, pin1], ctx, actions)) == [1, 2, 3]
    # pin, re-pin (no unpin): only the oldest is reverted
    assert sorted(needless_reverts([pin2, pin1], ctx, actions)) == [2]
    # the re-pin failed after its undo was recorded (it may be half made): each
    # change is reverted on its own rather than guessing
    failed = _hosts_entry(2, "hosts.pin", "198.18.0.42", "198.18.0.41", "failed")
    assert needless_reverts([unpin, failed, pin1], ctx, actions) == {}
