"""snapshot: every collection's row count and load state, taken while no client can write.

Taken before FlushAll, once the restarted datanode and querynodes have replayed what the stopped
process left unflushed: on 2.3.5 a Strong count right after a FlushAll can miss the rows of a
segment being handed from growing to sealed (seen: 39 counted, 86 there).
"""

from __future__ import annotations

from migrator.migration.steps.base import RunContext


def snapshot(ctx: RunContext, step_id: str = "snapshot") -> str:
    with ctx.milvus(private=True) as milvus:
        snap = milvus.snapshot(deadline_s=ctx.deadlines.verify_s)
    ctx.journal.remember(step_id, snapshot=snap.to_dict())
    rows = sum(c.rows for c in snap.collections)
    loaded = sum(1 for c in snap.collections if c.loaded)
    return f"{len(snap.collections)} collections ({loaded} loaded), {rows} rows"
