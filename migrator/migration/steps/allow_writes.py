"""allow-writes: forceDeny back to the value found; a probe insert goes through and a Strong query sees it."""

from __future__ import annotations

import time

from migrator.errors import NotRolledBack
from migrator.migration.steps.base import RunContext
from migrator.migration.steps.deny_writes import set_force_deny, wait_for_write_state


def allow_writes(ctx: RunContext) -> str:
    original = ctx.plan.force_deny_original
    set_force_deny(ctx, original)
    if original:
        ctx.journal.mark("allow_at", time.time())
        return "forceDeny left true, as it was found: writes stay denied"
    with ctx.milvus() as milvus:
        milvus.ensure_probe()
        seconds, probe_id = wait_for_write_state(ctx, milvus, denied=False, deadline_s=ctx.deadlines.deny_s * 2)
        ctx.journal.mark("allow_at", time.time())
        if not milvus.probe_visible(probe_id, deadline_s=ctx.deadlines.verify_s):
            raise NotRolledBack(f"probe {probe_id} was accepted but a Strong query does not see it")
        milvus.drop_probe()
    return f"writes allowed; a probe insert went through after {seconds:.1f} s and a Strong query sees it"
