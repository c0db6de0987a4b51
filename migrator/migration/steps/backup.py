"""backup: rocksmq.path and its _meta_kv sibling, with a manifest, after a move to NATS."""

from __future__ import annotations

from pathlib import Path

from migrator.migration.steps.base import RunContext
from migrator.util.files import child_path


def rocksmq_path(ctx: RunContext) -> Path:
    return ctx.playbook.host_path(str(ctx.effective().get("rocksmq.path").value))


def backup_dir(ctx: RunContext) -> Path:
    assert ctx.playbook.migration.backup_dir is not None  # the planner refuses backup without a dir
    return child_path(ctx.playbook.migration.backup_dir, ctx.journal.run_id, what="run_id")


def backup(ctx: RunContext) -> str:
    from migrator import rocksmq

    # Milvus runs on NATS now and no longer writes rocksmq.path: a streamed copy is consistent.
    manifest = rocksmq.create_backup(rocksmq_path(ctx), backup_dir(ctx), milvus_running=ctx.runtime.running())
    ctx.journal.remember("backup", dir=str(backup_dir(ctx)))
    return f"backed up {len(manifest.files)} files ({manifest.mode}) to {backup_dir(ctx)}"
