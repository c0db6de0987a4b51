"""verify: the post-migration checks on their own (cron, CI): read-only but for one probe insert."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.context import Environment
from migrator.migration.journal import Journal, RunStatus
from migrator.mq import Mq
from migrator.verbs.deployment import (
    open_deployment,
    recorded_plan,
    require_journal,
    run_context,
)


def verify(env: Environment, playbook_path: Path) -> dict[str, Any]:
    from migrator.errors import BadInput, NotRolledBack
    from migrator.migration.steps import verify as checks
    from migrator.migration.steps.pipeline import snapshot_step
    from migrator.migration.writes import wait_for_write_state
    from migrator.milvus.client import Snapshot

    deployment = open_deployment(env, playbook_path)
    journal = require_journal(deployment, "verify against")
    plan = recorded_plan(journal)
    with deployment.held():
        # Checks keep their scratch facts (the NATS port) in a journal that is never saved.
        scratch = Journal.scratch_of(journal)
        ctx = run_context(env, deployment, plan, scratch, dry_run=True)
        effective_mq = ctx.effective().mq_type()
        result: dict[str, Any] = {"mq_type_configured": effective_mq, "checks": []}
        if effective_mq == Mq.NATSMQ:
            result["checks"].append(checks.check_nats(ctx))
        with ctx.milvus() as milvus:
            current = milvus.snapshot(deadline_s=ctx.deadlines.verify_s)
            result["checks"].append(f"{len(current.collections)} collections answer; "
                                    f"{sum(1 for c in current.collections if c.loaded)} loaded ones a Strong count")
            if not bool(ctx.effective().get("quotaAndLimits.limitWriting.forceDeny").value):
                milvus.ensure_probe()
                _, probe_id = wait_for_write_state(milvus, denied=False, deadline_s=ctx.deadlines.deny_s)
                if not milvus.probe_visible(probe_id, deadline_s=ctx.deadlines.verify_s):
                    raise NotRolledBack("a probe insert was accepted but a Strong query does not see it")
                milvus.drop_probe()
                result["checks"].append("a probe insert is visible to a Strong query")
        if journal.status == RunStatus.DONE:
            held_by = snapshot_step(plan.gate)
            recorded = journal.recall(held_by.step_id, "snapshot")
            if recorded is None:
                raise BadInput("the journal says the migration is done but holds no snapshot of its collections",
                               hint="`status` shows the run; a journal edited by hand cannot be verified against")
            before = Snapshot.from_dict(recorded)
            missing = sorted({c.key for c in before.collections} - {c.key for c in current.collections})
            result["collections_missing"] = missing
            # Stored rows include deleted ones, which compaction lowers later: comparing today's live
            # rows with those would cry wolf.
            if held_by.live_rows:
                result["rows_below_migration_snapshot"] = [
                    f"{c.key}: {c.rows} at migration, now {now.rows}" for c in before.collections
                    for now in current.collections if now.key == c.key and now.rows < c.rows]
            else:
                result["checks"].append("rows not compared with the migration's: it recorded datacoord's stored "
                                        "rows (deleted rows included, lowered by compaction), not live rows")
        result["ok"] = not result.get("rows_below_migration_snapshot") and not result.get("collections_missing")
        return result
