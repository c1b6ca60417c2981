"""How long the front-end phases take in the lab with 2 and with 8 front ends,
with steps run side by side (the default forks) and one after the other
(`--forks 1`, what every run did before), measured in one session.

    sudo .venv/bin/python bench/lab_speed.py               # 2 and 8 FEs, ~6 minutes
    sudo .venv/bin/python bench/lab_speed.py --fes 2,4     # other sizes
    sudo .venv/bin/python bench/lab_speed.py --whole-only  # make demo's run alone

It also times the whole migration as `make demo` runs it, with 2 front ends and
the bundled engine: `run --phase lower-ttl` ahead, then `run --through
decommission --no-hold --wait --client-load 4`, each phase's seconds from the
journal, then `rollback --yes`.

For each size it brings a lab up (`ocsscale lab up --fes N`), then, from the lab's
admin host as an operator would: `run --through validate-fe --yes --no-hold`,
`rollback --yes`, each once with `--forks 1` and once with the default, and takes
the lab down. It reports the seconds of each command, the lines `run` printed,
and what each extra front end adds to validate-fe (the phase's own seconds from
the journal, so lab start-up and preflight are not counted). Writes
bench/results/lab-speed.json and lab-speed.md. Measures; asserts nothing: the
exit code is 0 when every run passed, 1 when one failed (its output is shown).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
LAB = "ocsspeed"
POOL = f"/run/ocsscale-lab/{LAB}/pool.yaml"
MODES = (("serial", ["--forks", "1"]), ("parallel", []))
WHOLE_PHASES = (
    "preflight", "routing", "configure-fe", "validate-fe", "configure-lb", "validate-lb",
    "failover-test", "cutover", "decommission",
)  # fmt: skip


def ocsscale(*args: str, timeout: float = 900) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "ocsscale", *args],
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=timeout,
        env={"COLUMNS": "120", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TERM": "dumb"},
    )
    return time.monotonic() - started, done


def on_admin(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    return ocsscale("lab", "exec", "admin", "-n", LAB, "--", "ocsscale", "-c", POOL, *args)


def phase_seconds(phase: str) -> tuple[float | None, list[tuple[str, float]]]:
    """The latest cycle of `phase` in the lab journal: its own wall-clock seconds,
    and its slowest steps (what a faster run would cut next)."""
    sys.path.insert(0, str(REPO))
    from ocsscale.runner.journal import Journal

    journal = Journal(Path(POOL).parent / ".ocsscale" / "journal.sqlite", read_only=True)
    try:
        cycles = [c for c in journal.cycles() if c.phase == phase and c.finished]
        if not cycles:
            return None, []
        cycle = cycles[-1]
        steps = [
            (e.step_id, round(e.finished - e.started, 2))
            for e in journal.entries(cycle_id=cycle.cycle_id)
            if e.finished
        ]
        slowest = sorted(steps, key=lambda s: -s[1])[:5]
        return cycle.finished - cycle.started, slowest
    finally:
        journal.close()


def failed(what: str, done: subprocess.CompletedProcess[str]) -> None:
    print(f"FAILED: {what} (exit {done.returncode})")
    print(done.stdout[-4000:])
    print(done.stderr[-4000:])


def measure(fes: int) -> dict[str, Any]:
    print(f"\n== {fes} front ends: lab up")
    up_s, up = ocsscale("lab", "up", "--name", LAB, "--fes", str(fes), "--lb", "none")
    if up.returncode != 0:
        failed("lab up", up)
        return {"fes": fes, "error": "lab up failed"}
    found: dict[str, Any] = {"fes": fes, "lab_up_s": round(up_s, 1)}
    try:
        for mode, extra in MODES:
            run_s, run = on_admin("run", "--through", "validate-fe", "--yes", "--no-hold", *extra)
            if run.returncode != 0:
                failed(f"run ({mode})", run)
                found[mode] = {"error": "run failed"}
                on_admin("rollback", "--yes")
                continue
            validate, slowest = phase_seconds("validate-fe")
            back_s, back = on_admin("rollback", "--yes", *extra)
            if back.returncode != 0:
                failed(f"rollback ({mode})", back)
            found[mode] = {
                "run_s": round(run_s, 1),
                "validate_fe_s": round(validate, 1) if validate is not None else None,
                "run_lines": len(run.stdout.splitlines()),
                "rollback_s": round(back_s, 1),
                "rollback_ok": back.returncode == 0,
                "slowest_steps": slowest,
            }
            print(f"   {mode}: {found[mode]}")
    finally:
        ocsscale("lab", "down", "--name", LAB)
    return found


def measure_whole(fes: int = 2) -> dict[str, Any]:
    """make demo's run: the whole migration under a client load, phase by phase."""
    print(f"\n== the whole migration, {fes} front ends, engine: lab up")
    up_s, up = ocsscale("lab", "up", "--name", LAB, "--fes", str(fes))
    if up.returncode != 0:
        failed("lab up", up)
        return {"fes": fes, "error": "lab up failed"}
    found: dict[str, Any] = {"fes": fes, "lab_up_s": round(up_s, 1)}
    try:
        ahead_s, ahead = on_admin("run", "--phase", "lower-ttl", "--yes")
        if ahead.returncode != 0:
            failed("run --phase lower-ttl", ahead)
            return {**found, "error": "lower-ttl failed"}
        run_s, run = on_admin(
            "run", "--through", "decommission", "--yes", "--no-hold", "--wait",
            "--client-load", "4",
        )  # fmt: skip
        if run.returncode != 0:
            failed("run --through decommission", run)
            found["error"] = "run failed"
        phases = {}
        for phase in WHOLE_PHASES:
            seconds, slowest = phase_seconds(phase)
            if seconds is not None:
                phases[phase] = {"s": round(seconds, 1), "slowest_steps": slowest[:3]}
        back_s, back = on_admin("rollback", "--yes")
        if back.returncode != 0:
            failed("rollback", back)
        found.update(
            lower_ttl_s=round(ahead_s, 1),
            run_s=round(run_s, 1),
            phases=phases,
            rollback_s=round(back_s, 1),
            rollback_ok=back.returncode == 0,
        )
        print(f"   whole run: {run_s:.1f} s; {json.dumps(phases)[:400]}")
    finally:
        ocsscale("lab", "down", "--name", LAB)
    return found


def render_whole(whole: dict[str, Any]) -> list[str]:
    if "run_s" not in whole:
        return ["", f"The whole migration: {whole.get('error', 'not measured')}.", ""]
    lines = [
        "",
        f"The whole migration as `make demo` runs it ({whole['fes']} FEs, bundled engine, "
        "client load 4/s per source; `lower-ttl` run ahead):",
        "",
        "| | seconds |",
        "|---|---|",
        f"| `run --phase lower-ttl` (ahead) | {whole['lower_ttl_s']} |",
        f"| `run --through decommission` | **{whole['run_s']}** |",
    ]
    lines += [f"| - {phase} | {p['s']} |" for phase, p in whole["phases"].items()]
    lines += [f"| `rollback --yes` | {whole['rollback_s']} |", ""]
    return lines


def per_extra_fe(rows: list[dict[str, Any]], mode: str) -> float | None:
    """Seconds validate-fe adds per front end, between the smallest and largest lab."""
    ok = [r for r in rows if isinstance(r.get(mode), dict) and r[mode].get("validate_fe_s")]
    if len(ok) < 2:
        return None
    low, high = ok[0], ok[-1]
    return (high[mode]["validate_fe_s"] - low[mode]["validate_fe_s"]) / (high["fes"] - low["fes"])


def render(data: dict[str, Any]) -> str:
    lines = [
        "# Lab speed: front-end phases, steps side by side vs one after the other",
        "",
        f"Measured {data['when']} on {data['cpus']} CPUs in one session "
        "(`bench/lab_speed.py`); seconds of wall-clock time, from the lab's admin host.",
        "",
        "| FEs | mode | run --through validate-fe | validate-fe phase | lines printed | rollback |",
        "|---|---|---|---|---|---|",
    ]
    for row in data["rows"]:
        for mode, _ in MODES:
            m = row.get(mode)
            if not isinstance(m, dict) or "error" in m:
                lines.append(f"| {row['fes']} | {mode} | failed | | | |")
                continue
            lines.append(
                f"| {row['fes']} | {mode} | {m['run_s']} s | {m['validate_fe_s']} s | "
                f"{m['run_lines']} | {m['rollback_s']} s |"
            )
    lines.append("")
    for mode, _ in MODES:
        extra = data["per_extra_fe"].get(mode)
        text = "n/a" if extra is None else f"{extra:.1f} s"
        lines.append(f"- each extra front end adds to validate-fe ({mode}): {text}")
    lines += render_whole(data.get("whole") or {})
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fes", default="2,8", help="lab sizes, comma-separated (2,8)")
    parser.add_argument(
        "--whole-only", action="store_true", help="only the whole migration (make demo's run)"
    )
    args = parser.parse_args()
    sizes = sorted({int(x) for x in args.fes.split(",") if x.strip()})
    rows = [] if args.whole_only else [measure(n) for n in sizes]
    whole = measure_whole()
    data = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "rows": rows,
        "per_extra_fe": {mode: per_extra_fe(rows, mode) for mode, _ in MODES},
        "whole": whole,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lab-speed.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / "lab-speed.md").write_text(render(data))
    print("\n" + render(data))
    ok = all(
        isinstance(r.get(m), dict) and "error" not in r[m] and r[m]["rollback_ok"]
        for r in rows
        for m, _ in MODES
    ) and ("error" not in whole and whole.get("rollback_ok", False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
