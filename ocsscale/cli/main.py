"""`ocsscale`: the entry point. Each command group lives in its own module and
registers itself here (the engine's and the lab's when one of their commands
runs); this module only wires them and renders errors."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import OcsscaleError, UsageError
from . import answer_cmd, config_cmds, report_cmd, run_cmds
from .crash import report_interrupted, report_unexpected
from .render import render_error
from .state import CONFIG_HELP, DEFAULT_POOL, AppState, accepts_config

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
2 invalid input or usage; 3 another run holds the lock (or another copy the run
lease); 4 the operator declined; 70 an internal error (a bug: its traceback is
in .ocsscale/debug.log next to the pool file, or ~/.cache/ocsscale/debug.log);
130 interrupted (Ctrl-C).
"""

try:  # the Click exceptions (usage errors, --help, Exit) that Click itself renders
    from typer import TyperException as _ClickError  # Typer with Click built in
except ImportError:  # older Typer on Click
    from click import ClickException as _ClickError  # type: ignore[no-redef]

_CLICK_FLOW = (typer.Exit, typer.Abort, _ClickError)


#: Command groups of independent packages, imported only when one of their commands
#: runs: `ocsscale check` needs neither the engine nor the lab. The lab is a sibling
#: package (`ocsscale_lab`) the product never imports: named here, mounted when present.
_LAZY_GROUPS = {
    "lb": ("ocsscale.engine.cli", "The bundled load-balancer engine."),
    "lab": ("ocsscale_lab.cli", "A rehearsal lab of the whole topology."),
}

#: How to get a lazy group whose package may be left out of an install.
_INSTALL_HINTS = {
    "lab": "pip install 'ocsscale[lab]' (in a checkout: make venv)",
}


def _import_group(name: str, module: str) -> Any:
    """The group's module; a package left out of this install is a usage error that
    says how to install it (a module missing inside it is a bug, and stays one)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        hint = _INSTALL_HINTS.get(name)
        top = module.partition(".")[0]
        if hint is None or exc.name not in (top, module):
            raise
        raise UsageError(f"`ocsscale {name}` is not installed here: {hint}") from None


class _Root(TyperGroup):
    """The root command: mounts the lazy groups, and every error of every command
    ends here as one message."""

    _listing = False  # True while --help lists the commands

    def list_commands(self, ctx: typer.Context) -> list[str]:
        names = super().list_commands(ctx)
        return names + [name for name in _LAZY_GROUPS if name not in names]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:
        lazy = _LAZY_GROUPS.get(cmd_name)
        if lazy is not None and cmd_name not in self.commands:
            module, help_text = lazy
            if self._listing:  # its name and one line are enough: no import
                return TyperGroup(name=cmd_name, help=help_text)
            group = typer.main.get_command(_import_group(cmd_name, module).app)
            group.help = help_text
            self.add_command(group, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: typer.Context, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except _CLICK_FLOW:
            raise
        except OcsscaleError as exc:
            raise typer.Exit(render_error(exc)) from None
        except KeyboardInterrupt:
            raise typer.Exit(report_interrupted()) from None
        except Exception as exc:  # a bug: its traceback to the debug log, one line here
            state = ctx.obj if isinstance(ctx.obj, AppState) else None
            code = report_unexpected(exc, state.config if state else None, ctx.invoked_subcommand)
            raise typer.Exit(code) from None


app = typer.Typer(
    name="ocsscale",
    cls=_Root,
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
        help=CONFIG_HELP,
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
answer_cmd.register(app)
for _info in app.registered_commands:  # every command that reads the pool file
    _info.callback = accepts_config(_info.callback)


def main() -> None:
    try:
        app(standalone_mode=True)
    except OcsscaleError as exc:
        sys.exit(render_error(exc))
    except KeyboardInterrupt:
        sys.exit(report_interrupted())
    except Exception as exc:  # outside any command (the command line itself)
        sys.exit(report_unexpected(exc, None, None))


if __name__ == "__main__":
    main()
