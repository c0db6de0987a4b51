"""backup and clean-up of rocksmq.path (and its _meta_kv sibling), after a move to NATS."""

from __future__ import annotations

from pathlib import Path

from migrator.steps.base import RunContext


def _rocksmq_path(ctx: RunContext) -> Path:
    return ctx.playbook.host_path(str(ctx.effective().get("rocksmq.path").value))


def backup_dir(ctx: RunContext) -> Path:
    assert ctx.playbook.migration.backup_dir is not None  # the planner refuses backup without a dir
    return ctx.playbook.migration.backup_dir / ctx.journal.data["run_id"]


def backup(ctx: RunContext) -> str:
    from migrator import rocksmq

    # Milvus runs on NATS now and no longer writes rocksmq.path: a streamed copy is consistent.
    manifest = rocksmq.create_backup(_rocksmq_path(ctx), backup_dir(ctx), milvus_running=ctx.runtime.running())
    ctx.journal.remember("backup", dir=str(backup_dir(ctx)))
    return f"backed up {len(manifest.files)} files ({manifest.mode}) to {backup_dir(ctx)}"


def cleanup(ctx: RunContext) -> str:
    from migrator import rocksmq

    report = rocksmq.clean(_rocksmq_path(ctx), backup_dir=backup_dir(ctx) if ctx.playbook.migration.backup else None,
                           force_without_backup=not ctx.playbook.migration.backup,
                           config_dir=ctx.playbook.config.dir)
    return f"removed {', '.join(report.removed)} ({report.bytes_freed} bytes)"
