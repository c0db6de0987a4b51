"""rewrite-config: mq.type and the natsmq section in the winning file, the original kept first."""

from __future__ import annotations

import hashlib
from pathlib import Path

from migrator.config import keep_original, plan_edit, write_atomic
from migrator.errors import NotRolledBack
from migrator.migration.steps.base import RunContext


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
    copy = ctx.journal.recall("rewrite-config", "original_copy")
    if copy is None:
        return False
    data = Path(copy).read_bytes()
    if hashlib.sha256(data).hexdigest() != ctx.journal.recall("rewrite-config", "sha256"):
        raise NotRolledBack(f"the kept original {copy} does not match its sha256; restore it by hand")
    write_atomic(Path(ctx.journal.recall("rewrite-config", "target")), data.decode("utf-8"))
    return True
