"""snapshot: every collection's row count and load state, taken under the deny after FlushAll."""

from __future__ import annotations

from migrator.migration.steps.base import RunContext


def snapshot(ctx: RunContext) -> str:
    # Taken under forceDeny and after FlushAll, so the counts cannot move before the switch.
    with ctx.milvus() as milvus:
        snap = milvus.snapshot(deadline_s=ctx.deadlines.verify_s)
    ctx.journal.remember("snapshot", snapshot=snap.to_dict())
    rows = sum(c.rows for c in snap.collections)
    loaded = sum(1 for c in snap.collections if c.loaded)
    return f"{len(snap.collections)} collections ({loaded} loaded), {rows} rows"
