"""The typer layer: parse, call a verb, render, exit. `main` is the console entry point."""

from migrator.cli.app import app, main

__all__ = ["app", "main"]
