"""The default output of `run` and `rollback` (cli.progress_table): the runner's
events, as the runner sends them (steps of a phase in flight at once, their
findings interleaved, from worker threads), rendered to a recording console.

The live table is read by rendering what the live area shows at that moment;
the lines printed above it (failures, at once) and the phase's summary are
read from the console's record."""

from __future__ import annotations

import io
import random
import threading
from collections.abc import Iterator

from rich.console import Console

from ocsscale.cli.progress import RunProgress
from ocsscale.cli.progress_table import TableProgress, progress_for
from ocsscale.plan.stepref import StepRef
from ocsscale.runner.events import Event

PHASE = "validate-fe"
#: the ocs2007r2 profile's ports, as probe.ports names them
PORTS = [
    (5061, "sip-tls"),
    (135, "banner"),
    (443, "https"),
    (444, "https"),
    (5065, "banner"),
    (5071, "banner"),
    (5072, "banner"),
    (5073, "banner"),
    (5074, "banner"),
    (5060, "sip-tcp"),
    (5069, "banner"),
    (8404, "banner"),
    (80, "banner"),
]
CLIENTS = ("client01", "client02")


def console(interactive: bool) -> Console:
    return Console(
        file=io.StringIO(),
        record=True,
        width=120,
        force_terminal=interactive,
        force_interactive=interactive,
        color_system=None,
    )


def findings(fe: str, client: str, failed: tuple[int, ...] = ()) -> dict:
    """probe.ports' findings event: 5069 optional and silent (information)."""
    rows = []
    for port, kind in PORTS:
        check = f"port {port} ({kind})"
        if port in failed:
            rows.append(
                {"check": check, "ok": False, "proven": True, "message": f"{fe}:{port} refused"}
            )
        elif port == 5069:
            message = "optional port, nothing listens: refused (it listens only with Monitoring)"
            rows.append(
                {"check": check, "ok": True, "proven": False, "info": True, "message": message}
            )
        else:
            rows.append(
                {"check": check, "ok": True, "proven": True, "message": f"answered by {fe}"}
            )
    return {"title": f"{client} -> ocspool.lab.test ({fe})", "findings": rows}


def start(steps: int) -> Event:
    return Event("phase_start", PHASE, data={"title": "Validate", "steps": steps, "resumed": False})


def ref(step: str) -> StepRef:
    """The step `pin[ocsfe01@client01]` of the phase, as the planner makes it."""
    return StepRef.parse(f"{PHASE}/{step}")


def begin(step: str | StepRef) -> Event:
    where = step if isinstance(step, StepRef) else ref(step)
    return Event.of("step_start", where, {"action": "x", "summary": "x"})


def done(step: str | StepRef, changed: bool = True, kind: str = "add") -> Event:
    where = step if isinstance(step, StepRef) else ref(step)
    changes = [{"kind": kind, "target": "x", "summary": f"did {where.id}"}] if changed else []
    data = {"changed": changed, "changes": changes, "seconds": 0.1}
    return Event.of("step_done", where, data)


def found(step: str | StepRef, data: dict) -> Event:
    return Event.of("findings", step if isinstance(step, StepRef) else ref(step), data)


def fe_steps(fe: str, failed: dict[str, tuple[int, ...]] | None = None) -> Iterator[Event]:
    """One FE of validate-fe as the parallel runner sends it: the pins of every
    host in flight at once, then both probes at once, their events interleaved."""
    hosts = (fe, *CLIENTS)
    yield from (begin(f"pin[{fe}@{h}]") for h in hosts)
    yield from (done(f"pin[{fe}@{h}]") for h in reversed(hosts))
    yield begin(f"restart[{fe}]")
    yield done(f"restart[{fe}]")
    probes = [f"probe[{fe}@{c}]" for c in CLIENTS]
    yield from (begin(p) for p in probes)
    for probe, client in reversed(list(zip(probes, CLIENTS, strict=True))):
        yield found(probe, findings(fe, client, (failed or {}).get(client, ())))
    for probe, client in zip(probes, CLIENTS, strict=True):
        if (failed or {}).get(client):
            ports = (failed or {})[client]
            error = f"{client}: {len(ports)} of 12 required ports failed through the pool " + (
                "; ".join(f"port {p} (https): {fe}:{p} refused" for p in ports[:1])
            )
            data = {"error": error, "seconds": 1.0}
            yield Event.of("step_failed", ref(probe), data)
        else:
            yield done(probe, kind="check")  # a check: "changed" means it ran


def text(c: Console) -> str:
    return c.export_text(clear=False)


def shown(progress: TableProgress) -> str:
    """The live area as it is drawn now."""
    snap = Console(file=io.StringIO(), record=True, width=120, color_system=None)
    snap.print(progress.view())
    return snap.export_text()


def test_a_parallel_row_and_item_are_placed_from_the_step_s_structure() -> None:
    """Rows and items come from the plan's StepRef, not from decoding the id: a
    row label holding `@` (an item label may render to anything) stays one row,
    where splitting `probe[fe@a@client01]` would have made it row `fe`."""
    c = console(interactive=True)
    progress = TableProgress(c)
    progress(start(3))
    steps = [StepRef(PHASE, "probe", "fe@a", client) for client in CLIENTS]
    steps.append(StepRef(PHASE, "restart", "fe@a"))
    for step in steps:
        progress(begin(step))  # the steps of one row in flight at once
    progress(found(steps[1], findings("fe@a", "client02")))
    progress(done(steps[0], kind="check"))
    table = shown(progress)
    progress.close()
    lines = table.splitlines()
    assert lines[0].split() == ["probe", "restart"]
    row = next(n for n, line in enumerate(lines) if line.startswith("fe@a"))
    assert lines[row].split() == ["fe@a", "client01", "✓", "…"]
    assert lines[row + 1].split() == ["client02", "…", "12✓,", "5069", "i"]
    assert not any(line.startswith(("fe ", "a@")) for line in lines)
    assert "1/3 steps, 2 running" in table


def test_the_live_table_is_fe_by_client_with_a_mark_per_port() -> None:
    c = console(interactive=True)
    progress = TableProgress(c)
    progress(start(14))
    for event in fe_steps("ocsfe01"):
        progress(event)
    # the second FE: its pins done, its two probes in flight, one already reporting
    progress(begin("pin[ocsfe02@ocsfe02]"))
    progress(done("pin[ocsfe02@ocsfe02]"))
    progress(begin("probe[ocsfe02@client01]"))
    progress(begin("probe[ocsfe02@client02]"))
    progress(found("probe[ocsfe02@client02]", findings("ocsfe02", "client02")))
    table = shown(progress)
    progress.close()
    lines = table.splitlines()
    assert lines[0].split() == ["pin", "restart", "probe"]
    ocsfe01 = next(n for n, line in enumerate(lines) if line.startswith("ocsfe01"))
    assert lines[ocsfe01].split() == ["ocsfe01", "3✓", "✓", "client01", "12✓,", "5069", "i"]
    assert lines[ocsfe01 + 1].split() == ["client02", "12✓,", "5069", "i"]
    ocsfe02 = next(n for n, line in enumerate(lines) if line.startswith("ocsfe02"))
    # in flight: a mark that says so, and the findings already in
    assert lines[ocsfe02].split() == ["ocsfe02", "✓", "client01", "…"]
    assert lines[ocsfe02 + 1].split() == ["client02", "…", "12✓,", "5069", "i"]
    assert "7/14 steps, 2 running" in table
    # nothing about a single port was printed above the table
    assert "answered by" not in text(c)


def test_a_failure_is_printed_in_full_at_once() -> None:
    c = console(interactive=True)
    progress = TableProgress(c)
    progress(start(9))
    for event in fe_steps("ocsfe01", failed={"client02": (444, 443)}):
        progress(event)
    before_the_end = text(c)
    flat = " ".join(before_the_end.split())  # long lines wrap at the console's width
    # the step's error names 444; 443, which it does not name, follows under it
    assert (
        "✗ validate-fe/probe[ocsfe01@client02]: client02: 2 of 12 required ports failed "
        "through the pool port 444 (https): ocsfe01:444 refused"
    ) in flat
    assert "✗ port 443 (https): ocsfe01:443 refused" in flat
    assert "client02 ✗ 10✓, 443 ✗, 444 ✗, 5069 i" in shown(progress)
    progress(Event("phase_failed", PHASE, data={"error": "step x failed: y"}))
    progress.close()
    end = text(c)[len(before_the_end) :]
    assert "client02 ✗ 10✓, 443 ✗, 444 ✗, 5069 i" in end  # the table as it stood
    assert "probe 1✓ 1✗ (findings 22✓ 2✗ 2i)" in end
    assert end.rstrip().endswith("validate-fe failed: step x failed: y")


def run_phase(progress: RunProgress, fes: int) -> None:
    progress(start(fes * 6))
    for n in range(1, fes + 1):
        for event in fe_steps(f"ocsfe{n:02}"):
            progress(event)
    progress(Event("phase_done", PHASE))
    progress.close()


def test_a_phase_ends_in_a_few_lines_and_notes_are_shown_once() -> None:
    c = console(interactive=True)
    progress = TableProgress(c)
    progress(start(48))
    for n in range(1, 9):
        for event in fe_steps(f"ocsfe{n:02}"):
            progress(event)
    progress.pause()  # the record from here on is the summary alone
    c.export_text()
    progress(Event("phase_done", PHASE))
    progress.close()
    summary = text(c).splitlines()
    assert len(summary) == 3, summary
    assert summary[0].startswith("  validate-fe done: 48 steps: 32 changed, 16 checked")
    assert summary[1].split() == ["pin", "24✓", "·", "restart", "8✓", "·", "probe"] + [
        "16✓",
        "(findings",
        "192✓",
        "16i)",
    ]
    assert summary[2].startswith("    i port 5069 (banner): optional port, nothing listens: ")
    assert summary[2].endswith("(16 steps)")


def test_without_a_terminal_the_same_few_lines_and_none_per_step() -> None:
    compact, detailed = console(interactive=False), console(interactive=False)
    run_phase(progress_for(compact, verbose=False), fes=8)
    run_phase(progress_for(detailed, verbose=True), fes=8)
    lines, every = text(compact).splitlines(), text(detailed).splitlines()
    assert len(lines) == 4, lines  # the title, done, the column counts, the note
    assert lines[1].startswith("  validate-fe done: 48 steps: 32 changed, 16 checked")
    # -v: a line per step and per port of every probe, as before
    assert len(every) > 8 * 6 + 8 * 2 * len(PORTS)
    assert sum("answered by" in line for line in every) == 8 * 2 * 12


def test_without_a_terminal_a_failed_phase_shows_where() -> None:
    c = console(interactive=False)
    progress = TableProgress(c)
    progress(start(12))
    for fe, failed in (("ocsfe01", {}), ("ocsfe02", {"client01": (444,)})):
        for event in fe_steps(fe, failed=failed):
            progress(event)
    progress(Event("phase_failed", PHASE, data={"error": "step x failed: y"}))
    lines = text(c).splitlines()
    assert lines[1].startswith("  ✗ validate-fe/probe[ocsfe02@client01]: client01: 1 of 12")
    ocsfe02 = next(n for n, line in enumerate(lines) if line.startswith("ocsfe02 "))
    assert lines[ocsfe02].split() == ["ocsfe02", "3✓", "✓", "client01", "✗"] + [
        "11✓,",
        "444",
        "✗,",
        "5069",
        "i",
    ]
    assert len(lines) < 16, lines


def test_events_from_worker_threads_while_the_table_redraws() -> None:
    """Four workers deliver the events of eight FEs, one event at a time under
    the runner's lock, in an order no test could predict; the live table redraws
    on its own thread meanwhile. The counts at the end are exact."""
    c = console(interactive=True)
    progress = TableProgress(c)
    delivering = threading.Lock()
    progress(start(48))
    queues = [list(fe_steps(f"ocsfe{n:02}")) for n in range(1, 9)]
    errors: list[BaseException] = []

    def worker(mine: list[list[Event]]) -> None:
        shuffle = random.Random(len(mine))
        try:
            for events in mine:
                for event in events:
                    with delivering:
                        progress(event)
                    if shuffle.random() < 0.3:
                        threading.Event().wait(0.001)  # let another worker in
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(queues[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)
    progress(Event("phase_done", PHASE))
    progress.close()
    out = text(c)
    assert "validate-fe done: 48 steps: 32 changed, 16 checked" in out
    assert "pin 24✓ · restart 8✓ · probe 16✓ (findings 192✓ 16i)" in out


def test_a_sign_off_is_shown_and_a_skipped_hold_is_a_note() -> None:
    c = console(interactive=False)
    progress = TableProgress(c)
    progress(start(2))
    for fe, finding in (
        ("ocsfe01", {"ok": True, "proven": True, "message": "passed, signed off by Alice"}),
        ("ocsfe02", {"ok": True, "proven": False, "info": True, "message": "skipped: --no-hold"}),
    ):
        progress(begin(f"hold[{fe}]"))
        data = {"title": f"hold through {fe}", "findings": [{"check": "client tests", **finding}]}
        progress(found(f"hold[{fe}]", data))
        progress(done(f"hold[{fe}]", changed=False))
    progress(Event("phase_done", PHASE))
    out = text(c)
    assert "✓ client tests: passed, signed off by Alice" in out
    assert out.count("skipped: --no-hold") == 1
    assert "    i client tests: skipped: --no-hold\n" in out


def test_rollback_counts_reverts_in_flight_and_prints_a_failure_at_once() -> None:
    c = console(interactive=True)
    progress = TableProgress(c)

    def revert(kind: str, step: str, **data: object) -> None:
        progress(Event(kind, PHASE, f"{PHASE}/{step}", {"seq": 1, **data}))

    revert("revert_start", "pin[ocsfe01@client01]", summary="unpin")
    revert("revert_start", "pin[ocsfe01@client02]", summary="unpin")
    revert("revert_skipped", "pin[ocsfe01@ocsfe01]", reason="cancel out")
    view = shown(progress)
    assert "↶ validate-fe: 0 reverted, 1 nothing to revert, 2 in flight" in view
    assert "… validate-fe/pin[ocsfe01@client02]" in view
    revert("revert_done", "pin[ocsfe01@client01]", seconds=0.1)
    revert("revert_failed", "pin[ocsfe01@client02]", error="client02: cannot write /etc/hosts")
    assert "✗ validate-fe/pin[ocsfe01@client02]: client02: cannot write /etc/hosts" in text(c)
    progress.close()
    assert text(c).rstrip().endswith("↶ validate-fe: 1 reverted, 1 nothing to revert, 1 failed")


def test_the_operator_pauses_the_table_and_events_still_count() -> None:
    c = console(interactive=True)
    progress = TableProgress(c)
    progress(start(3))
    assert progress.live is not None
    progress.pause()
    assert progress.live is None
    progress(begin("pin[ocsfe01@client01]"))  # another worker goes on meanwhile
    progress(done("pin[ocsfe01@client01]"))
    assert progress.live is None  # no redraw under the operator's prompt
    progress.resume()
    assert progress.live is not None and "1/3 steps" in shown(progress)
    progress.close()
    assert progress.live is None


def test_a_table_taller_than_the_terminal_hides_rows_that_passed_first() -> None:
    c = console(interactive=True)
    progress = TableProgress(c)
    progress(start(96))
    for n in range(1, 17):
        events = list(fe_steps(f"ocsfe{n:02}", failed={"client02": (444,)} if n == 3 else None))
        for event in events[:-3] if n == 16 else events:  # ocsfe16's probes in flight
            progress(event)
    snap = Console(file=io.StringIO(), record=True, width=80, height=20, color_system=None)
    snap.print(progress.view())
    progress.close()
    table = snap.export_text()
    rows = [line.split()[0] for line in table.splitlines() if line.startswith("ocs")]
    assert "ocsfe03" in rows and "ocsfe16" in rows  # the failed one, the one in flight
    assert "ocsfe01" not in rows and len(rows) == 7
    assert "9 finished row(s) not shown" in table


def test_a_countdown_is_one_line_under_the_table_or_one_a_minute_without_one() -> None:
    def waiting(left: float) -> Event:
        data = {"what": "the old TTL of pool", "until": "12:00:00Z", "left": left}
        return Event("waiting", PHASE, f"{PHASE}/replace", data)

    live = console(interactive=True)
    progress = TableProgress(live)
    progress(start(1))
    progress(begin("replace"))
    progress(waiting(299.5))
    assert "waiting for the old TTL of pool to run out everywhere: 300 s left" in shown(progress)
    progress(done("replace"))
    assert "waiting for" not in shown(progress)  # over with its step
    progress.close()

    piped = console(interactive=False)
    progress = TableProgress(piped)
    progress(start(1))
    progress(begin("replace"))
    for left in range(300, 0, -5):  # every 5 s, as dns.replace reports it
        progress(waiting(left - 0.5))
    said = [line for line in text(piped).splitlines() if "waiting for" in line]
    assert [line.split(": ")[1].split(" s")[0] for line in said] == [
        "300",
        "240",
        "180",
        "120",
        "60",
    ]
