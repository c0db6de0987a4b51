"""deny-writes: forceDeny in the winning layer, proved by a rejected probe insert.

`set_force_deny` and `wait_for_write_state` serve allow-writes and the rollback too.
"""

from __future__ import annotations

import itertools
import time

from migrator.config import FORCE_DENY, plan_edit, write_atomic
from migrator.errors import NotRolledBack
from migrator.migration.steps.base import RunContext

_probe_ids = itertools.count(int(time.time() * 1000))


class WritesNotControlled(NotRolledBack):
    """forceDeny was written but Milvus did not follow it before the deadline."""


def set_force_deny(ctx: RunContext, value: bool) -> bool:
    """Write forceDeny=value where it wins; True when the file changed."""
    edit = plan_edit(ctx.effective(), {FORCE_DENY: value})
    edit.raise_if_refused()
    if edit.changed:
        write_atomic(edit.target, edit.text)
    ctx.env.log.info("config.force_deny", value=value, file=str(edit.target), changed=edit.changed)
    return edit.changed


def wait_for_write_state(ctx: RunContext, milvus, *, denied: bool, deadline_s: float) -> tuple[float, int]:
    """Insert probes until Milvus rejects (denied=True) or accepts one; (seconds, last probe id)."""
    started = time.monotonic()
    while True:
        probe_id = next(_probe_ids)
        accepted = milvus.probe_insert(probe_id)
        if accepted != denied:
            return time.monotonic() - started, probe_id
        if time.monotonic() - started > deadline_s:
            state = "still accepted" if denied else "still rejected"
            raise WritesNotControlled(f"forceDeny={str(denied).lower()} written, but probe inserts were {state} "
                                      f"after {deadline_s:.0f} s")
        time.sleep(0.5)


def deny_writes(ctx: RunContext) -> str:
    with ctx.milvus() as milvus:
        milvus.ensure_probe()  # DDL: allowed under forceDeny too, but create it while writes flow
        set_force_deny(ctx, True)
        if "deny_at" not in ctx.journal.data.get("marks", {}):
            ctx.journal.mark("deny_at", time.time())
        seconds, _ = wait_for_write_state(ctx, milvus, denied=True, deadline_s=ctx.deadlines.deny_s)
    return f"writes denied; a probe insert was rejected after {seconds:.1f} s"
