"""The ordered steps of a migration, with stable ids (the journal's keys)."""

from __future__ import annotations

from typing import Any

from migrator.plan import Plan
from migrator.steps import data, service, sessions, storage, verify, writes
from migrator.steps.base import RunContext, Step


def _preflight(ctx: RunContext) -> str:
    """The plan's rules, again, against the deployment as it is now."""
    from migrator.errors import Refused
    from migrator.planner import version_findings

    with ctx.milvus() as milvus:
        version = milvus.version()
    problems = [f.message for f in version_findings(version)]
    current = ctx.effective().mq_type()
    if current not in (ctx.plan.source_mq, ctx.plan.target_mq):
        problems.append(f"Milvus is configured for {current}, the plan expects {ctx.plan.source_mq}")
    if problems:
        raise Refused("preflight: " + "; ".join(problems))
    return f"Milvus {version} reachable, configured for {current}"


def planned_steps(plan: Plan, playbook: Any) -> list[Step]:
    source, target = plan.source_mq, plan.target_mq
    steps = [
        Step("preflight", "Milvus reachable, 2.3 <= version < 2.6, config still as planned", _preflight,
             side_effects=False),
        Step("deny-writes", "forceDeny=true in the winning layer, proved by a rejected probe insert",
             writes.deny_writes, would=lambda ctx: f"set forceDeny=true in {plan.force_deny_target}"),
        Step("flush-all", "FlushAll and wait for its state (retrying `node not match`)", data.flush_all,
             would=lambda ctx: "FlushAll every database and wait"),
        Step("snapshot", "record every collection's row count and load state (writes are frozen now)",
             data.snapshot, side_effects=False),
        Step("stop", "stop Milvus; SIGKILL after the stop deadline (nothing is lost after FlushAll)",
             service.stop, would=lambda ctx: f"stop Milvus through the {playbook.runtime.kind} runtime"),
        Step("rewrite-config", f"mq.type {source} -> {target} in {plan.config_target} (original kept)",
             service.rewrite_config, would=lambda ctx: f"write {plan.config_target}:\n{plan.config_diff}"),
        Step("start", "start Milvus (log position marked first)", service.start,
             would=lambda ctx: f"start Milvus through the {playbook.runtime.kind} runtime"),
        Step("confirm-mq", f"the log shows `try to init mq` mqType={target} after this start",
             service.confirm_mq, would=lambda ctx: f"wait for mqType={target} in Milvus's log"),
        Step("expire-dead-sessions", "remove the stopped process's etcd sessions, so its collections move "
             "to the new process now instead of after common.session.ttl", sessions.expire_dead_sessions,
             would=lambda ctx: "remove the etcd sessions of the stopped Milvus process"),
        Step("healthy", "healthz says OK", service.healthy, would=lambda ctx: "wait for healthz"),
        Step("verify", "counts equal the snapshot, loaded collections load again"
             + (", one JetStream stream per channel" if target == "natsmq" else ""),
             verify.verify, would=lambda ctx: "load and count every collection on the new MQ"),
        Step("allow-writes", "forceDeny back to the value found; a probe insert succeeds and is visible",
             writes.allow_writes, would=lambda ctx: f"set forceDeny={str(plan.force_deny_original).lower()}"),
    ]
    if source == "rocksmq" and playbook.migration.backup:
        steps.append(Step("backup", "back up rocksmq.path and its _meta_kv with a manifest", storage.backup,
                          would=lambda ctx: "copy rocksmq.path and rocksmq.path_meta_kv to the backup dir"))
    if source == "rocksmq" and playbook.migration.cleanup:
        steps.append(Step("clean-up", "remove rocksmq.path and its _meta_kv (after the verified backup)",
                          storage.cleanup, would=lambda ctx: "remove rocksmq.path and rocksmq.path_meta_kv"))
    return steps
