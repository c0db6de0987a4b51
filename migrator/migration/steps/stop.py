"""stop: Milvus stopped through its runtime; SIGKILL after the deadline.

Nothing acknowledged is lost by a SIGKILL: RocksMQ and NATS persist a message before Milvus
acknowledges it, and the next start (isolated, on the same MQ) consumes and flushes it. The
running process's ServerIDs are kept first, so that its etcd sessions can be expired at the next
start (steps/expire_dead_sessions.py).
"""

from __future__ import annotations

import time

from migrator.errors import MigrateError
from migrator.migration.steps.base import RunContext
from migrator.migration.steps.expire_dead_sessions import record_server_ids
from migrator.migration.steps.verify import read_checkpoints_of


def make_probe(ctx: RunContext) -> None:
    """The collection check-writes inserts into, made while clients still work: right after a restart
    a create collection takes seconds (docs/milvus.md, "At scale"). Best effort: check-writes makes
    it otherwise."""
    from migrator.milvus.client import MilvusError

    try:
        with ctx.milvus(timeout=10.0) as milvus:
            milvus.ensure_probe(deadline_s=10.0, load=False)
    except MilvusError as error:
        ctx.env.log.warning("probe.not_made", reason=error.message)


def stop(ctx: RunContext, step_id: str, *, cuts_clients: bool = False, record_positions: bool = False) -> str:
    """`cuts_clients`: the first stop of a run, where the clients' write-downtime begins.
    `record_positions`: keep the channel checkpoints as they are after this stop (a rollback proves
    later that each moved past them)."""
    if ctx.runtime.running():
        if cuts_clients and ctx.journal.marks.clients_off_at is None:
            make_probe(ctx)
        record_server_ids(ctx, step_id)
        # Read while Milvus runs: an embedded etcd stops with it. A Milvus that only crash-loops may
        # not serve its etcd: then verify falls back to the positions of the last FlushAll.
        if record_positions and ctx.journal.recall(step_id, "checkpoints") is None:
            try:
                checkpoints = read_checkpoints_of(ctx)
            except MigrateError as error:
                ctx.env.log.warning("checkpoints.unreadable", step=step_id, reason=error.message)
            else:
                ctx.journal.remember(step_id, checkpoints={cp.vchannel: [cp.msg_id, cp.timestamp]
                                                           for cp in checkpoints})
    if cuts_clients and ctx.journal.marks.clients_off_at is None:
        ctx.journal.mark("clients_off_at", time.time())
    deadline = ctx.cap(getattr(ctx.playbook.runtime, "stop_timeout_s", ctx.playbook.migration.deadlines.stop_s))
    result = ctx.runtime.stop(deadline)
    if result.pid is None and not ctx.runtime.running():
        return "Milvus was already stopped"
    how = "stopped gracefully" if result.graceful else f"killed after a {deadline:.0f} s graceful-stop deadline"
    return f"Milvus {how} in {result.seconds:.1f} s"
