"""`ocsscale lab`: a rehearsal lab of the whole topology, from network namespaces.

Mounted by ocsscale.cli.main only when a `lab` command runs, and it imports
nothing of ocsscale.cli: errors are rendered by the root command, as for every
other command.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import typer

from . import down as labdown
from . import load as labload
from . import state as labstate
from . import status as labstatus
from . import system
from . import up as labup
from .topology import DEFAULT_NAME, TOPOLOGIES

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="A rehearsal lab: the walkthrough's network on this machine (root, Linux).",
)

NAME_OPTION = typer.Option(DEFAULT_NAME, "--name", "-n", help="The lab's name (namespace prefix).")


@app.command("up")
def up_cmd(
    topology: str = typer.Option(
        "one-armed", "--topology", "-t", help=f"One of: {', '.join(TOPOLOGIES)}."
    ),
    fes: int = typer.Option(2, "--fes", help="How many new front ends."),
    name: str = NAME_OPTION,
    lb_forwarding: bool = typer.Option(
        True,
        "--lb-forwarding/--no-lb-forwarding",
        help="Two-armed only: turn routing on at the LB (off leaves it to the routing phase).",
    ),
    lb: str = typer.Option(
        "engine",
        "--lb",
        help="The load balancer installed (unconfigured) on lb01: engine (the bundled one), "
        "haproxy (Debian's) or none (the pool file then names the manual driver); "
        "`ocsscale run --phase configure-lb` configures it. appliance: lb01 forwards "
        "packets with nftables NAT, as a hardware appliance (WebMux) does; the pool file "
        "names the manual driver and the lab's operator enters the checklists.",
    ),
    fault: list[str] = typer.Option(
        [],
        "--fault",
        help="HOST:KIND, repeatable, to rehearse a failure: FE:bad-san (certificate without "
        "the FE's FQDN), FE:close:PORT (that port stays closed), FE:tls10 (TLS 1.0 only, "
        "SHA-1 certificate), FE:tls10-3des (TLS 1.0 with DES-CBC3-SHA only, SHA-1 "
        "certificate), CLIENT:hosts-readonly "
        "(its hosts file cannot be written), WINDOWS:powershell-1.0, WINDOWS:hosts-moved (its "
        "registry's DataBasePath names C:\\NetConfig), WINDOWS:locale-de "
        "(a German Windows: netstat says HERGESTELLT), DNS:no-replication (--dns ad: that "
        "DNS server never receives a change).",
    ),
    dns_kind: str = typer.Option(
        "bind",
        "--dns",
        help="bind: one BIND primary; ad: an AD-integrated zone on DNS servers with their own "
        "serials (dns01 takes the changes, through the domain controller dc01's Windows DNS "
        "stand-in; the others get them --dns-replication seconds later).",
    ),
    fe_os: str = typer.Option(
        "linux",
        "--fe-os",
        help="linux: the front ends (ocsfe00, the legacy one, and the new ones) are reached "
        "over SSH; windows: each is the WinRM stand-in with the OCS services by display "
        "name, its Front-End service (RTCSRV) being the pool member on the FE's ports.",
    ),
    lb_pair: bool = typer.Option(
        False,
        "--lb-pair",
        help="Two LB hosts (lb01, lb02) with --lb engine|haproxy defined on both and keepalived "
        "installed, unconfigured: configure-lb sets the VIP floating between them.",
    ),
    dns_servers: int = typer.Option(2, "--dns-servers", help="--dns ad: how many DNS servers."),
    dns_replication: float = typer.Option(
        labup.DEFAULT_DNS_REPLICATION,
        "--dns-replication",
        help="--dns ad: seconds before a change reaches the other DNS servers.",
    ),
) -> None:
    """Build the lab and start its servers (sshd, BIND, pool members, WinRM stand-in)."""
    state = labup.up(
        name,
        topology,  # type: ignore[arg-type]
        fes,
        lb_forwarding=lb_forwarding,
        fault_specs=fault,
        lb=lb,
        dns_kind=dns_kind,
        dns_servers=dns_servers,
        dns_replication=dns_replication,
        fe_os=fe_os,
        lb_pair=lb_pair,
        echo=typer.echo,
    )
    info = labstatus.describe(state)
    typer.echo(labstatus.render(info))
    typer.echo(
        "\nUse it:\n"
        f"  ocsscale lab exec admin -n {name} -- ocsscale -c {state.pool_file} plan\n"
        f"  ocsscale lab shell admin -n {name}     (then: ssh ocsfe01, dig ocspool.lab.test)\n"
        f"  ocsscale lab down -n {name}"
    )


@app.command("down")
def down_cmd(name: str = NAME_OPTION) -> None:
    """Stop every server and remove every namespace, file and route of the lab."""
    if labdown.down(name, echo=typer.echo):
        typer.echo(f"lab {name}: down, nothing left behind")
    else:
        typer.echo(f"no lab named {name!r} is up; nothing to do")


@app.command("status")
def status_cmd(
    name: str = typer.Option(None, "--name", "-n", help="One lab (default: every lab)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show each lab's hosts, addresses and servers."""
    names = [name] if name else labstate.all_labs()
    infos = []
    for lab in names:
        state = labstate.load(lab)
        if state is not None:
            infos.append(labstatus.describe(state))
    if as_json:
        typer.echo(json.dumps({"labs": infos}, indent=2))
    elif not infos:
        typer.echo(f"no lab named {name!r} is up" if name else "no lab is up")
    else:
        typer.echo("\n\n".join(labstatus.render(i) for i in infos))


def _enter(name: str, host: str, argv: list[str], extra_env: dict[str, str]) -> None:
    system.require_root_linux()
    state = labstate.require(name)
    ns = state.topo().ns(state.topo().host(host).name)
    if not system.netns_exists(ns):
        raise labstate.UsageError(f"namespace {ns} is missing: the lab is broken, take it down")
    env = dict(os.environ)
    env["PATH"] = f"{state.bin_dir}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    env.update({"OCSSCALE_LAB": name, "OCSSCALE_LAB_DIR": str(state.directory), **extra_env})
    os.execvpe("ip", ["ip", "netns", "exec", ns, *argv], env)


@app.command(
    "exec",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def exec_cmd(
    ctx: typer.Context,
    host: str = typer.Argument(..., help="A lab host, e.g. admin, client01, ocsfe01."),
    name: str = NAME_OPTION,
) -> None:
    """Run a command on a lab host: ocsscale lab exec HOST -- CMD [ARGS...]."""
    argv = list(ctx.args)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise labstate.UsageError("no command given: ocsscale lab exec HOST -- CMD [ARGS...]")
    _enter(name, host, argv, {})


@app.command("shell")
def shell_cmd(
    host: str = typer.Argument(..., help="A lab host, e.g. admin, client01, ocsfe01."),
    name: str = NAME_OPTION,
) -> None:
    """An interactive shell on a lab host."""
    shell = shutil.which("bash") or "/bin/sh"
    prompt = f"[lab {name}:{host}] \\w# "
    _enter(
        name, host, [shell, "--norc", "-i"] if shell.endswith("bash") else [shell], {"PS1": prompt}
    )


@app.command("load")
def load_cmd(
    duration: float = typer.Option(
        ..., "--duration", help=f"Seconds, at most {labload.MAX_DURATION:g}."
    ),
    rate: float = typer.Option(
        ..., "--rate", help=f"Requests per second per client, at most {labload.MAX_RATE:g}."
    ),
    through: str = typer.Option(
        "name",
        "--through",
        help="name: resolve the pool FQDN on the client for every request (follows a "
        "cutover); vip: the VIP address.",
    ),
    name: str = NAME_OPTION,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write every client's report, merged, as JSON."
    ),
) -> None:
    """A continuous client load from every Linux test client at once: SIP OPTIONS over
    TLS, TLS and TCP connects, each a new connection; failures per second and per FE."""
    from rich.console import Console

    from ocsscale.probes.load_report import merge_reports

    from . import load_view

    labload.check_request(duration, rate, through)  # bounds first: exit 2, nothing started
    if output is not None and not output.resolve().parent.is_dir():
        raise labstate.UsageError(f"-o {output}: its directory does not exist")
    system.require_root_linux()
    state = labstate.require(name)
    load = labload.LabLoad(state, duration=duration, rate=rate, through=through)
    reports = load.run()
    if output is not None:
        merged = merge_reports(reports)
        merged.update(lab=name, through=through, duration=duration, rate=rate)
        try:
            output.write_text(json.dumps(merged, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise labstate.UsageError(f"cannot write {output}: {exc.strerror}") from None
    console = Console(highlight=False, soft_wrap=True, emoji=False)
    load_view.render(console, reports, through, labload.windows_clients(state))
    if output is not None:
        console.print(f"report: {output}")


@app.command("operator")
def operator_cmd(
    name: str = NAME_OPTION,
    pool: Path | None = typer.Option(
        None, "--pool", help="The pool file the run uses (default: the lab's own)."
    ),
    by: str = typer.Option("lab-operator", "--by", help="The name its answers carry."),
    max_seconds: float = typer.Option(
        3600.0, "--max-seconds", min=1.0, max=14400.0, help="Stop after this long."
    ),
) -> None:
    """The lab's operator at the appliance (`lab up --lb appliance`): reads what the run
    waits for with `ocsscale answer --json`, enters the checklist's data into the
    appliance (the farm, its revert, a member's admin state, routing), and answers
    `done` with `ocsscale answer`, as a person at another terminal would. Questions
    that are not the appliance's (a DNS change, the client tests) are left alone.
    Runs until Ctrl-C, SIGTERM or --max-seconds; a checklist that lacks something
    the appliance needs is answered `abort` and ends it with exit 1.

      ocsscale lab operator &

      ocsscale lab exec admin -- ocsscale -c POOL run --through failover-test \\
          --yes --answer-timeout 600
    """
    import signal
    import threading

    from .appliance_operator import LabAppliance, run_operator
    from .operator_channel import AnswerCommand

    system.require_root_linux()
    state = labstate.require(name)
    box = LabAppliance.of(state)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        handled = run_operator(
            AnswerCommand(pool or state.pool_file),
            stop,
            by,
            appliance=box,
            max_seconds=max_seconds,
        )
    except system.LabError as exc:
        typer.echo(f"lab operator: {exc}", err=True)
        raise typer.Exit(1) from None
    for item in handled:
        typer.echo(f"answered {item['answer']}: {item['kind']}")


@app.command("load-worker", hidden=True)
def load_worker_cmd(
    name: str = NAME_OPTION,
    client: str = typer.Option(..., "--client"),
    duration: float = typer.Option(..., "--duration"),
    rate: float = typer.Option(..., "--rate"),
    through: str = typer.Option(..., "--through"),
    marks: Path = typer.Option(..., "--marks"),
    output: Path = typer.Option(..., "--output"),
) -> None:
    """One client's share of `lab load`, run inside that client's namespace."""
    report = labload.worker_main(name, client, duration, rate, through, marks, output)
    typer.echo(f"{client}: {report.requests} requests, {report.failed} failed")
