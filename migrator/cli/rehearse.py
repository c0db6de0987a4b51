"""rehearse: migrate a throwaway copy of the deployment on this host and measure it (thin: parse, call, render)."""

from __future__ import annotations

from pathlib import Path

import typer

from migrator.cli.migrate import PlaybookOption, SetOption, TargetOption

REHEARSE_EXAMPLES = """Examples:

\b
  milvus-migrate rehearse -p playbooks/systemd.yaml             # copy, migrate the copy, measure, delete
  milvus-migrate rehearse -p playbooks/systemd.yaml --dir /data/rehearsal   # the copy there
  milvus-migrate rehearse -p playbooks/kubernetes.yaml --binary ./milvus    # a Milvus binary of the pod's version

\b
Production is only read. Exit: 0 the copy migrated and nothing a client wrote was lost,
1 the copy's migration failed (the report says where), 2 bad input, 3 refused (no room,
a copy this tool cannot make), 130 interrupted (the next run removes the copy).
"""


def register(app: typer.Typer) -> None:
    @app.command("rehearse", epilog=REHEARSE_EXAMPLES)
    def rehearse_command(
        ctx: typer.Context,
        playbook: Path = PlaybookOption,
        to: str | None = TargetOption,
        set_: list[str] | None = SetOption,
        copy_dir: Path | None = typer.Option(
            None, "--dir", help="Where the copy goes (default <state_dir>/rehearsal; on the data's file system "
                                "its write-once files are hard-linked, elsewhere copied)."),
        binary: Path | None = typer.Option(
            None, "--binary", help="The Milvus binary the copy runs (default: the one the playbook's "
                                   "process or unit runs)."),
    ) -> None:
        """Migrate a private copy of the deployment with the real apply; report what a client measured."""
        from migrator.cli.render import render_rehearsal
        from migrator.verbs.plan import parse_sets
        from migrator.verbs.rehearse import rehearse

        env = ctx.obj
        report = rehearse(env, playbook, target=to, sets=parse_sets(set_ or []), copy_dir=copy_dir, binary=binary)
        env.emit(report, render_rehearsal(report))
