"""`milvus-migrate inspect rocksmq PATH`: what is in RocksMQ, and whether NATS suits that traffic."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from migrator.context import Environment


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def render_stats(stats, advice) -> str:  # noqa: ANN001 - RocksmqStats, Advice (imported lazily)
    estimate = "" if stats.exact else " (estimated; --deep for exact counts)"
    lines = [
        f"RocksMQ {stats.path} (+ {stats.meta_path.name})",
        f"  on disk: data {_size(stats.data_bytes_on_disk)}, meta {_size(stats.meta_bytes_on_disk)}",
        f"  topics: {len(stats.topics)}, messages: {stats.messages}{estimate}, payload bytes: {_size(stats.bytes)}",
        f"  oldest: {stats.oldest_time or '-'}  newest: {stats.newest_time or '-'}",
        "  sizes: " + ", ".join(f"{name} {count}" for name, count in stats.histogram.messages.items()),
        "",
        f"  {'topic':<36} {'messages':>10} {'bytes':>10}  {'newest':<26} unconsumed",
    ]
    for topic in stats.topics:
        unconsumed = "-" if topic.unconsumed is None else str(topic.unconsumed)
        newest = topic.newest_time.isoformat(timespec="seconds") if topic.newest_time else "-"
        lines.append(f"  {topic.name:<36} {topic.messages:>10} {_size(topic.bytes):>10}  {newest:<26} {unconsumed}")
    lines += ["", "Advice: " + advice.paragraph]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    inspect_app = typer.Typer(help="Look inside a message queue, read-only.", no_args_is_help=True)
    app.add_typer(inspect_app, name="inspect")

    @inspect_app.command("rocksmq")
    def inspect_rocksmq(
        ctx: typer.Context,
        path: Path = typer.Argument(..., help="rocksmq.path (its _meta_kv sibling is read too)."),
        deep: bool = typer.Option(False, "--deep", help="Scan every message: exact counts and histogram."),
        etcd: Optional[str] = typer.Option(None, "--etcd", help="etcd URL (http://host:2379): count unconsumed messages."),
        etcd_root: str = typer.Option("by-dev", "--etcd-root", help="etcd.rootPath of the Milvus instance."),
    ) -> None:
        """Topics, messages, bytes, age and size histogram of a RocksMQ, with NATS advice. Safe while Milvus runs."""
        from migrator.rocksmq import advice, inspect

        env: Environment = ctx.obj
        stats = inspect(path, deep=deep, etcd_url=etcd, etcd_root_path=etcd_root)
        verdict = advice(stats)
        env.emit({**stats.to_dict(), "advice": verdict.to_dict()}, render_stats(stats, verdict))
