"""Build a Plan: gather the facts (read-only) and run every preflight rule (migration/preflight.py)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from migrator import __version__
from migrator.config import (
    FORCE_DENY,
    MQ_TYPE,
    EffectiveConfig,
    config_files_for,
    plan_edit,
)
from migrator.context import Environment
from migrator.errors import BadInput
from migrator.findings import Finding
from migrator.migration import preflight
from migrator.migration.plan import Plan, PlannedStep, sha256_of
from migrator.migration.steps.pipeline import forward_steps
from migrator.playbook import LoadedPlaybook

NATSMQ_SERVER = "natsmq.server."


def layer_digests(config_dir: Path, version: str | None) -> dict[str, str | None]:
    return {str(config_dir / name): sha256_of(config_dir / name) for name in config_files_for(version)}


def check_target(target: str) -> None:
    if target not in preflight.TARGETS:
        raise BadInput(f"--to {target}: must be natsmq or rocksmq")


def target_changes(target: str, natsmq: Mapping[str, Any], sets: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {MQ_TYPE: target}
    if target == "natsmq":
        changes.update({f"{NATSMQ_SERVER}{key}": value for key, value in natsmq.items()})
    for key, value in sets.items():
        if key != MQ_TYPE and not (target == "natsmq" and key.startswith(NATSMQ_SERVER)):
            raise BadInput(f"--set {key}: only natsmq.server.* keys can be set, and only with --to natsmq")
        changes[key] = value
    return changes


def build_plan(
    env: Environment,
    loaded: LoadedPlaybook,
    *,
    target: str,
    sets: Mapping[str, Any],
    runtime_environ: Mapping[str, str],
    token: str | None,
) -> Plan:
    from migrator.milvus.client import MilvusAdapter

    spec = loaded.spec
    check_target(target)
    findings: list[Finding] = []
    environ = spec.milvus_environment(runtime_environ)

    with MilvusAdapter.connect(spec.milvus.uri, token=token) as milvus:
        version = milvus.version()
        findings += preflight.version_findings(version)
        snapshot = milvus.snapshot()

    from migrator.config import EtcdSource, load_layers

    etcd = EtcdSource(spec.config.etcd.endpoint) if spec.config.etcd else None
    effective = load_layers(spec.config.dir, version, environ, etcd,
                            env_origin=f"environment of the {spec.runtime.kind} runtime")
    source = effective.mq_type()
    changes = target_changes(target, spec.migration.natsmq, sets)

    findings += preflight.source_findings(source, target)
    mq_edit = plan_edit(effective, changes)
    deny_edit = plan_edit(effective, {FORCE_DENY: True})
    findings += preflight.edit_findings(mq_edit, deny_edit)
    if spec.runtime.kind in ("compose", "docker"):
        findings += preflight.container_mount_findings(loaded, env.environ, effective, changes,
                                                       {mq_edit.target.name, deny_edit.target.name})
    findings += preflight.quota_findings(effective)
    findings += preflight.settings_findings(effective, changes, source, target)
    findings += preflight.state_findings(spec.migration.state_dir)
    facts: dict[str, Any] = {
        "mq_type_source": str(effective.get(MQ_TYPE).source),
        "force_deny_source": str(effective.get(FORCE_DENY).source),
        "etcd": getattr(effective, "etcd_state", None),
    }
    if source == "rocksmq":
        facts["rocksmq"] = _rocksmq_facts(loaded, effective, findings)
    if spec.migration.backup:
        findings += preflight.backup_room_findings(loaded, facts.get("rocksmq", {}))

    plan = Plan(
        **provenance(loaded),
        source_mq=source,
        target_mq=target,
        milvus_version=version,
        changes=changes,
        config_target=str(mq_edit.target),
        config_diff=mq_edit.diff,
        force_deny_target=str(deny_edit.target),
        force_deny_original=bool(effective.get(FORCE_DENY).value),
        layers=layer_digests(spec.config.dir, version),
        snapshot=snapshot.to_dict(),
        facts=facts,
        findings=findings,
    )
    plan.steps = [PlannedStep(step.id, step.description) for step in forward_steps(plan, spec)]
    plan.estimate = _estimate(spec)
    env.log.info("plan.built", source=source, target=target, steps=len(plan.steps),
                 errors=len(plan.errors), collections=len(snapshot.collections))
    return plan


def provenance(loaded: LoadedPlaybook) -> dict[str, str]:
    """What every plan says about when, by what and from which playbook it was made."""
    return {"created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "tool_version": __version__,
            "playbook_path": str(loaded.path), "playbook_sha256": loaded.sha256}


def _rocksmq_facts(loaded: LoadedPlaybook, effective: EffectiveConfig, findings: list[Finding]) -> dict[str, Any]:
    from migrator import rocksmq
    from migrator.errors import MigrateError

    path = loaded.spec.host_path(str(effective.get("rocksmq.path").value))
    try:
        stats = rocksmq.inspect(path)
    except MigrateError as error:
        findings.append(Finding("warning", "rocksmq.path", f"could not inspect {path}: {error.message}"))
        return {"path": str(path)}
    advice = rocksmq.advice(stats)
    findings.append(Finding("info", "advice", advice.paragraph))
    return {
        "path": str(path),
        "messages": stats.messages,
        "bytes": stats.bytes,
        "bytes_on_disk": stats.data_bytes_on_disk + stats.meta_bytes_on_disk,
        "advice": advice.to_dict(),
    }


def _estimate(spec: Any) -> dict[str, Any]:
    """A write-downtime bound from the deadlines; the report has the measured figure."""
    deadlines = spec.migration.deadlines
    stop = getattr(spec.runtime, "stop_timeout_s", deadlines.stop_s)
    return {
        "write_downtime_typical_s": 10 + min(stop, 10) + 10,
        "write_downtime_bound_s": deadlines.deny_s + deadlines.flush_s + stop + deadlines.start_s
        + deadlines.confirm_s + deadlines.verify_s,
        "note": "deny takes effect in ~5 s; FlushAll after a write burst can wait for the ~60 s channel "
        "checkpoint tick; a graceful stop can hang, the stop deadline bounds it",
    }
