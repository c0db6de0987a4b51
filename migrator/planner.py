"""Build a Plan: gather the facts (read-only) and run every preflight rule.

The same rules run again in apply's preflight step, against the deployment as it is then.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from migrator import __version__
from migrator.config import FORCE_DENY, MQ_TYPE, EffectiveConfig, config_files_for, natsmq_findings, plan_edit
from migrator.config.layers import parse_version
from migrator.context import Environment
from migrator.errors import BadInput
from migrator.journal import DeploymentLock
from migrator.plan import Plan, PlanFinding, PlannedStep, sha256_of
from migrator.playbook import LoadedPlaybook

TARGETS = ("natsmq", "rocksmq")
QUOTA_ENABLED = "quotaAndLimits.enabled"


def milvus_environment(loaded: LoadedPlaybook, runtime_environ: Mapping[str, str]) -> dict[str, str]:
    """What the Milvus process sees: the runtime's environment, the playbook's, its env files."""
    from migrator.config import read_env_file

    environ = dict(runtime_environ)
    for env_file in loaded.spec.env_files:
        environ.update(read_env_file(env_file))
    environ.update(loaded.spec.environment)
    return environ


def layer_digests(config_dir: Path, version: str | None) -> dict[str, str | None]:
    return {str(config_dir / name): sha256_of(config_dir / name) for name in config_files_for(version)}


def target_changes(effective: EffectiveConfig, target: str, natsmq: Mapping[str, Any],
                   sets: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {MQ_TYPE: target}
    if target == "natsmq":
        changes.update({f"natsmq.server.{key}": value for key, value in natsmq.items()})
    for key, value in sets.items():
        if key != MQ_TYPE and not (target == "natsmq" and key.startswith("natsmq.server.")):
            raise BadInput(f"--set {key}: only natsmq.server.* keys can be set, and only with --to natsmq")
        changes[key] = value
    return changes


def version_findings(version: str) -> list[PlanFinding]:
    parsed = parse_version(version)
    if parsed is None or not ((2, 3) <= parsed < (2, 6)):
        return [PlanFinding("error", "milvus.version",
                            f"Milvus {version}: natsmq exists from 2.3.0 and was removed in 2.6; need 2.3 <= version < 2.6")]
    return []


def build_plan(
    env: Environment,
    loaded: LoadedPlaybook,
    *,
    target: str,
    sets: Mapping[str, Any],
    runtime_environ: Mapping[str, str],
    token: str | None,
) -> Plan:
    from migrator.milvus import MilvusAdapter
    from migrator.steps.pipeline import planned_steps

    spec = loaded.spec
    if target not in TARGETS:
        raise BadInput(f"--to {target}: must be natsmq or rocksmq")
    findings: list[PlanFinding] = []
    environ = milvus_environment(loaded, runtime_environ)

    with MilvusAdapter.connect(spec.milvus.uri, token=token) as milvus:
        version = milvus.version()
        findings += version_findings(version)
        snapshot = milvus.snapshot()

    from migrator.config import EtcdSource, load_layers

    etcd = EtcdSource(spec.config.etcd.endpoint) if spec.config.etcd else None
    effective = load_layers(spec.config.dir, version, environ, etcd,
                            env_origin=f"environment of the {spec.runtime.kind} runtime")
    source = effective.mq_type()
    changes = target_changes(effective, target, spec.migration.natsmq, sets)

    if source not in TARGETS and source != target:
        findings.append(PlanFinding("error", MQ_TYPE, f"Milvus runs on {source}; this tool moves between rocksmq and natsmq"))

    mq_edit = plan_edit(effective, changes)
    findings += [PlanFinding("error", r.key, r.message) for r in mq_edit.refusals]
    deny_edit = plan_edit(effective, {FORCE_DENY: True})
    findings += [PlanFinding("error", r.key, r.message) for r in deny_edit.refusals]
    if effective.get(QUOTA_ENABLED).value is not True:
        findings.append(PlanFinding("error", QUOTA_ENABLED,
                                    f"{QUOTA_ENABLED} is not true ({effective.get(QUOTA_ENABLED).source}): "
                                    "forceDeny would not stop writes"))
    if source != target:
        findings += [PlanFinding(f.level, f.key, f.message) for f in natsmq_findings(effective, changes, target)]
    findings += _state_findings(spec.migration.state_dir)
    facts: dict[str, Any] = {
        "mq_type_source": str(effective.get(MQ_TYPE).source),
        "force_deny_source": str(effective.get(FORCE_DENY).source),
        "etcd": getattr(effective, "etcd_state", None),
    }
    if source == "rocksmq":
        facts["rocksmq"] = _rocksmq_facts(loaded, effective, findings)
    if spec.migration.backup:
        findings += _backup_room_findings(loaded, facts.get("rocksmq", {}))

    plan = Plan(
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tool_version=__version__,
        playbook_path=str(loaded.path),
        playbook_sha256=loaded.sha256,
        source_mq=source,
        target_mq=target,
        milvus_version=version,
        changes=changes,
        config_target=str(mq_edit.target),
        config_diff=mq_edit.diff,
        force_deny_target=str(deny_edit.target),
        force_deny_original=bool(effective.get(FORCE_DENY).value),
        layers=layer_digests(spec.config.dir, version),
        snapshot=snapshot.as_dict(),
        facts=facts,
        findings=findings,
    )
    plan.steps = [PlannedStep(step.id, step.description) for step in planned_steps(plan, spec)]
    plan.estimate = _estimate(spec)
    env.log.info("plan.built", source=source, target=target, steps=len(plan.steps),
                 errors=len(plan.errors), collections=len(snapshot.collections))
    return plan


def _state_findings(state_dir: Path) -> list[PlanFinding]:
    holder = DeploymentLock(state_dir / "lock").held_by_other()
    if holder:
        return [PlanFinding("error", "migration.state_dir", f"another migration is running: {holder}")]
    return []


def _rocksmq_facts(loaded: LoadedPlaybook, effective: EffectiveConfig, findings: list[PlanFinding]) -> dict[str, Any]:
    from migrator import rocksmq
    from migrator.errors import MigrateError

    path = loaded.spec.host_path(str(effective.get("rocksmq.path").value))
    try:
        stats = rocksmq.inspect(path)
    except MigrateError as error:
        findings.append(PlanFinding("warning", "rocksmq.path", f"could not inspect {path}: {error.message}"))
        return {"path": str(path)}
    advice = rocksmq.advice(stats)
    findings.append(PlanFinding("info", "advice", advice.paragraph))
    return {
        "path": str(path),
        "messages": stats.messages,
        "bytes": stats.bytes,
        "bytes_on_disk": stats.data_bytes_on_disk + stats.meta_bytes_on_disk,
        "advice": advice.to_dict(),
    }


def _backup_room_findings(loaded: LoadedPlaybook, rocksmq_facts: dict[str, Any]) -> list[PlanFinding]:
    backup_dir = loaded.spec.migration.backup_dir
    if backup_dir is None:
        return [PlanFinding("error", "migration.backup_dir", "migration.backup is true but no backup_dir is set")]
    needed = int(rocksmq_facts.get("bytes_on_disk", 0))
    probe = backup_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed and free < needed * 1.1:
        return [PlanFinding("error", "migration.backup_dir",
                            f"{backup_dir}: {free} bytes free, the backup needs about {needed}")]
    return []


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
