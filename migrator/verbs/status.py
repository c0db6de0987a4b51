"""status: where the last migration stands (the journal), and what Milvus is configured to do now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.context import Environment
from migrator.migration.journal import (
    DONE,
    FAILED,
    INTERRUPTED,
    ROLLED_BACK,
    ROLLING_BACK,
    RUNNING,
)
from migrator.verbs.deployment import open_deployment, recorded_plan, run_context


def status(env: Environment, playbook_path: Path) -> dict[str, Any]:
    from migrator.config import FORCE_DENY

    deployment = open_deployment(env, playbook_path)
    journal = deployment.journal()
    result: dict[str, Any] = {"playbook": str(deployment.loaded.path), "journal": str(deployment.journal_path),
                              "lock_holder": deployment.lock.held_by_other(), "milvus_running": None}
    try:
        result["milvus_running"] = deployment.runtime.running()
    except Exception as error:  # noqa: BLE001 - status must answer even when the runtime cannot
        result["milvus_running_error"] = str(error)
    if journal is None:
        result["status"] = "no migration recorded"
        return result
    plan = recorded_plan(journal)
    ctx = run_context(env, deployment, plan, journal, dry_run=True)
    effective = ctx.effective()
    deny = effective.get(FORCE_DENY)
    result.update(
        status=journal.status,
        run_id=journal.data["run_id"],
        direction=f"{plan.source_mq} -> {plan.target_mq}",
        error=journal.data.get("error"),
        mq_type_configured=effective.mq_type(),
        writes_denied=bool(deny.value),
        writes_denied_source=str(deny.source),
        steps=[{"id": k, "state": v.get("state"), "seconds": v.get("seconds"),
                "summary": v.get("summary") or v.get("error")} for k, v in journal.data["steps"].items()],
        next=next_action(journal.status),
    )
    return result


def next_action(state: str) -> str:
    return {
        RUNNING: "an apply is running, or died: if `lock_holder` is empty, `milvus-migrate apply --resume`",
        INTERRUPTED: "`milvus-migrate apply --resume` to continue, or `milvus-migrate rollback`",
        FAILED: "fix the cause, then `milvus-migrate apply --resume` or `milvus-migrate rollback`",
        ROLLING_BACK: "`milvus-migrate rollback` to finish the rollback",
        DONE: "nothing; `milvus-migrate verify` re-checks, `milvus-migrate rollback` goes back",
        ROLLED_BACK: "nothing; Milvus runs on the source MQ again",
    }.get(state, "")
