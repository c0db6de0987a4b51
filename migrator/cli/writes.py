"""`milvus-migrate writes deny|allow`: deny or allow writes now, proved by a probe insert."""

from __future__ import annotations

from pathlib import Path

import typer

from migrator.context import Environment

EXAMPLES = """Examples:

\b
  milvus-migrate writes allow -p playbooks/systemd.yaml    # after a crash left writes denied
  milvus-migrate writes deny -p playbooks/systemd.yaml --yes --output json
"""


def register(app: typer.Typer) -> None:
    writes_app = typer.Typer(help="Deny or allow Milvus's writes now (forceDeny where it wins, proved by a probe).",
                             no_args_is_help=True)
    app.add_typer(writes_app, name="writes")

    def run(ctx: typer.Context, playbook: Path, yes: bool, *, deny: bool) -> None:
        from migrator.cli.render import render_writes
        from migrator.verbs.writes import writes

        env: Environment = ctx.obj
        result = writes(env, playbook, deny=deny, yes=yes)
        env.emit(result, render_writes(result))

    @writes_app.command("deny", epilog=EXAMPLES)
    def deny_command(
        ctx: typer.Context,
        playbook: Path = typer.Option(..., "--playbook", "-p", help="The deployment's playbook."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    ) -> None:
        """forceDeny=true where it wins; done once a probe insert is rejected."""
        run(ctx, playbook, yes, deny=True)

    @writes_app.command("allow", epilog=EXAMPLES)
    def allow_command(
        ctx: typer.Context,
        playbook: Path = typer.Option(..., "--playbook", "-p", help="The deployment's playbook."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    ) -> None:
        """forceDeny=false where it wins; done once a probe insert goes through and a Strong query sees it."""
        run(ctx, playbook, yes, deny=False)
