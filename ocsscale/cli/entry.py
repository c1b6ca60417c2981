"""The `ocsscale` command's entry point: `ocsscale lb ...` goes straight to the
engine's commands, everything else to the full CLI (cli/main.py).

The tool itself runs `ocsscale lb api GET /status --socket S` on the LB host at
every poll of the farm (the failover drill's detection time, every wait for
members up): that plumbing command needs only the standard library (0.03 s),
and the engine's other commands need neither the pool-file model, the runner
nor the playbooks (0.2 s instead of 0.6 s). `python -m ocsscale.engine` comes in
here too, so the engine's errors are rendered as every other (render.py).
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["lb"]:
        run_lb(sys.argv[2:])
    from .main import main as full

    full()


def run_lb(args: list[str], prog_name: str = "ocsscale lb") -> None:
    """The engine's commands (never returns): the plumbing `api` at once, the rest
    through the engine's Typer app, its expected errors rendered here."""
    from ..engine.api_cli import fast_path

    code = fast_path(args)
    if code is not None:
        sys.exit(code)
    import typer

    from ..engine.cli import app
    from ..errors import OcsscaleError

    try:
        typer.main.get_command(app)(args=args, prog_name=prog_name, standalone_mode=True)
    except OcsscaleError as exc:
        from .render import render_error

        sys.exit(render_error(exc))
    except KeyboardInterrupt:
        from .crash import report_interrupted

        sys.exit(report_interrupted())
    except Exception as exc:  # a bug: the full CLI's crash report (debug log, exit 70)
        from .crash import report_unexpected

        sys.exit(report_unexpected(exc, None, None))
    sys.exit(0)  # standalone_mode exits by itself; never fall through to the full CLI
