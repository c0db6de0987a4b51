"""move-*-aside: the MQ about to start gets an empty store (migration/stores.py says why)."""

from __future__ import annotations

from migrator.migration.steps.base import RunContext
from migrator.migration.stores import move_aside, store_of


def move_store_aside(ctx: RunContext, mq: str, step_id: str) -> str:
    store = store_of(mq, ctx.effective(), ctx.playbook.host_path)
    moved = move_aside(store, ctx.journal.run_id)
    ctx.journal.remember(step_id, moved=moved)
    if not moved:
        return f"the {mq} store is empty: {', '.join(str(p) for p in store.paths)}"
    return "moved aside (kept, not deleted): " + "; ".join(f"{a} -> {b}" for a, b in moved)
