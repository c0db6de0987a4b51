"""The ordered steps of a migration and of its rollback, with stable ids (the journal's keys)."""

from __future__ import annotations

from typing import Any

from migrator.migration.plan import Plan
from migrator.migration.steps import (
    allow_writes,
    backup,
    clean_up,
    confirm_mq,
    deny_writes,
    expire_dead_sessions,
    flush_all,
    healthy,
    preflight,
    rewrite_config,
    rollback,
    snapshot,
    start,
    stop,
    verify,
)
from migrator.migration.steps.base import RunContext, Step

# The first step after which the deployment differs from where it started.
CHANGES_START_AT = "deny-writes"


def forward_steps(plan: Plan, playbook: Any) -> list[Step]:
    source, target = plan.source_mq, plan.target_mq
    steps = [
        Step("preflight", "Milvus reachable, 2.3 <= version < 2.6, config still as planned", preflight.preflight_step,
             side_effects=False),
        Step("deny-writes", "forceDeny=true in the winning layer, proved by a rejected probe insert",
             deny_writes.deny_writes, would=lambda ctx: f"set forceDeny=true in {plan.force_deny_target}"),
        Step("flush-all", "FlushAll and wait for its state (retrying `node not match`)", flush_all.flush_all,
             would=lambda ctx: "FlushAll every database and wait"),
        Step("snapshot", "record every collection's row count and load state (writes are frozen now)",
             snapshot.snapshot, side_effects=False),
        Step("stop", "stop Milvus; SIGKILL after the stop deadline (nothing is lost after FlushAll)",
             stop.stop, would=lambda ctx: f"stop Milvus through the {playbook.runtime.kind} runtime"),
        Step("rewrite-config", f"mq.type {source} -> {target} in {plan.config_target} (original kept)",
             rewrite_config.rewrite_config, would=lambda ctx: f"write {plan.config_target}:\n{plan.config_diff}"),
        Step("start", "start Milvus (log position marked first)", start.start,
             would=lambda ctx: f"start Milvus through the {playbook.runtime.kind} runtime"),
        Step("confirm-mq", f"the log shows `try to init mq` mqType={target} after this start",
             confirm_mq.confirm_mq, would=lambda ctx: f"wait for mqType={target} in Milvus's log"),
        Step("expire-dead-sessions", "remove the stopped process's etcd sessions, so its collections move "
             "to the new process now instead of after common.session.ttl", expire_dead_sessions.expire_dead_sessions,
             would=lambda ctx: "remove the etcd sessions of the stopped Milvus process"),
        Step("healthy", "healthz says OK", healthy.healthy, would=lambda ctx: "wait for healthz"),
        Step("verify", "counts equal the snapshot, loaded collections load again"
             + (", one JetStream stream per channel" if target == "natsmq" else ""),
             verify.verify, would=lambda ctx: "load and count every collection on the new MQ"),
        Step("allow-writes", "forceDeny back to the value found; a probe insert succeeds and is visible",
             allow_writes.allow_writes, would=lambda ctx: f"set forceDeny={str(plan.force_deny_original).lower()}"),
    ]
    if source == "rocksmq" and playbook.migration.backup:
        steps.append(Step("backup", "back up rocksmq.path and its _meta_kv with a manifest", backup.backup,
                          would=lambda ctx: "copy rocksmq.path and rocksmq.path_meta_kv to the backup dir"))
    if source == "rocksmq" and playbook.migration.cleanup:
        steps.append(Step("clean-up", "remove rocksmq.path and its _meta_kv (after the verified backup)",
                          clean_up.cleanup, would=lambda ctx: "remove rocksmq.path and rocksmq.path_meta_kv"))
    return steps


def rollback_steps(ctx: RunContext) -> list[Step]:
    """Back to the source MQ. Each step is idempotent, so a rollback can itself be resumed."""
    source = ctx.plan.source_mq
    steps = []
    if ctx.journal.started("stop"):
        steps += [
            Step("rollback-restore", f"stop Milvus, put the original config back ({source})", rollback.restore),
            Step("rollback-start", f"start Milvus on {source}",
                 lambda c: start.start(c, step_id="rollback-start")),
            Step("rollback-confirm", f"the log shows mqType={source} after this start",
                 lambda c: confirm_mq.confirm_mq(c, target=source, start_step="rollback-start")),
            Step("rollback-expire-dead-sessions", "remove the stopped process's etcd sessions",
                 expire_dead_sessions.expire_dead_sessions),
            Step("rollback-healthy", "healthz says OK", healthy.healthy),
            Step("rollback-verify", "row counts equal the snapshot", rollback.check_counts),
        ]
    steps.append(Step("rollback-allow-writes", "forceDeny back to the value found; a probe insert succeeds",
                      allow_writes.allow_writes))
    return steps
