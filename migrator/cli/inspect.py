"""`milvus-migrate inspect rocksmq PATH`: what is in RocksMQ, and whether NATS suits that traffic."""

from __future__ import annotations

from pathlib import Path

import typer

from migrator.context import Environment


def register(app: typer.Typer) -> None:
    inspect_app = typer.Typer(help="Look inside a message queue, read-only.", no_args_is_help=True)
    app.add_typer(inspect_app, name="inspect")

    @inspect_app.command("rocksmq")
    def inspect_rocksmq(
        ctx: typer.Context,
        path: Path = typer.Argument(..., help="rocksmq.path (its _meta_kv sibling is read too)."),
        deep: bool = typer.Option(False, "--deep", help="Scan every message: exact counts and histogram."),
        etcd: str | None = typer.Option(None, "--etcd", help="etcd URL (http://host:2379): count unconsumed messages."),
        etcd_root: str = typer.Option("by-dev", "--etcd-root", help="etcd.rootPath of the Milvus instance."),
    ) -> None:
        """Topics, messages, bytes, age and size histogram of a RocksMQ, with NATS advice. Safe while Milvus runs."""
        from migrator.cli.render import render_stats
        from migrator.verbs import rocksmq as verbs

        env: Environment = ctx.obj
        stats, verdict = verbs.inspect(env, path, deep=deep, etcd=etcd, etcd_root=etcd_root)
        env.emit({**stats.to_dict(), "advice": verdict.to_dict()}, render_stats(stats, verdict))
