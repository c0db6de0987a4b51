"""`milvus-migrate sandbox up|seed|status|down`: a real Milvus 2.3.5 on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

DEFAULT_DIR = Path(".demo/sandbox")
DirOption = typer.Option(DEFAULT_DIR, "--dir", help="Sandbox directory (configs, data, logs, playbook).")


def register(app: typer.Typer) -> None:
    sandbox = typer.Typer(help="A real Milvus 2.3.5 on this machine, for demos and tests.", no_args_is_help=True)
    app.add_typer(sandbox, name="sandbox")

    @sandbox.command("up")
    def up_command(
        ctx: typer.Context,
        dir: Path = DirOption,
        mq: Optional[str] = typer.Option(None, "--mq", help="rocksmq (default) or natsmq; only for a new sandbox."),
        proxy_port: Optional[int] = typer.Option(None, "--proxy-port", min=1, max=65535),
        metrics_port: Optional[int] = typer.Option(None, "--metrics-port", min=1, max=65535),
        nats_port: Optional[int] = typer.Option(None, "--nats-port", min=1, max=65535),
        timeout: float = typer.Option(240.0, "--timeout", help="Seconds to wait for Milvus to serve."),
    ) -> None:
        """Start a sandbox Milvus (creating it on first use) and wait until it serves."""
        from migrator.errors import BadInput
        from migrator.sandbox import lifecycle

        if mq not in (None, "rocksmq", "natsmq"):
            raise BadInput(f"--mq {mq}: must be rocksmq or natsmq")
        env = ctx.obj
        info = lifecycle.up(env, dir, mq=mq, proxy_port=proxy_port, metrics_port=metrics_port,
                            nats_port=nats_port, start_timeout_s=timeout)
        env.emit(info.as_dict(), _render(info))

    @sandbox.command("seed")
    def seed_command(ctx: typer.Context, dir: Path = DirOption) -> None:
        """Create two databases with several collections of deterministic data."""
        from migrator.sandbox import lifecycle, seed

        env = ctx.obj
        layout, state = lifecycle.load(dir)
        counts = seed.seed(env, f"http://127.0.0.1:{state.ports['proxy']}")
        lines = [f"{key:32} {rows:>7} rows{'' if loaded else '  (not loaded)'}" for key, (rows, loaded) in counts.items()]
        env.emit({k: {"rows": r, "loaded": lo} for k, (r, lo) in counts.items()}, "\n".join(lines))

    @sandbox.command("status")
    def status_command(ctx: typer.Context, dir: Path = DirOption) -> None:
        """Running or not, pid, uri, and the mq type from the config and from the log."""
        from migrator.sandbox import lifecycle

        env = ctx.obj
        info = lifecycle.status(env, dir)
        env.emit(info.as_dict(), _render(info))

    @sandbox.command("down")
    def down_command(
        ctx: typer.Context,
        dir: Path = DirOption,
        timeout: float = typer.Option(15.0, "--timeout", help="Seconds after SIGTERM before SIGKILL."),
    ) -> None:
        """Stop the sandbox: SIGTERM, SIGKILL after --timeout, then prove the process is gone."""
        from migrator.sandbox import lifecycle

        env = ctx.obj
        result = lifecycle.down(env, dir, timeout_s=timeout)
        if result.pid is None:
            text = f"sandbox in {dir} was not running"
        else:
            how = "stopped" if result.graceful else f"killed after {timeout:.0f} s"
            text = f"sandbox pid {result.pid} {how} in {result.seconds:.1f} s; process gone"
        env.emit({"pid": result.pid, "graceful": result.graceful, "seconds": round(result.seconds, 2)}, text)


def _render(info) -> str:
    rows = [
        ("running", f"yes (pid {info.pid})" if info.running else "no"),
        ("uri", info.uri),
        ("config", str(info.config)),
        ("logs", str(info.log_dir)),
        ("playbook", str(info.playbook)),
    ]
    if info.mq_config is not None or info.mq_log is not None:
        rows.append(("mq (config)", str(info.mq_config)))
        rows.append(("mq (log)", str(info.mq_log or "-")))
    return "\n".join(f"{name:12} {value}" for name, value in rows)
