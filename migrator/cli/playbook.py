"""`milvus-migrate playbook check FILE`: validate a playbook and say what it describes."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    playbook_app = typer.Typer(help="Work with playbooks (one YAML file per deployment).", no_args_is_help=True)
    app.add_typer(playbook_app, name="playbook")

    @playbook_app.command("check")
    def check_command(
        ctx: typer.Context,
        file: Path = typer.Argument(..., help="The playbook to validate."),
    ) -> None:
        """Validate a playbook against the schema (errors name the field and line) and summarize it."""
        from migrator.cli.render import render_playbook
        from migrator.verbs import playbook as verbs

        env = ctx.obj
        data = verbs.check(env, file)
        env.emit(data, render_playbook(data))
