"""`ocsscale`: the entry point. Each command group lives in its own module and
registers itself here; this module only wires them and renders errors."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .. import __version__
from ..errors import OcsscaleError
from . import config_cmds, report_cmd, run_cmds
from .render import render_error
from .state import DEFAULT_POOL, AppState

HELP = """\
Move a service from one server to a load-balanced pool: every step shown
before it runs, proven after, and reversible.

Typical session:

  ocsscale init -o pool.yaml        write a commented pool file to edit

  ocsscale check                    validate it (nothing is contacted)

  ocsscale plan                     every phase, step, host and change

  ocsscale run --phase validate-fe  run one phase (asks before changing)

  ocsscale status                   what is done, what rollback would undo

  ocsscale report                   the evidence as one HTML page

  ocsscale rollback                 put back what was there before

Exit codes: 0 done; 1 a step or check failed (state kept, rollback possible);
2 invalid input or usage; 3 another run holds the lock; 4 the operator declined.
"""

app = typer.Typer(
    name="ocsscale",
    help=HELP,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ocsscale {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Path = typer.Option(
        DEFAULT_POOL,
        "-c",
        "--config",
        envvar="OCSSCALE_POOL",
        help="The pool file (topology, profile, credentials by reference).",
        show_default=True,
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    ctx.obj = AppState(config=config)


config_cmds.register(app)
run_cmds.register(app)
report_cmd.register(app)


def _register_optional_groups() -> None:
    # The engine and the lab are independent packages; their command groups are
    # mounted here so `ocsscale --help` lists everything in one place.
    from ..engine.cli import app as lb_app
    from ..lab.cli import app as lab_app

    app.add_typer(lb_app, name="lb", help="The bundled load-balancer engine.")
    app.add_typer(lab_app, name="lab", help="A rehearsal lab of the whole topology.")


_register_optional_groups()


def main() -> None:
    try:
        app(standalone_mode=True)
    except OcsscaleError as exc:
        sys.exit(render_error(exc))


if __name__ == "__main__":
    main()
