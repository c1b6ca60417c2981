"""Placeholder until its owner lands the command group."""

import typer

app = typer.Typer(no_args_is_help=True)
