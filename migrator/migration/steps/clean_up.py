"""clean-up: rocksmq.path and its _meta_kv removed, after the verified backup."""

from __future__ import annotations

from migrator.errors import Refused
from migrator.migration.steps.backup import backup_dir, rocksmq_path
from migrator.migration.steps.base import RunContext


def cleanup(ctx: RunContext) -> str:
    from migrator import rocksmq

    # Never without the backup this run started once its first stop cut clients off (the plan
    # refuses cleanup without backup; this refuses too, should the playbook have changed).
    cut_off_at = ctx.journal.marks.clients_off_at
    if cut_off_at is None:  # the first stop marks it: without it no backup can be shown to be recent enough
        raise Refused("the journal does not say when clients were cut off: no backup can be shown to hold "
                      "every message, so rocksmq.path is kept")
    report = rocksmq.clean(rocksmq_path(ctx), backup_dir=backup_dir(ctx) if ctx.playbook.migration.backup else None,
                           config_dir=ctx.playbook.config.dir, not_before=cut_off_at)
    return f"removed {', '.join(report.removed)} ({report.bytes_freed} bytes)"
