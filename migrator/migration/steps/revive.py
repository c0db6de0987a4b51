"""revive: the rollback needs the target running behind the gate to flush what clients wrote to it.

Clients reached the target and then something failed; Milvus may have died with it (killed, out
of memory). What the target acknowledged is in its MQ: it must run once more, behind the closed
gate, so that a FlushAll puts it into segments before the way back. When it still runs, nothing
is done; otherwise it is started, its dead sessions removed, its MQ proved from its log, and
healthz waited for, as any start of the run.
"""

from __future__ import annotations

from migrator.migration.steps import confirm_mq, expire_dead_sessions, healthy, start
from migrator.migration.steps.base import RunContext
from migrator.mq import Mq


def revive(ctx: RunContext, mq: Mq, step_id: str, *, dead_steps: tuple[str, ...]) -> str:
    """`dead_steps`: the steps that recorded the ServerIDs of the process that may have died."""
    if ctx.journal.recall(step_id, "log_mark") is None:
        if ctx.runtime.running():
            return f"Milvus still runs on {mq}"
        start.start(ctx, step_id)
    sessions = expire_dead_sessions.expire_dead_sessions(ctx, *dead_steps)
    proof = confirm_mq.confirm_mq(ctx, mq, step_id)
    health = healthy.healthy(ctx, kept_away=True)
    return f"Milvus on {mq} had stopped: started again behind the gate; {sessions}; {proof}; {health}"
