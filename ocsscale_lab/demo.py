"""`make demo`: the main job, rehearsed on the built-in lab.

Brings a lab up (the bundled engine installed, unconfigured, on a pair of LB
hosts, lb01 and lb02, with keepalived: `lab up --lb-pair`),
runs the whole migration from the lab's admin host as an operator would:
`lower-ttl` first, as ahead of a real window (its old TTL runs out while the
other phases run, so the cutover need not wait), then `preflight` through
`decommission`, with a client load through the pool name
from the admin machine and every test client all along (the Windows one in
bursts over WinRM; their failed
requests per phase are printed and journaled, and any failed request of any
source outside the failover drill fails the demo; `--wait` waits out the TTLs),
prints the load balancer's distribution and the failover drill's detection
table, writes the evidence report, shows the status, rolls everything back,
proves the hosts file of every pinned host (the Linux hosts' /etc/hosts and
the Windows client's) is byte-identical to before, that exactly one LB host held
the VIP through the run, the VIP silent with every file of both LB hosts as
before and the pool's DNS record back to its old value and
TTL, and takes the lab down again
(also when a step fails or the demo is interrupted), then checks that the
lab left no namespace, /etc/netns entry, directory or process behind.

Then the same migration against Windows front ends (`lab up --fe-os windows`:
the legacy FE and the new FEs are WinRM stand-ins whose Front-End service is the
pool member), shorter: no client load of its own and no report; its checks add
the legacy FE's services stopped and Disabled after decommission, and every
Windows FE's services (state and start mode) as before after the rollback.
`--fe-os linux|windows` runs one of the two.

Without root (the lab needs network namespaces) it runs `check` and `plan`
on the shipped example instead and says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from ocsscale.runner.records import JournalRecords

REPO = Path(__file__).resolve().parent.parent
LAB = "ocsdemo"
#: the second demo: the same migration against Windows front ends
WINDOWS_LAB = "ocsdemowin"
WINDOWS_TITLE = "ocsscale demo: the migration against Windows front ends, then rolled back"
#: the third demo: behind a packet-forwarding appliance, entered by the lab's operator
APPLIANCE_LAB = "ocsdemoapp"
APPLIANCE_TITLE = (
    "ocsscale demo: the migration behind a hardware appliance (nftables NAT, entered by the "
    "lab's operator), then rolled back"
)
APPLIANCE_WEIGHTS = {"ocsfe01": 2, "ocsfe02": 1, "ocsfe03": 1}
#: the first demo's LB hosts: a pair (`lab up --lb-pair`), keepalived floating the VIP
PAIR_HOSTS = ("lb01", "lb02")
LAB_ROOT = Path("/run/ocsscale-lab")
POOL = str(LAB_ROOT / LAB / "pool.yaml")
THROUGH = "decommission"
LOAD_RATE = "4"  # requests/s per source, for the whole run
#: who carries the client load: the admin machine and every test client (the
#: Windows one runs its requests itself, in bursts over WinRM)
LOAD_SOURCES = ("admin", "client01", "client02")
WINDOWS_HOST = "client02"
#: the Windows stand-in's hosts file, inside its sandbox (C:\ is the sandbox)
WINDOWS_HOSTS_FILE = "sandbox/Windows/System32/drivers/etc/hosts"

console = Console(highlight=False)


def ocsscale(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "ocsscale", *args]
    if not capture:
        console.print(f"\n[bold]$ ocsscale {' '.join(args)}[/]")
    return subprocess.run(cmd, cwd=REPO, text=True, capture_output=capture)


def on_admin(*args: str, capture: bool = False, lab: str = LAB) -> subprocess.CompletedProcess[str]:
    """`ocsscale ARGS` run from the lab's admin host, against the lab's pool file."""
    pool = str(LAB_ROOT / lab / "pool.yaml")
    return ocsscale(
        "lab", "exec", "admin", "-n", lab, "--", "ocsscale", "-c", pool, *args, capture=capture
    )


def hosts_digests(lab: str = LAB) -> dict[str, str | None]:
    """SHA-256 of every pinned host's hosts file as that host sees it (None: unreadable):
    a Linux host's /etc/hosts, a Windows host's (the client, and the front ends of a
    `--fe-os windows` lab) in its stand-in's sandbox."""
    from ocsscale_lab import state as labstate

    state = labstate.load(lab)
    digests: dict[str, str | None] = {}
    if state is None:
        return digests
    for host in state.topo().hosts:
        if host.role not in ("client", "windows-client", "fe", "legacy-fe"):
            continue
        if host.os == "windows":
            try:
                data = (LAB_ROOT / lab / "hosts" / host.name / WINDOWS_HOSTS_FILE).read_bytes()
                digests[host.name] = hashlib.sha256(data).hexdigest()
            except OSError:
                digests[host.name] = None
            continue
        out = subprocess.run(
            [sys.executable, "-m", "ocsscale", "lab", "exec", host.name, "-n", lab, "--",
             "cat", "/etc/hosts"],
            cwd=REPO, capture_output=True, check=False,
        )  # fmt: skip
        digests[host.name] = hashlib.sha256(out.stdout).hexdigest() if out.returncode == 0 else None
    return digests


def windows_services(lab: str) -> dict[str, dict[str, tuple[str, str]]]:
    """Each Windows front end's services, (state, start mode), as its stand-in keeps them."""
    found = {}
    for directory in sorted((LAB_ROOT / lab / "hosts").glob("ocsfe*")):
        path = directory / "sandbox" / "services.json"
        if path.is_file():
            raw = json.loads(path.read_text(encoding="utf-8"))
            found[directory.name] = {
                n: ("Running", "Auto") if isinstance(v, str) else (v["status"], v["start_mode"])
                for n, v in raw.items()
            }
    return found


def leftovers(lab: str = LAB) -> list[str]:
    """What lab `lab` left on the machine: namespaces, /etc/netns entries, its
    directory, running processes started from it."""
    found: list[str] = []
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    found += [
        f"namespace {line.split()[0]}"
        for line in listed.stdout.splitlines()
        if line.startswith(f"{lab}-")
    ]
    etc = Path("/etc/netns")
    if etc.is_dir():
        found += [f"/etc/netns/{p.name}" for p in etc.iterdir() if p.name.startswith(f"{lab}-")]
    if (LAB_ROOT / lab).exists():
        found.append(str(LAB_ROOT / lab))
    marker = f"{LAB_ROOT / lab}/"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker in argv and state != "Z":  # a zombie is stopped, only not reaped
            found.append(f"process {proc.name}")
    return found


def lab_journal() -> JournalRecords | None:
    """The lab pool file's journal, read-only; None when the run left none to read
    (it stopped before its journal, or left one that cannot be trusted: the checks
    that need it then fail, saying no load was journaled)."""
    from ocsscale.errors import JournalError
    from ocsscale.runner.records import read_records
    from ocsscale.runner.session import state_dir_for

    try:
        return read_records(state_dir_for(Path(POOL)))
    except JournalError:
        return None


def journal_evidence() -> dict[str, list[dict]]:
    """The evidence of the LB steps, by action, from the lab pool file's journal."""
    found: dict[str, list[dict]] = {}
    records = lab_journal()
    for entry in records.entries if records is not None else ():
        if entry.status == "done" and entry.action in ("lb.distribution", "lb.failover_drill"):
            found.setdefault(entry.action, []).append(entry.evidence)
    return found


def show_lb_tables(found: dict[str, list[dict]]) -> None:
    for dist in found.get("lb.distribution", []):
        table = Table(
            title=f"distribution: {dist['connections']} held connections to "
            f"{dist['vip']}:{dist['port']}",
            title_justify="left",
        )
        for col in ("front end", "weight", "connections", "ideal", "SNAT peers seen on the FE"):
            table.add_column(col)
        for fe, count in dist["counts"].items():
            nat = dist["nat"].get(fe, {})
            table.add_row(
                fe,
                str(dist["weights"][fe]),
                str(count),
                f"{dist['ideal'][fe]:.1f}",
                ", ".join(nat.get("peers", [])) or "-",
            )
        console.print(table)
    drills = found.get("lb.failover_drill", [])
    if drills:
        table = Table(title="failover drill (client load through the VIP)", title_justify="left")
        for col in ("front end", "fault", "out of every port", "back", "requests",
                    "failed until detected", "failed after", "held to others"):  # fmt: skip
            table.add_column(col)
        for d in drills:
            table.add_row(
                d["fe"],
                d["mode"],
                f"{d['detect_s']:.2f} s" if d["detect_s"] is not None else "-",
                f"{d['back_s']:.2f} s" if d["back_s"] is not None else "-",
                str(d["requests"]),
                str(d["failed_until_detection"]),
                str(d["failed_after_detection"]),
                ", ".join(f"{k}: {v} alive" for k, v in d["held_survived"].items()),
            )
        console.print(table)


def client_load_failures() -> dict[str, Any]:
    """The run's client load from the journal: per source (the admin machine and
    each Linux test client), its failed requests outside the failover drill, its
    line per phase, and the sources that carried no load (and why)."""
    from ocsscale.runner.client_load import outside_drill

    records = lab_journal()
    loads = [r["load"] for r in records.runs if r.get("load")] if records is not None else []
    if not loads:
        return {}
    from ocsscale.plan.playbook import PHASE_IDS

    order = {phase: i for i, phase in enumerate(PHASE_IDS)}
    journaled = loads[-1]["by_phase"]  # the journal keeps keys sorted: put phases in order
    by_phase = {p: journaled[p] for p in sorted(journaled, key=lambda p: order.get(p, -1))}
    per_source = {
        source: "; ".join(
            f"{phase} {row[source]['failed']}/{row[source]['requests']}"
            for phase, row in by_phase.items()
            if source in row
        )
        for source in sorted({s for row in by_phase.values() for s in row})
    }
    return {
        "outside_drill": outside_drill(by_phase),
        "per_source": per_source,
        "not_loaded": loads[-1].get("not_loaded", {}),
    }


def load_checks(loads: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """One check per load source the demo expects (the admin machine, every test
    client, Windows too): it carried a load, and no request of it failed outside the
    drill."""
    outside = loads.get("outside_drill", {})
    checks = []
    for source in LOAD_SOURCES:
        what = f"client load: no failed request outside the failover drill ({source})"
        tally = outside.get(source)
        if tally is None or not tally["requests"]:
            why = loads.get("not_loaded", {}).get(source, "no client load was journaled")
            checks.append((what, False, f"no load from {source}: {why}"))
            continue
        detail = (
            f"{tally['failed']} of {tally['requests']} failed outside the drill; "
            + loads["per_source"][source]
        )
        checks.append((what, tally["failed"] == 0, detail))
    return checks


def dns_answer(lab: str = LAB) -> str:
    """The pool name's A record and TTL as the lab's BIND answers it, from the admin host."""
    out = subprocess.run(
        [sys.executable, "-m", "ocsscale", "lab", "exec", "admin", "-n", lab, "--",
         "dig", "+noall", "+answer", "ocspool.lab.test", "A", "@198.18.0.53"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    fields = out.stdout.split()
    return f"{fields[-1]} TTL {fields[1]}" if len(fields) >= 5 else out.stdout.strip() or "?"


def vip_silent(lab: str = LAB, lb_hosts: tuple[str, ...] = ("lb01",)) -> tuple[bool, str]:
    """After the rollback: no farm file on any LB host and nothing on the VIP's ports."""
    farms = [LAB_ROOT / lab / "hosts" / h / "etc" / "ocsscale-lb" / "farm.yaml" for h in lb_hosts]
    left = [f for f in farms if f.exists()]
    probe = subprocess.run(
        [sys.executable, "-m", "ocsscale", "lab", "exec", "admin", "-n", lab, "--",
         "python3", "-c",
         "import socket,sys\n"
         "for p in (5061, 444, 443):\n"
         "    s=socket.socket(); s.settimeout(1)\n"
         "    sys.exit(1) if s.connect_ex(('198.18.0.40', p)) == 0 else None"],
        cwd=REPO, capture_output=True, check=False,
    )  # fmt: skip
    silent = probe.returncode == 0
    return silent and not left, (
        f"VIP {'silent' if silent else 'still answers'}; farm file "
        f"{'gone' if not left else 'still there'} ({', '.join(lb_hosts)})"
    )


def lb_tree(lab: str = LAB, lb_hosts: tuple[str, ...] = PAIR_HOSTS) -> dict[str, str]:
    """SHA-256 of every file under the LB hosts' etc/, lib/ and run/ (pid files and
    sockets aside): keepalived's and the LB's configuration, state and scripts."""
    found = {}
    for host in lb_hosts:
        base = LAB_ROOT / lab / "hosts" / host
        for sub in ("etc", "lib", "run"):
            for path in sorted((base / sub).rglob("*")):
                if path.is_file() and not path.is_socket() and path.suffix != ".pid":
                    found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def vip_holders_through_the_run() -> tuple[bool, str]:
    """From the journal: configure-lb and validate-lb each saw exactly one LB host
    holding the VIP, the same one (the pair's proof, read from both hosts)."""
    records = lab_journal()
    seen: list[str] = []
    for entry in records.entries if records is not None else ():
        if entry.status != "done" or not isinstance(entry.evidence, dict):
            continue
        if entry.action == "lb.apply_farm" and "vip_holder" in entry.evidence:
            seen.append(str(entry.evidence["vip_holder"]))
        elif entry.action == "lb.pair_holder":
            seen.append(str(entry.evidence.get("active")))
    ok = len(seen) >= 2 and len(set(seen)) == 1 and seen[0] in PAIR_HOSTS
    return ok, ", ".join(seen) or "no pair evidence journaled"


def without_lab() -> int:
    console.print(
        "[yellow]The lab needs root on Linux (network namespaces).[/] Showing `check` and "
        "`plan` on the shipped example instead; run `sudo make demo` for the full rehearsal."
    )
    example = str(REPO / "examples" / "one-armed.yaml")
    for args in (("-c", example, "check"), ("-c", example, "plan", "--phase", THROUGH)):
        if ocsscale(*args).returncode != 0:
            return 1
    return 2


class Checks:
    """A demo's checks, one row each, shown as a table at the end."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def record(self, what: str, ok: bool, detail: str = "") -> bool:
        self.rows.append((what, "[green]ok[/]" if ok else "[red]FAILED[/]", detail))
        return ok

    def lab_down(self, lab: str) -> None:
        """Take the lab down, and prove it left no namespace, directory or process."""
        down = ocsscale("lab", "down", "--name", lab)
        left = leftovers(lab)
        self.record(
            "lab down",
            down.returncode == 0 and not left,
            "nothing left behind" if not left else "left: " + ", ".join(left[:6]),
        )

    def finish(self, label: str, started: float, *title: str) -> int:
        failed = any("FAILED" in status for _, status, _ in self.rows)
        console.print(f"\n({label} took {time.monotonic() - started:.0f} s)")
        return summary(self.rows, 1 if failed else 0, *title)


def rehearse() -> int:
    checks = Checks()
    record = checks.record

    started = time.monotonic()
    up = ocsscale("lab", "up", "--name", LAB, "--lb-pair")
    if not record(
        "lab up --lb-pair",
        up.returncode == 0,
        "namespaces, sshd, BIND, pool members, WinRM, lb01+lb02 with keepalived",
    ):
        return summary(checks.rows, 1)
    try:
        before = hosts_digests()
        lb_before = lb_tree()
        record_before = dns_answer()
        on_admin("plan", "--phase", THROUGH)
        # ahead of the window, as the walkthrough's operator would: the old TTL runs
        # out in every cache while the front ends and the load balancer are validated
        ahead = on_admin("run", "--phase", "lower-ttl", "--yes")
        record(
            "run lower-ttl ahead of the window",
            ahead.returncode == 0,
            f"exit code {ahead.returncode}",
        )
        run = on_admin(
            "run", "--through", THROUGH, "--yes", "--no-hold", "--wait",
            "--client-load", LOAD_RATE,
        )  # fmt: skip
        record(f"run preflight → {THROUGH}", run.returncode == 0, f"exit code {run.returncode}")
        record("exactly one LB host held the VIP, the same one", *vip_holders_through_the_run())
        found = journal_evidence()
        show_lb_tables(found)
        for what, ok, detail in load_checks(client_load_failures()):
            record(what, ok, detail)
        report = on_admin("report", "-o", str(Path(POOL).parent / "report.html"), capture=True)
        record(
            "evidence report written",
            report.returncode == 0,
            str(Path(POOL).parent / "report.html") if report.returncode == 0 else report.stderr,
        )
        record(
            "distribution and failover drill measured",
            bool(found.get("lb.distribution")) and bool(found.get("lb.failover_drill")),
            f"{len(found.get('lb.failover_drill', []))} drills",
        )
        on_admin("status")
        lb_during = lb_tree()  # keepalived's and the farm's files: the check sees them
        back = on_admin("rollback", "--yes")
        record("rollback", back.returncode == 0, f"exit code {back.returncode}")
        record("load balancer back as before", *vip_silent(LAB, PAIR_HOSTS))
        lb_after = lb_tree()
        changed = [
            p for p in lb_before.keys() | lb_after.keys() if lb_before.get(p) != lb_after.get(p)
        ]
        record(
            "both LB hosts' files byte-identical after rollback (keepalived too)",
            len(lb_during) > len(lb_before) and not changed,
            f"{len(lb_before)} files before and after, {len(lb_during)} during the run"
            if not changed
            else "differ: " + ", ".join(sorted(changed)[:4]),
        )
        record_after = dns_answer()
        record(
            "pool record back as before (value and TTL)",
            record_after == record_before,
            f"{record_before} -> {record_after}",
        )
        after = hosts_digests()
        same = [h for h in before if before[h] is not None and before[h] == after[h]]
        record(
            "hosts files byte-identical after rollback",
            len(same) == len(before),
            ", ".join(f"{h} {'=' if h in same else '≠'}" for h in before),
        )
        status = on_admin("status", "--json", capture=True)
        if status.returncode == 0:
            undo = json.loads(status.stdout).get("rollback_would_undo", [])
            record("nothing left to undo", not undo, f"{len(undo)} undo records left")
    finally:
        checks.lab_down(LAB)
    return checks.finish("demo", started)


def rehearse_windows() -> int:
    """The same migration against Windows front ends (`lab up --fe-os windows`): the
    legacy FE and the new FEs are WinRM stand-ins whose Front-End service is the pool
    member. Shorter than the Linux one: no client load of its own (the failover
    drill still runs its own through the VIP), no report."""
    checks = Checks()
    record = checks.record

    lab = WINDOWS_LAB
    started = time.monotonic()
    up = ocsscale("lab", "up", "--name", lab, "--fe-os", "windows")
    if not record("lab up --fe-os windows", up.returncode == 0, "FEs are WinRM stand-ins"):
        return summary(checks.rows, 1, WINDOWS_TITLE)
    try:
        before = hosts_digests(lab)
        services_before = windows_services(lab)
        record_before = dns_answer(lab)
        ahead = on_admin("run", "--phase", "lower-ttl", "--yes", lab=lab)
        record(
            "run lower-ttl ahead of the window", ahead.returncode == 0, f"exit {ahead.returncode}"
        )
        run = on_admin("run", "--through", THROUGH, "--yes", "--no-hold", "--wait", lab=lab)
        record(f"run preflight → {THROUGH}", run.returncode == 0, f"exit code {run.returncode}")
        legacy = windows_services(lab).get("ocsfe00", {}).get("RTCSRV")
        record(
            "legacy FE's Front-End service stopped and disabled",
            legacy == ("Stopped", "Disabled"),
            f"RTCSRV on ocsfe00: {legacy}",
        )
        back = on_admin("rollback", "--yes", lab=lab)
        record("rollback", back.returncode == 0, f"exit code {back.returncode}")
        record("load balancer back as before", *vip_silent(lab))
        record_after = dns_answer(lab)
        record(
            "pool record back as before (value and TTL)",
            record_after == record_before,
            f"{record_before} -> {record_after}",
        )
        changed = [
            h for h, table in windows_services(lab).items() if table != services_before.get(h)
        ]
        record(
            "Windows services back as before (state and start mode)",
            bool(services_before) and not changed,
            ", ".join(changed) or f"{len(services_before)} front ends",
        )
        after = hosts_digests(lab)
        same = [h for h in before if before[h] is not None and before[h] == after[h]]
        record(
            "hosts files byte-identical after rollback",
            len(same) == len(before),
            ", ".join(f"{h} {'=' if h in same else '≠'}" for h in before),
        )
    finally:
        checks.lab_down(lab)
    return checks.finish("Windows demo", started, WINDOWS_TITLE)


def appliance_evidence(pool: Path) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """From the run's journal: (by, via) of every answer, and validate-lb's split."""
    import sqlite3

    path = pool.parent / ".ocsscale" / "journal.sqlite"
    if not path.is_file():
        return [], {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        # the questions the run asked: not the go-ahead that `--yes` gave (via "flag")
        answers = [
            (r[0], r[1]) for r in db.execute("SELECT \"by\", via FROM answers WHERE via != 'flag'")
        ]
        rows = db.execute(
            "SELECT evidence FROM entries WHERE action = 'lb.distribution' AND status = 'done' "
            "ORDER BY seq DESC LIMIT 1"
        ).fetchall()
    finally:
        db.close()
    split = json.loads(rows[0][0]).get("counts", {}) if rows and rows[0][0] else {}
    return answers, split


def _weigh(pool: Path, weights: dict[str, int]) -> None:
    """The lab pool file's front ends at `weights` (2:1:1 shows the split by weight)."""
    from ruamel.yaml import YAML

    yaml = YAML()
    data = yaml.load(pool.read_text())
    for fe in data["front_ends"]:
        fe["weight"] = weights.get(fe["name"], fe["weight"])
    with pool.open("w") as f:
        yaml.dump(data, f)


def rehearse_appliance() -> int:
    """The migration behind a packet-forwarding appliance (`lab up --lb appliance`,
    two-armed routed: the routing step proves the appliance routes): the pool file names
    the manual driver (WebMux); `ocsscale lab operator` plays the person at the
    appliance, at another terminal: it reads each checklist with `ocsscale answer
    --json`, enters its data and answers `done`. Three FEs at weights 2:1:1."""
    checks = Checks()
    record = checks.record

    lab = APPLIANCE_LAB
    pool = LAB_ROOT / lab / "pool.yaml"
    started = time.monotonic()
    up = ocsscale(
        "lab", "up", "--name", lab, "--lb", "appliance", "--fes", "3",
        "--topology", "two-armed-routed",
    )  # fmt: skip
    if not record("lab up --lb appliance", up.returncode == 0, "nftables NAT, 3 FEs, 2:1:1"):
        return summary(checks.rows, 1, APPLIANCE_TITLE)
    operator: subprocess.Popen[bytes] | None = None
    try:
        _weigh(pool, APPLIANCE_WEIGHTS)
        log = (LAB_ROOT / lab / "operator.log").open("wb")
        console.print("\n[bold]$ ocsscale lab operator &[/]   (the person at the appliance)")
        operator = subprocess.Popen(
            [sys.executable, "-m", "ocsscale", "lab", "operator", "--name", lab],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        record_before = dns_answer(lab)
        ahead = on_admin("run", "--phase", "lower-ttl", "--yes", lab=lab)
        record(
            "run lower-ttl ahead of the window", ahead.returncode == 0, f"exit {ahead.returncode}"
        )
        run = on_admin(
            "run", "--through", THROUGH, "--yes", "--no-hold", "--wait",
            "--answer-timeout", "600", lab=lab,
        )  # fmt: skip
        record(f"run preflight → {THROUGH}", run.returncode == 0, f"exit code {run.returncode}")
        answers, split = appliance_evidence(pool)
        record(
            "every question answered by the lab's operator through `ocsscale answer`",
            bool(answers) and all(a == ("lab-operator", "answer") for a in answers),
            f"{len(answers)} answer(s)",
        )
        total = sum(split.values())
        ideal = {
            n: total * w // sum(APPLIANCE_WEIGHTS.values()) for n, w in APPLIANCE_WEIGHTS.items()
        }
        record(
            "held connections split by weight (2:1:1)",
            bool(total) and split == ideal,
            ", ".join(f"{n} {c}" for n, c in sorted(split.items())) or "no distribution",
        )
        back = on_admin("rollback", "--yes", "--answer-timeout", "600", lab=lab)
        record("rollback", back.returncode == 0, f"exit code {back.returncode}")
        record("the VIP silent (the farm reverted at the appliance)", *vip_silent(lab))
        record_after = dns_answer(lab)
        record(
            "pool record back as before (value and TTL)",
            record_after == record_before,
            f"{record_before} -> {record_after}",
        )
    finally:
        if operator is not None:
            operator.terminate()
            try:
                operator.wait(timeout=30)
            except subprocess.TimeoutExpired:
                operator.kill()
                operator.wait(timeout=10)
        checks.lab_down(lab)
    return checks.finish("appliance demo", started, APPLIANCE_TITLE)


def summary(
    results: list[tuple[str, str, str]],
    code: int,
    title: str = "ocsscale demo: the whole migration on the lab, then rolled back",
) -> int:
    table = Table(title=title, title_justify="left")
    table.add_column("step")
    table.add_column("result")
    table.add_column("detail")
    for row in results:
        table.add_row(*row)
    console.print()
    console.print(table)
    return code


def main(argv: list[str] | None = None) -> int:
    """`--fe-os linux|windows|both` (both: the Linux demo, then the Windows one) or
    `--lb appliance` (only the appliance demo); by default all three."""
    args = sys.argv[1:] if argv is None else argv
    fe_os, appliance = "both", True
    if args[:1] == ["--fe-os"] and len(args) == 2 and args[1] in ("linux", "windows", "both"):
        fe_os, appliance = args[1], False
    elif args == ["--lb", "appliance"]:
        fe_os = "none"
    elif args:
        console.print(
            "usage: python -m ocsscale_lab.demo [--fe-os linux|windows|both | --lb appliance]"
        )
        return 2
    if sys.platform != "linux" or os.geteuid() != 0:
        return without_lab()
    code = 0
    if fe_os in ("linux", "both"):
        # A demo lab left by an earlier, interrupted demo is taken down first.
        ocsscale("lab", "down", "--name", LAB, capture=True)
        code = rehearse()
    if fe_os in ("windows", "both"):
        ocsscale("lab", "down", "--name", WINDOWS_LAB, capture=True)
        code = max(code, rehearse_windows())
    if appliance:
        ocsscale("lab", "down", "--name", APPLIANCE_LAB, capture=True)
        code = max(code, rehearse_appliance())
    return code


if __name__ == "__main__":
    sys.exit(main())
