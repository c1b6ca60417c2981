"""The command line: parses and renders only; the core never imports Typer or Rich."""
