"""Build a Plan: gather the facts (read-only) and run every preflight rule.

The same rules run again in apply's preflight step, against the deployment as it is then.
"""

from __future__ import annotations

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
NATSMQ_SERVER = "natsmq.server."


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


def target_changes(target: str, natsmq: Mapping[str, Any], sets: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {MQ_TYPE: target}
    if target == "natsmq":
        changes.update({f"{NATSMQ_SERVER}{key}": value for key, value in natsmq.items()})
    for key, value in sets.items():
        if key != MQ_TYPE and not (target == "natsmq" and key.startswith(NATSMQ_SERVER)):
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
    changes = target_changes(target, spec.migration.natsmq, sets)

    if source not in TARGETS and source != target:
        findings.append(PlanFinding("error", MQ_TYPE, f"Milvus runs on {source}; this tool moves between rocksmq and natsmq"))

    mq_edit = plan_edit(effective, changes)
    findings += [PlanFinding("error", r.key, r.message) for r in mq_edit.refusals]
    deny_edit = plan_edit(effective, {FORCE_DENY: True})
    findings += [PlanFinding("error", r.key, r.message) for r in deny_edit.refusals]
    if spec.runtime.kind == "compose":
        findings += compose_mount_findings(loaded, env.environ, {mq_edit.target.name, deny_edit.target.name})
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
        **_provenance(loaded),
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


def compose_mount_findings(loaded: LoadedPlaybook, environ: Mapping[str, str],
                           edited: set[str]) -> list[PlanFinding]:
    """Each config file the migration edits must be the host side of the service's mount of it:
    an edit of a file the container does not see, or of one inside it, is lost."""
    from migrator.errors import Refused
    from migrator.runtime.compose import load_service

    runtime = loaded.spec.runtime
    service = load_service(runtime.file, runtime.service, environ)
    findings = []
    for name in sorted(edited):
        expected = loaded.spec.config.dir / name
        try:
            host = service.host_config_file(runtime.config_dir_in_container, name)
        except Refused as error:
            findings.append(PlanFinding("error", "runtime.file", f"{error.message}; {error.hint}"))
            continue
        if host.resolve() != expected.resolve():
            findings.append(PlanFinding(
                "error", "config.dir",
                f"{runtime.file}: service {runtime.service} mounts {name} from {host}, but config.dir gives "
                f"{expected}: the edit would go to a file Milvus does not read"))
    return findings


def build_kubernetes_plan(
    env: Environment,
    loaded: LoadedPlaybook,
    *,
    target: str,
    sets: Mapping[str, Any],
    token: str | None,
    out_dir: Path,
) -> Plan:
    """Helm or the operator own the config and the pod, so the plan is their change (values file or
    CR patch) and the commands that roll it out. No config file is read: none is on this machine.
    Milvus answers for its version and collections when its uri is reachable (a port-forward);
    when it is not, the change is still emitted, with a warning."""
    from migrator.milvus import MilvusAdapter, MilvusError
    from migrator.runtime.kubernetes import change_for

    spec = loaded.spec
    if target not in TARGETS:
        raise BadInput(f"--to {target}: must be natsmq or rocksmq")
    source = "rocksmq" if target == "natsmq" else "natsmq"
    changes = target_changes(target, spec.migration.natsmq, sets)
    natsmq = {key.removeprefix(NATSMQ_SERVER): value for key, value in changes.items() if key.startswith(NATSMQ_SERVER)}
    change = change_for(spec.runtime, target, natsmq, out_dir)

    findings: list[PlanFinding] = []
    try:
        with MilvusAdapter.connect(spec.milvus.uri, token=token) as milvus:
            version = milvus.version()
            snapshot = milvus.snapshot().as_dict()
        findings += version_findings(version)
    except MilvusError as error:
        version, snapshot = "unknown", {}
        findings.append(PlanFinding("warning", "milvus.uri",
                                    f"{error.message}; the change is emitted without Milvus's version and collections "
                                    "(`kubectl port-forward` Milvus's service to check them)"))
    findings.append(PlanFinding("info", MQ_TYPE,
                                f"taken to be {source} now: the pod's config is not read here "
                                "(`helm get values` or `kubectl get milvus` shows it)"))
    findings.append(PlanFinding("warning", "migration",
                                "on Kubernetes the tool neither denies writes nor runs FlushAll: do both before the "
                                "rollout, or rows not yet flushed are lost (docs/deployments/kubernetes.md)"))
    findings += _state_findings(spec.migration.state_dir)

    plan = Plan(
        **_provenance(loaded),
        source_mq=source,
        target_mq=target,
        milvus_version=version,
        changes=changes,
        config_target=", ".join(str(out_dir / name) for name in change.files),
        config_diff="",
        force_deny_target="",
        force_deny_original=False,
        layers={},  # no local config layer: staleness is the playbook's digest alone
        snapshot=snapshot,
        facts={"kubernetes": {**change.as_dict(), "manager": spec.runtime.manager, "out_dir": str(out_dir),
                              "run_kubectl": spec.runtime.run_kubectl}},
        findings=findings,
    )
    plan.steps = [PlannedStep("write-files", f"write {', '.join(change.files)} into {out_dir}")]
    plan.steps += [PlannedStep(f"command-{number}", " ".join(argv)) for number, argv in enumerate(change.commands, 1)]
    env.log.info("plan.built", source=source, target=target, runtime="kubernetes", errors=len(plan.errors))
    return plan


def _provenance(loaded: LoadedPlaybook) -> dict[str, str]:
    """What every plan says about when, by what and from which playbook it was made."""
    return {"created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "tool_version": __version__,
            "playbook_path": str(loaded.path), "playbook_sha256": loaded.sha256}


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
    from migrator.rocksmq.files import free_bytes

    needed = int(rocksmq_facts.get("bytes_on_disk", 0))
    free = free_bytes(backup_dir)
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
