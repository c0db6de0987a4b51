"""clean-up: rocksmq.path and its _meta_kv removed, after the verified backup."""

from __future__ import annotations

from migrator.migration.steps.backup import backup_dir, rocksmq_path
from migrator.migration.steps.base import RunContext


def cleanup(ctx: RunContext) -> str:
    from migrator import rocksmq

    # Never without the backup this run took after writes were denied (the plan refuses
    # cleanup without backup; this refuses too, should the playbook have changed).
    report = rocksmq.clean(rocksmq_path(ctx), backup_dir=backup_dir(ctx) if ctx.playbook.migration.backup else None,
                           config_dir=ctx.playbook.config.dir,
                           not_before=ctx.journal.marks.clients_off_at)
    return f"removed {', '.join(report.removed)} ({report.bytes_freed} bytes)"
