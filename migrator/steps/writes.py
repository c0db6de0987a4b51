"""deny-writes and allow-writes: forceDeny in the winning layer, each proved by a probe insert."""

from __future__ import annotations

import itertools
import time

from migrator.config import FORCE_DENY, plan_edit, write_atomic
from migrator.errors import NotRolledBack
from migrator.steps.base import RunContext

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
