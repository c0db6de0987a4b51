"""`milvus-migrate sandbox up|seed|status|down`: a real Milvus 2.3.5 on this machine."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    sandbox = typer.Typer(help="A real Milvus 2.3.5 on this machine, for demos and tests.", no_args_is_help=True)
    app.add_typer(sandbox, name="sandbox")
