"""flush-all and snapshot: make everything durable, then record what must be there afterwards."""

from __future__ import annotations

from migrator.steps.base import RunContext


def flush_all(ctx: RunContext) -> str:
    with ctx.milvus() as milvus:
        seconds = milvus.flush_all(deadline_s=ctx.deadlines.flush_s)
    return f"FlushAll complete in {seconds:.1f} s"


def snapshot(ctx: RunContext) -> str:
    # Taken under forceDeny and after FlushAll, so the counts cannot move before the switch.
    with ctx.milvus() as milvus:
        snap = milvus.snapshot(deadline_s=ctx.deadlines.verify_s)
    ctx.journal.remember("snapshot", snapshot=snap.as_dict())
    rows = sum(c.rows for c in snap.collections)
    loaded = sum(1 for c in snap.collections if c.loaded)
    return f"{len(snap.collections)} collections ({loaded} loaded), {rows} rows"
