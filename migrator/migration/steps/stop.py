"""stop: Milvus stopped through its runtime; SIGKILL after the deadline (nothing is lost after FlushAll)."""

from __future__ import annotations

from migrator.migration.steps.base import RunContext
from migrator.migration.steps.expire_dead_sessions import record_server_ids


def stop(ctx: RunContext) -> str:
    if ctx.runtime.running():
        record_server_ids(ctx, "stop")  # expire-dead-sessions removes exactly these after the restart
    deadline = getattr(ctx.playbook.runtime, "stop_timeout_s", ctx.deadlines.stop_s)
    result = ctx.runtime.stop(deadline)
    if result.pid is None and not ctx.runtime.running():
        return "Milvus was already stopped"
    how = "stopped gracefully" if result.graceful else f"killed after a {deadline:.0f} s graceful-stop deadline"
    return f"Milvus {how} in {result.seconds:.1f} s"
