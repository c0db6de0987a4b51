"""stop, rewrite-config, start, confirm-mq: the switch itself."""

from __future__ import annotations

import time
from pathlib import Path

from migrator.config import keep_original, plan_edit, write_atomic
from migrator.errors import NotRolledBack
from migrator.steps.base import RunContext

NATS_LOG_FILE = "natsmq.server.monitor.logFile"
NATS_STORE_DIR = "natsmq.server.storeDir"


def stop(ctx: RunContext) -> str:
    from migrator.steps.sessions import record_server_ids

    if ctx.runtime.running():
        record_server_ids(ctx, "stop")  # expire-dead-sessions removes exactly these after the restart
    deadline = getattr(ctx.playbook.runtime, "stop_timeout_s", ctx.deadlines.stop_s)
    result = ctx.runtime.stop(deadline)
    if result.pid is None and not ctx.runtime.running():
        return "Milvus was already stopped"
    how = "stopped gracefully" if result.graceful else f"killed after a {deadline:.0f} s graceful-stop deadline"
    return f"Milvus {how} in {result.seconds:.1f} s"


def rewrite_config(ctx: RunContext) -> str:
    edit = plan_edit(ctx.effective(), ctx.plan.changes)
    edit.raise_if_refused()
    if ctx.journal.recall("rewrite-config", "original_copy") is None:
        # Kept (and journaled) before the write, so a crash in between still has the original.
        copy, digest = keep_original(edit.target, ctx.state_dir / "originals" / ctx.journal.data["run_id"])
        ctx.journal.remember("rewrite-config", original_copy=str(copy), sha256=digest, target=str(edit.target))
    if edit.changed:
        write_atomic(edit.target, edit.text)
        return f"{edit.target}: {', '.join(f'{k}={v}' for k, v in edit.changes.items())}"
    return f"{edit.target} already says {ctx.plan.target_mq}"


def restore_original_config(ctx: RunContext) -> bool:
    """Put back the config file kept by rewrite-config; False when it was never replaced."""
    import hashlib

    copy = ctx.journal.recall("rewrite-config", "original_copy")
    if copy is None:
        return False
    data = Path(copy).read_bytes()
    if hashlib.sha256(data).hexdigest() != ctx.journal.recall("rewrite-config", "sha256"):
        raise NotRolledBack(f"the kept original {copy} does not match its sha256; restore it by hand")
    write_atomic(Path(ctx.journal.recall("rewrite-config", "target")), data.decode("utf-8"))
    return True


def nats_log_path(ctx: RunContext) -> Path | None:
    value = ctx.effective().get(NATS_LOG_FILE).value
    return ctx.playbook.host_path(str(value)) if value else None


def start(ctx: RunContext, step_id: str = "start") -> str:
    from dataclasses import asdict

    from migrator.logs import mark

    if ctx.runtime.running() and ctx.journal.recall(step_id, "log_mark") is not None:
        return "Milvus already started by this run"
    # Marks first: only lines written after this start prove anything.
    nats_log = nats_log_path(ctx)
    ctx.journal.remember(step_id, log_mark=ctx.runtime.log_mark(),
                         nats_log_mark=asdict(mark(nats_log)) if nats_log else None,
                         started_at=time.time())
    ctx.runtime.start()
    return "Milvus started"


def confirm_mq(ctx: RunContext, target: str | None = None, start_step: str = "start") -> str:
    from migrator.logs import Position, wait_for_mq

    target = target or ctx.plan.target_mq
    log_mark = ctx.journal.recall(start_step, "log_mark")
    nats_mark = ctx.journal.recall(start_step, "nats_log_mark")
    follower = ctx.runtime.log_follower(log_mark)
    try:
        evidence = wait_for_mq(
            follower, target, time.monotonic() + ctx.deadlines.confirm_s,
            still_running=ctx.runtime.running,
            nats_log=Position(**nats_mark) if nats_mark else None,
            logger=ctx.env.log,
        )
    finally:
        follower.close()
    if target == "natsmq":
        store = ctx.playbook.host_path(str(ctx.effective().get(NATS_STORE_DIR).value))
        if not (store / "jetstream").is_dir():
            raise NotRolledBack(f"Milvus logged natsmq but {store / 'jetstream'} does not exist")
    # Kept with the start it proves: verify reads the real port (natsmq.server.port may be -1).
    ctx.journal.remember(start_step, nats_port=evidence.nats_port, init_line=evidence.init_line)
    return f"log proves mqType={evidence.mq_type}"


def healthy(ctx: RunContext) -> str:
    return f"healthz OK after {ctx.runtime.wait_healthy(ctx.deadlines.start_s):.1f} s"
