"""start: Milvus started through its runtime, its log positions marked first (only later lines prove anything)."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from migrator.migration.steps.base import RunContext
from migrator.milvus.logs import mark

NATS_LOG_FILE = "natsmq.server.monitor.logFile"


def nats_log_path(ctx: RunContext) -> Path | None:
    """NATS's own log on this host (its failure reasons are only there), when this tool can see it."""
    value = ctx.effective().get(NATS_LOG_FILE).value
    if not value or not ctx.playbook.sees(str(value)):
        return None  # inside a container, and not on a mounted path: a host file of that name is another's
    return ctx.playbook.host_path(str(value))


def start(ctx: RunContext, step_id: str) -> str:
    if ctx.runtime.running() and ctx.journal.recall(step_id, "log_mark") is not None:
        return "Milvus already started by this run"
    # Marks first: only lines written after this start prove anything.
    nats_log = nats_log_path(ctx)
    ctx.journal.remember(step_id, log_mark=ctx.runtime.log_mark(),
                         nats_log_mark=asdict(mark(nats_log)) if nats_log else None,
                         started_at=time.time())
    ctx.runtime.start()
    return "Milvus started"
