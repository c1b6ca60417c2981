"""`ocsscale lb ...`: run the bundled load-balancer engine and operate it.

Its errors are the tool's own (EngineError, FarmFileError, AdminClientError and
UsageError are OcsscaleErrors): they are raised, never printed here, and the
entry point renders them as every other command's (cli/render.py)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..errors import UsageError
from .client import call

if TYPE_CHECKING:
    from .farm import Farm

app = typer.Typer(
    help=(
        "The bundled L4 load balancer: a full proxy (SNAT + DNAT) with weighted least "
        "connections and health checks.\n\n"
        "Start it with `serve --farm FILE`; the other commands talk to a running engine "
        "through its admin socket (found from `--farm FILE`, or given as `--socket PATH`).\n\n"
        "Typical maintenance of one server: `drain fe1` (new connections go elsewhere), "
        "watch `status` until its active count is 0, `maint fe1` (checks stop), work, "
        "`ready fe1` (back once its checks pass). `events --follow` shows every change."
    ),
    no_args_is_help=True,
)
out = Console(soft_wrap=True)

FarmOpt = Annotated[
    Path | None, typer.Option("--farm", "-f", help="Farm file; its admin.socket is used.")
]
SocketOpt = Annotated[
    Path | None, typer.Option("--socket", "-s", help="Admin socket path (overrides --farm).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the engine's JSON answer.")]


def _socket(farm: Path | None, socket: Path | None) -> str:
    if socket is not None:
        return str(socket)
    if farm is None:
        raise UsageError("say which engine: --socket PATH or --farm FILE")
    return _load(farm).admin_socket


def _load(farm: Path) -> Farm:
    """The farm file; FarmFileError (exit 2) with one FILE:LINE:COL line per problem."""
    from .loader import load_farm

    return load_farm(farm)


@app.command()
def serve(
    farm: Annotated[Path, typer.Option("--farm", "-f", help="Farm file to serve.")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the engine in the foreground until SIGTERM or Ctrl-C.

    A stop is soft: new clients are refused, established sessions may finish for
    timeouts.hard_stop_after (30 s); a second SIGTERM or Ctrl-C ends it at once.
    Logs are JSON lines on stderr. SIGHUP (or `reload`) re-reads the farm file
    without dropping connections. Exit 2 on a farm file error, 1 on a runtime
    error such as a port already in use.
    """
    import contextlib
    import logging

    from .events import setup_logging
    from .runtime import serve as run_engine

    setup_logging(logging.DEBUG if verbose else logging.INFO)
    # Ctrl-C before the engine's own handlers are in place: a stop, not an error.
    with contextlib.suppress(KeyboardInterrupt):
        run_engine(str(farm))  # FarmFileError (exit 2), EngineError (exit 1)


@app.command()
def check(farm: Annotated[Path, typer.Option("--farm", "-f", help="Farm file.")]) -> None:
    """Validate a farm file without starting anything (exit 2 with FILE:LINE:COL on errors)."""
    f = _load(farm)
    out.print(
        f"{farm}: farm {f.farm}: {len(f.vip)} VIP(s), {len(f.ports)} port(s), "
        f"{len(f.servers)} server(s), admin socket {f.admin_socket}"
    )


def _server_table(status: dict[str, Any]) -> Table:
    title = f"farm {status['farm']} ({status.get('loop', '?')}, {status['workers']} worker(s))"
    table = Table(title=title)
    for col in ("server", "address", "weight", "admin", "health", "active", "served"):
        table.add_column(col, no_wrap=True)
    table.add_column("active per port (port:n)")
    for s in status["servers"]:
        health = "[green]up[/green]" if s["healthy"] else "[red]down[/red]"
        per_port = " ".join(f"{p}:{n}" for p, n in s["per_port"].items()) or "-"
        table.add_row(
            s["name"],
            s["address"],
            str(s["weight"]),
            s["admin"],
            health,
            str(s["active"]),
            str(s["served"]),
            per_port,
        )
    return table


@app.command()
def status(farm: FarmOpt = None, socket: SocketOpt = None, json_out: JsonOpt = False) -> None:
    """Servers with their admin state, health, and connections (all ports, and per port)."""
    data = call(_socket(farm, socket), "GET", "/status")
    if json_out:
        print(json.dumps(data, indent=2))
        return
    out.print(_server_table(data))
    for s in data["servers"]:
        out.print(f"{s['name']}: last check: {s['check']}", highlight=False, markup=False)
    listeners = ", ".join(f"{x['vip']}:{x['port']}->{x['backend_port']}" for x in data["listeners"])
    out.print(f"listening: {listeners}")
    snat = data["snat"]
    in_use = ", ".join(f"{a}={n}" for a, n in snat["in_use"].items()) or "kernel default"
    out.print(f"SNAT in use: {in_use}; refused for exhaustion: {snat['exhausted']}")


def _set_state(
    state: str, server: str, farm: Path | None, socket: Path | None, shutdown: bool, json_out: bool
) -> None:
    query = "?shutdown=1" if shutdown else ""
    data = call(_socket(farm, socket), "POST", f"/servers/{server}/{state}{query}")
    if json_out:
        print(json.dumps(data, indent=2))
        return
    s = data["server"]
    extra = f", closed {data['sessions_closed']} sessions" if shutdown else ""
    out.print(f"{s['name']}: {s['admin']} ({s['active']} active connections{extra})")


ShutdownOpt = Annotated[
    bool, typer.Option("--shutdown", help="Also close the server's established sessions now.")
]
ServerArg = Annotated[str, typer.Argument(help="Server name as in the farm file.")]


@app.command()
def drain(
    server: ServerArg,
    farm: FarmOpt = None,
    socket: SocketOpt = None,
    shutdown: ShutdownOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """No new connections to SERVER; established ones continue (health checks go on)."""
    _set_state("drain", server, farm, socket, shutdown, json_out)


@app.command()
def ready(
    server: ServerArg, farm: FarmOpt = None, socket: SocketOpt = None, json_out: JsonOpt = False
) -> None:
    """Let SERVER take new connections again (once its health checks pass)."""
    _set_state("ready", server, farm, socket, False, json_out)


@app.command()
def maint(
    server: ServerArg,
    farm: FarmOpt = None,
    socket: SocketOpt = None,
    shutdown: ShutdownOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Maintenance: no new connections and no health checks. Survives reloads."""
    _set_state("maint", server, farm, socket, shutdown, json_out)


@app.command()
def events(
    farm: FarmOpt = None,
    socket: SocketOpt = None,
    json_out: JsonOpt = False,
    since: Annotated[int, typer.Option(help="Only events after this sequence number.")] = 0,
    follow: Annotated[bool, typer.Option("--follow", help="Keep printing new events.")] = False,
) -> None:
    """State changes and notable events (server up/down, admin changes, SNAT exhaustion)."""
    sock = _socket(farm, socket)
    while True:
        evs = call(sock, "GET", f"/events?since={since}")["events"]
        for e in evs:
            since = max(since, e["seq"])
            if json_out:
                print(json.dumps(e), flush=True)
            else:
                who = f" [{e['server']}]" if "server" in e else ""
                out.print(
                    f"{e['seq']:>5} {e['ts']} {e['kind']}{who}: {e['reason']}",
                    highlight=False,
                    markup=False,
                )
        if not follow:
            return
        sys.stdout.flush()
        time.sleep(0.5)


@app.command()
def api(
    method: Annotated[str, typer.Argument(help="GET or POST.")],
    target: Annotated[str, typer.Argument(help="An admin API path, e.g. /status.")],
    socket: Annotated[Path, typer.Option("--socket", "-s", help="Admin socket path.")],
) -> None:
    """One admin API request, its JSON answer printed on one line (for programs: what
    ocsscale's engine driver runs on the LB host; see the engine's README)."""
    from .api_cli import run_api

    code = run_api(method, target, str(socket))
    if code:
        raise typer.Exit(code)


@app.command()
def reload(farm: FarmOpt = None, socket: SocketOpt = None, json_out: JsonOpt = False) -> None:
    """Re-read the farm file: bind new ports, close removed ones, apply server changes.

    Established connections are kept; an invalid file changes nothing (exit 1).
    """
    data = call(_socket(farm, socket), "POST", "/reload")
    if json_out:
        print(json.dumps(data, indent=2))
        return
    out.print("reloaded: " + (", ".join(data["changes"]) or "no server changes"))
    out.print("listening: " + ", ".join(data["listeners"]))


@app.command()
def metrics(farm: FarmOpt = None, socket: SocketOpt = None) -> None:
    """Print the Prometheus metrics the engine exposes at GET /metrics."""
    from .client import request

    _status, body = request(_socket(farm, socket), "GET", "/metrics")
    sys.stdout.write(body.decode())
