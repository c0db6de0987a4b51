"""confirm-mq: this start's log proves Milvus runs on the expected MQ (`try to init mq` and the MQ's own
success line); for NATS its store's jetstream directory exists too."""

from __future__ import annotations

import time

from migrator.errors import NotRolledBack
from migrator.migration.steps.base import RunContext
from migrator.migration.stores import NATS_STORE_DIR
from migrator.milvus.logs import Position, wait_for_mq
from migrator.mq import Mq


def confirm_mq(ctx: RunContext, mq: str, start_step: str) -> str:
    log_mark = ctx.journal.recall(start_step, "log_mark")
    nats_mark = ctx.journal.recall(start_step, "nats_log_mark")
    follower = ctx.runtime.log_follower(log_mark)
    try:
        evidence = wait_for_mq(
            follower, mq, time.monotonic() + ctx.deadlines.confirm_s,
            still_running=ctx.runtime.running,
            nats_log=Position(**nats_mark) if nats_mark else None,
            logger=ctx.env.log,
        )
    finally:
        follower.close()
    if mq == Mq.NATSMQ:
        store = ctx.playbook.host_path(str(ctx.effective().get(NATS_STORE_DIR).value))
        if not (store / "jetstream").is_dir():
            raise NotRolledBack(f"Milvus logged natsmq but {store / 'jetstream'} does not exist")
    # Kept with the start it proves: verify reads the real port (natsmq.server.port may be -1).
    ctx.journal.remember(start_step, nats_port=evidence.nats_port, init_line=evidence.init_line)
    return f"log proves mqType={evidence.mq_type}"
