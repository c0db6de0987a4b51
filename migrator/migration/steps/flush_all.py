"""flush-all: FlushAll and wait for its state, so everything acknowledged is in sealed segments."""

from __future__ import annotations

from migrator.migration.steps.base import RunContext


def flush_all(ctx: RunContext) -> str:
    with ctx.milvus() as milvus:
        seconds = milvus.flush_all(deadline_s=ctx.deadlines.flush_s)
    return f"FlushAll complete in {seconds:.1f} s"
