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
from migrator.mq import Mq


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


# Once FlushAll holds, the graceful part of a stop is cut short (decision 0022): a SIGKILL then
# loses nothing. On RocksMQ a 2.3.5 graceful stop hangs (up to common.gracefulStopTimeout, 1800 s),
# and RocksDB has written every message to its log before Milvus acknowledged it: killed at once.
# On NATS it takes 0.1 s, and lets the embedded server write out what it holds for the drained check.
GRACE_AFTER_FLUSH_S = {Mq.ROCKSMQ: 0.0, Mq.NATSMQ: 0.5}


def stop(ctx: RunContext, step_id: str, *, cuts_clients: bool = False, record_positions: bool = False,
         flushed: str | None = None) -> str:
    """`cuts_clients`: the first stop of a run, where the clients' write-downtime begins.
    `record_positions`: keep the channel checkpoints as they are after this stop (a rollback proves
    later that each moved past them). `flushed`: the MQ Milvus runs on, when a FlushAll just
    completed: the graceful stop gets GRACE_AFTER_FLUSH_S of it at most."""
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
    if flushed is not None:
        deadline = min(deadline, GRACE_AFTER_FLUSH_S[Mq(flushed)])
    result = ctx.runtime.stop(deadline)
    if result.pid is None and not ctx.runtime.running():
        return "Milvus was already stopped"
    how = "stopped gracefully" if result.graceful else f"killed after a {deadline:g} s graceful-stop deadline"
    return f"Milvus {how} in {result.seconds:.1f} s"
