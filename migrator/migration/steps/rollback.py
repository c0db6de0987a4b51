"""The rollback's own steps: the original config back (deny kept), and the counts re-checked.

The rest of a rollback reuses the forward steps (start, confirm-mq, ...) under rollback ids;
steps/pipeline.py puts them in order.
"""

from __future__ import annotations

from migrator.migration.steps.base import RunContext
from migrator.migration.steps.deny_writes import set_force_deny
from migrator.migration.steps.rewrite_config import restore_original_config
from migrator.migration.steps.verify import compare_counts, reprove_deny
from migrator.milvus.client import Snapshot


def restore(ctx: RunContext) -> str:
    if ctx.runtime.running():
        ctx.runtime.stop(getattr(ctx.playbook.runtime, "stop_timeout_s", ctx.deadlines.stop_s))
    restored = restore_original_config(ctx)
    set_force_deny(ctx, True)  # counts are checked before writes resume
    return "original config restored" if restored else "config was never rewritten"


def check_counts(ctx: RunContext) -> str:
    reprove_deny(ctx)
    raw = ctx.journal.recall("snapshot", "snapshot")
    if raw is None:
        return "no snapshot was taken before the failure; nothing to compare"
    counts = compare_counts(ctx, Snapshot.from_dict(raw))
    return f"counts equal the snapshot ({len(counts['collections'])} collections)"
