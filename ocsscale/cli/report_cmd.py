"""`report`: the evidence report of a pool, from its journal (read-only)."""

from __future__ import annotations

import inspect
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from .. import report
from ..errors import UsageError
from .render import handle_errors
from .state import app_state


def report_cmd(
    ctx: typer.Context,
    fmt: str = typer.Option(
        "html", "--format", "-f", help="html (one self-contained page), md or json."
    ),
    output: Path | None = typer.Option(
        None,
        "-o",
        "--output",
        help="Where to write it ('-': standard output). "
        "Default: .ocsscale/report.FORMAT next to the pool file.",
        dir_okay=False,
    ),
) -> None:
    """The migration's evidence, as one page: the pool and a picture of its
    topology, every phase and step with its timing, changes, errors and
    evidence, the distribution test as a chart, the failover detection times,
    the client load's failures per phase on a timeline, the DNS change (old and
    new values and TTLs) and what rollback would undo now.

    Writes only the report and contacts nothing: it reads the journal in .ocsscale/
    next to the pool file (read-only, also while a run is going on) and the
    pool file; when the pool file no longer validates, it reports what the
    journal holds. The HTML page is self-contained (inline styles and
    pictures, no script, nothing fetched); evidence blocks over 20 000
    characters are cut, and say so. The file is written whole or not at all.

      ocsscale report                         .ocsscale/report.html

      ocsscale report --format md -o migration.md

      ocsscale report --format json -o - | jq '.failover'

    Exit codes: 0 written; 2 no pool file and no journal, the journal is
    unreadable or missing or empty beside what a run leaves, an unknown
    format, or the output's directory does not exist.
    """
    if fmt not in report.FORMATS:
        raise UsageError(f"no report format {fmt} (formats: {', '.join(report.FORMATS)})")
    sources = report.read_sources(app_state(ctx).config)
    model = report.build(sources)
    text = report.render(model, fmt)
    if output is not None and str(output) == "-":
        typer.echo(text, nl=False)
        return
    if output is None:
        output = sources.state_dir / f"report.{fmt}"
    # in the state directory (by default, or named), owner-only like the journal
    private = output.resolve().parent == sources.state_dir.resolve()
    report.write_atomic(output, text, private=private)
    steps = len(model["steps"])
    Console(highlight=False, soft_wrap=True).print(
        Text(f"report of {model['pool_name']} ({steps} step(s)) written to {output}")
    )


def register(app: typer.Typer) -> None:
    app.command("report", help=inspect.cleandoc(report_cmd.__doc__ or ""))(
        handle_errors(report_cmd)
    )
