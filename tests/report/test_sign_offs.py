"""The report's sign-off table and key numbers, from a journal with answers (the
run's go-ahead, a manual step's "done", the client tests' sign-off), through the
real CLI: every answer in order with who, how, when and how long it was waited
for; a name given by the operator shown as text and cut to its bound; a run
whose holds were skipped (--no-hold) says that nobody signed off."""

from __future__ import annotations

import json
from pathlib import Path

from ocsscale.runner.journal import Journal

from .conftest import HOSTILE, Migrated, _step, cli

LONG = "N" * 150


def _answer(run_id: str, step: str | None, question: str, answer: str, **kw: str) -> dict:
    return {
        "step": step,
        "question": question,
        "answer": answer,
        "by": kw.get("by", "ops"),
        "via": kw.get("via", "terminal"),
        "notes": kw.get("notes", ""),
        "at": kw["at"],
        "asked_at": kw.get("asked_at"),
    }


def _holds(state_dir: Path, *, skipped: bool) -> None:
    """A run with two client-test holds, signed off or skipped by --no-hold, and
    its answers as ChannelOperator journals them."""
    journal = Journal.open(state_dir)
    run_id = "hold-run"
    try:
        journal.start_run(run_id, "run", "ops", "admin", 4242, {"pool": "p", "phases": []})
        journal.record_answer(
            run_id,
            _answer(
                run_id,
                None,
                "Run 9 step(s) in validate-fe?",
                "yes",
                by="Carol",
                via="flag",
                at="2026-12-07T10:00:00+00:00",
                asked_at="2026-12-07T10:00:00+00:00",
            ),
        )
        cycle = journal.open_cycle("validate-fe", 3, run_id)
        for n, fe in enumerate(("fe01", "fe02")):
            evidence: dict = {"target": fe}
            if skipped:
                evidence["skipped"] = "--no-hold"
            else:
                evidence["sign_off"] = {"by": "Bob", "result": "passed", "notes": "", "at": "t"}
            _step(
                journal,
                cycle,
                run_id,
                f"validate-fe/hold[{fe}]",
                "operator.hold",
                {},
                evidence=evidence,
            )
            if skipped:
                continue
            journal.record_answer(
                run_id,
                _answer(
                    run_id,
                    f"validate-fe/hold[{fe}]",
                    f"Result of the client tests through {fe}",
                    "passed",
                    by=HOSTILE if n == 0 else LONG,
                    via="answer" if n == 0 else "terminal",
                    notes="IM <b>fine</b>",
                    asked_at=f"2026-12-07T10:0{n + 1}:00+00:00",
                    at=f"2026-12-07T10:0{n + 1}:30+00:00",
                ),
            )
        # a journal of an older ocsscale: no asked_at, so no wait known
        journal.record_answer(
            run_id,
            _answer(
                run_id, "configure-lb/farm", "Type done", "done", at="2026-12-07T10:05:00+00:00"
            ),
        )
        journal.close_cycle(cycle.cycle_id, "done")
        journal.finish_run(run_id, "done")
    finally:
        journal.close()


def _model(m: Migrated) -> dict:
    result = cli(m.pool, "report", "-f", "json", "-o", "-", check=True)
    return json.loads(result.stdout)


def test_every_answer_is_listed_in_order_with_who_how_and_the_wait(migrated: Migrated) -> None:
    _holds(migrated.state_dir, skipped=False)
    model = _model(migrated)
    rows = [a for a in model["answers"] if a["run_id"] == "hold-run"]
    assert [(a["answer"], a["how"]) for a in rows] == [
        ("yes", "--yes on the command line"),
        ("passed", "ocsscale answer"),
        ("passed", "at the run's terminal"),
        ("done", "at the run's terminal"),
    ]
    assert [a["n"] for a in model["answers"]] == list(range(1, len(model["answers"]) + 1))
    assert [a["waited_s"] for a in rows] == [0.0, 30.0, 30.0, None]
    assert rows[0]["by"] == "Carol" and rows[1]["by"] == HOSTILE
    assert len(rows[2]["by"]) == 100 and rows[2]["by"].endswith("…")  # cut to its bound
    people = model["sign_offs"]
    assert (people["holds"], people["holds_skipped"]) == (2, 0)
    assert people["answers"] == len(model["answers"])
    assert people["waited_s"] >= 60.0
    (tile,) = [t for t in model["summary"] if t["label"] == "sign-offs"]
    assert tile["value"].startswith("2 hold(s) for a sign-off; ")
    assert "skipped" not in tile["value"] and "waited 1 min" in tile["value"]

    html = cli(migrated.pool, "report", "-o", "-", check=True).stdout
    table = html[html.index('<h2 id="answers">') : html.index('<h2 id="rollback">')]
    assert HOSTILE not in table and "&lt;script&gt;" in table  # escaped, never markup
    assert "IM &lt;b&gt;fine&lt;/b&gt;" in table
    assert LONG not in html and "N" * 99 + "…" in table
    assert table.index("Carol") < table.index("&lt;script&gt;") < table.index("N" * 99)
    assert "--yes on the command line" in table and "30 s" in table
    assert "skipped" not in table

    md = cli(migrated.pool, "report", "-f", "md", "-o", "-", check=True).stdout
    section = md[md.index("## Sign-offs and answers") : md.index("## What rollback")]
    assert "| ocsscale answer | 30 s |" in section
    assert "2 hold(s) for a sign-off" in section


def test_holds_skipped_by_no_hold_show_no_sign_off_and_say_so(migrated: Migrated) -> None:
    _holds(migrated.state_dir, skipped=True)
    model = _model(migrated)
    people = model["sign_offs"]
    assert (people["holds"], people["holds_skipped"]) == (0, 2)
    assert not [a for a in model["answers"] if a["answer"] == "passed"]
    (tile,) = [t for t in model["summary"] if t["label"] == "sign-offs"]
    assert "0 hold(s) for a sign-off; 2 skipped (--no-hold: nobody signed off)" in tile["value"]
    html = cli(migrated.pool, "report", "-o", "-", check=True).stdout
    assert "2 hold(s) for the client tests were skipped (<code>--no-hold</code>)" in html
    md = cli(migrated.pool, "report", "-f", "md", "-o", "-", check=True).stdout
    assert "2 hold(s) for the client tests were skipped (`--no-hold`)" in md
