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
        """Validate a playbook against the schema (errors name the field and line), summarize it, and
        say what must be filled in before `plan` (exit 2 then)."""
        from migrator.cli.render import render_playbook
        from migrator.errors import BadInput
        from migrator.verbs import playbook as verbs

        env = ctx.obj
        data = verbs.check(env, file)
        env.emit(data, render_playbook(data))
        missing = [f"{finding['key']}" for finding in data["findings"] if finding["level"] == "error"]
        if missing:
            raise BadInput(f"{file}: valid, but `plan` would refuse it: fill in {', '.join(missing)} (see above)")
