"""clean-up: rocksmq.path and its _meta_kv removed, after the verified backup."""

from __future__ import annotations

from migrator.migration.steps.backup import backup_dir, rocksmq_path
from migrator.migration.steps.base import RunContext


def cleanup(ctx: RunContext) -> str:
    from migrator import rocksmq

    report = rocksmq.clean(rocksmq_path(ctx), backup_dir=backup_dir(ctx) if ctx.playbook.migration.backup else None,
                           force_without_backup=not ctx.playbook.migration.backup,
                           config_dir=ctx.playbook.config.dir)
    return f"removed {', '.join(report.removed)} ({report.bytes_freed} bytes)"
