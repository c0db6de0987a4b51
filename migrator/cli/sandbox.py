"""`milvus-migrate sandbox up|seed|status|down`: a real Milvus (2.3.5, or --version) on this machine."""

from __future__ import annotations

from pathlib import Path

import typer

from migrator.mq import Mq

DEFAULT_DIR = Path(".demo/sandbox")
DirOption = typer.Option(DEFAULT_DIR, "--dir", help="Sandbox directory (configs, data, logs, playbook).")


def register(app: typer.Typer) -> None:
    sandbox = typer.Typer(help="A real Milvus (2.3.5, or --version) on this machine, for demos and tests.",
                          no_args_is_help=True)
    app.add_typer(sandbox, name="sandbox")

    @sandbox.command("up")
    def up_command(
        ctx: typer.Context,
        dir: Path = DirOption,
        mq: str | None = typer.Option(None, "--mq", help="rocksmq (default) or natsmq; only for a new sandbox."),
        version: str | None = typer.Option(
            None, "--version", help="The Milvus release (a `milvus` wheel on PyPI, e.g. 2.3.0); default the "
                                    "installed 2.3.5; only for a new sandbox."),
        proxy_port: int | None = typer.Option(None, "--proxy-port", min=1, max=65535),
        metrics_port: int | None = typer.Option(None, "--metrics-port", min=1, max=65535),
        nats_port: int | None = typer.Option(None, "--nats-port", min=1, max=65535),
        timeout: float = typer.Option(240.0, "--timeout", help="Seconds to wait for Milvus to serve."),
    ) -> None:
        """Start a sandbox Milvus (creating it on first use) and wait until it serves."""
        from migrator.cli.render import render_sandbox
        from migrator.errors import BadInput
        from migrator.verbs import sandbox as verbs

        if mq not in (None, Mq.ROCKSMQ, Mq.NATSMQ):
            raise BadInput(f"--mq {mq}: must be rocksmq or natsmq")
        env = ctx.obj
        info = verbs.up(env, dir, mq=mq, version=version, proxy_port=proxy_port, metrics_port=metrics_port,
                            nats_port=nats_port, start_timeout_s=timeout)
        env.emit(info.to_dict(), render_sandbox(info))

    @sandbox.command("seed")
    def seed_command(ctx: typer.Context, dir: Path = DirOption) -> None:
        """Create two databases with several collections of deterministic data."""
        from migrator.cli.render import render_seed
        from migrator.verbs import sandbox as verbs

        env = ctx.obj
        counts = verbs.seed(env, dir)
        env.emit({k: {"rows": r, "loaded": lo} for k, (r, lo) in counts.items()}, render_seed(counts))

    @sandbox.command("status")
    def status_command(ctx: typer.Context, dir: Path = DirOption) -> None:
        """Running or not, pid, uri, and the mq type from the config and from the log."""
        from migrator.cli.render import render_sandbox
        from migrator.verbs import sandbox as verbs

        env = ctx.obj
        info = verbs.status(env, dir)
        env.emit(info.to_dict(), render_sandbox(info))

    @sandbox.command("down")
    def down_command(
        ctx: typer.Context,
        dir: Path = DirOption,
        timeout: float = typer.Option(15.0, "--timeout", help="Seconds after SIGTERM before SIGKILL."),
    ) -> None:
        """Stop the sandbox: SIGTERM, SIGKILL after --timeout, then prove the process is gone."""
        from migrator.verbs import sandbox as verbs

        env = ctx.obj
        from migrator.cli.render import render_sandbox_down

        result = verbs.down(env, dir, timeout_s=timeout)
        env.emit({"pid": result.pid, "graceful": result.graceful, "seconds": round(result.seconds, 2)},
                 render_sandbox_down(dir, result, timeout))

