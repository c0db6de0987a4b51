"""Build a Plan: gather the facts (read-only) and run every preflight rule (migration/preflight.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from migrator import __version__
from migrator.config import (
    FORCE_DENY,
    MQ_TYPE,
    EffectiveConfig,
    config_files_for,
    plan_edit,
)
from migrator.config.keys import NATSMQ_DEFAULTS, NATSMQ_SERVER_PREFIX, ROCKSMQ_PATH
from migrator.config.layers import parse_release
from migrator.context import Environment
from migrator.errors import BadInput
from migrator.findings import Finding
from migrator.migration import gate as gates
from migrator.migration import preflight, road
from migrator.migration.configstates import hold_changes, isolation_changes
from migrator.migration.plan import Estimate, Plan, PlanFacts, PlannedStep, sha256_of
from migrator.migration.steps.pipeline import forward_steps
from migrator.mq import MIGRATABLE, Mq
from migrator.playbook import LoadedPlaybook, Playbook

if TYPE_CHECKING:
    from migrator.milvus.client import SnapshotRecord

PLANNED_PRIVATE_PORT = 19539  # shown in the plan's diff only
STORE_DIR = "natsmq.server.storeDir"


def layer_digests(config_dir: Path, version: str | None) -> dict[str, str | None]:
    return {str(config_dir / name): sha256_of(config_dir / name) for name in config_files_for(version)}


def check_target(target: str) -> None:
    if target not in MIGRATABLE:
        raise BadInput(f"--to {target}: must be natsmq or rocksmq")


def target_changes(target: str, natsmq: Mapping[str, Any], sets: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {MQ_TYPE: target}
    if target == Mq.NATSMQ:
        changes.update({f"{NATSMQ_SERVER_PREFIX}{key}": value for key, value in natsmq.items()})
    for key, value in sets.items():
        if key != MQ_TYPE and not (target == Mq.NATSMQ and key.startswith(NATSMQ_SERVER_PREFIX)):
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
        snapshot = milvus.snapshot()
        scale = milvus.scale(snapshot.collections)

    from migrator.config import EtcdSource, load_layers

    etcd = EtcdSource(spec.config.etcd.endpoint) if spec.config.etcd else None
    pinned = road.is_pinned(parse_release(version))
    # 2.6 rejects natsmq in its files; that is part of what the refusal explains, not bad input.
    effective = load_layers(spec.config.dir, version, environ, etcd,
                            env_origin=f"environment of the {spec.runtime.kind} runtime", check=not pinned)
    if pinned:
        return refused_on_pinned_release(env, loaded, effective, version, snapshot.to_dict(), target)
    findings += preflight.version_findings(version)
    source = effective.mq_type()
    changes = target_changes(target, spec.migration.natsmq, sets)

    findings += preflight.source_findings(source, target)
    mq_edit = plan_edit(effective, changes)
    # The port only shapes the diff shown; apply picks a free one when it isolates clients.
    isolation_edit = plan_edit(effective, isolation_changes(spec.migration.isolation_port or PLANNED_PRIVATE_PORT))
    gate = gates.choose(spec.migration.gate, spec.runtime.kind, spec.milvus.uri)
    findings += preflight.gate_findings(spec.migration.gate, gate)
    hold_edits = [plan_edit(effective, hold_changes())] if gate.kind == gates.GateKind.FIREWALL else []
    findings += preflight.edit_findings(mq_edit, isolation_edit, *hold_edits)
    port_is_free = None
    if spec.runtime.kind in ("compose", "docker"):
        findings += preflight.container_mount_findings(loaded, env.environ, effective, changes,
                                                       {mq_edit.target.name, isolation_edit.target.name})
        port_is_free = preflight.container_port_check(loaded, env.environ)
    findings += preflight.playbook_findings(spec)
    findings += preflight.settings_findings(effective, changes, source, target, port_is_free=port_is_free)
    findings += preflight.playbook_dirs_findings(spec, changes)
    findings += preflight.state_findings(spec.migration.state_dir)
    facts: PlanFacts = {
        "mq_type_source": str(effective.get(MQ_TYPE).source),
        "force_deny": {"value": bool(effective.get(FORCE_DENY).value), "source": str(effective.get(FORCE_DENY).source)},
        "etcd": getattr(effective, "etcd_state", None),
        "config_sources": [setting.to_dict() for setting in effective.mq_settings()],
        "scale": scale,
    }
    if source == Mq.ROCKSMQ:
        facts["rocksmq"] = _rocksmq_facts(loaded, effective, findings)
    if spec.migration.backup:
        findings += preflight.backup_room_findings(loaded, facts.get("rocksmq", {}))
    findings += preflight.road_findings(version, source, target)
    found_road = road.road_for(version, parse_release(version), source, target, road_deployment(loaded, effective))
    if found_road is not None:
        facts["road"] = found_road.to_dict()
    store = target_store(loaded, effective, changes, source, target)
    if source != target:
        facts["target_store"] = store
        findings += preflight.target_store_findings(store)
    if target == Mq.NATSMQ:
        planned = {key: changes.get(key, effective.get(key).value) for key in NATSMQ_DEFAULTS}
        findings += preflight.retention_findings(store, planned)
        if source != target:
            findings += preflight.store_room_findings(
                Path(store["paths"][0]), str(planned[STORE_DIR]), planned["natsmq.server.maxFileStore"],
                int(facts.get("rocksmq", {}).get("bytes", 0)))

    plan = Plan(
        **provenance(loaded),
        source_mq=source,
        target_mq=target,
        milvus_version=version,
        changes=changes,
        config_target=str(mq_edit.target),
        config_diff=mq_edit.diff,
        isolation_target=str(isolation_edit.target),
        isolation_diff=isolation_edit.diff,
        layers=layer_digests(spec.config.dir, version),
        snapshot=snapshot.to_dict(),
        facts=facts,
        findings=findings,
        gate=gate.to_dict(),
    )
    plan.steps, plan.estimate = steps_and_estimate(plan, spec, scale)
    plan.findings += preflight.budget_findings(plan.estimate, spec.migration.deadlines.verify_s)
    env.log.info("plan.built", source=source, target=target, steps=len(plan.steps),
                 errors=len(plan.errors), collections=len(snapshot.collections))
    return plan


def road_deployment(loaded: LoadedPlaybook, effective: EffectiveConfig) -> road.Deployment:
    spec = loaded.spec
    return road.Deployment(
        runtime_kind=spec.runtime.kind,
        etcd_config_source=effective.get("etcd.use.embed").value is not True,
        woodpecker_storage=effective.get(road.WOODPECKER_STORAGE).raw,
        metrics_url=spec.milvus.health_url(),
    )


def target_store(loaded: LoadedPlaybook, effective: EffectiveConfig, changes: Mapping[str, Any], source: str,
                 target: str) -> dict[str, Any]:
    """The store the target MQ will start on, on this machine's side of the path map: what is in it and
    what apply does with it (`move-aside` when it is not empty; `keep` when Milvus runs on it already)."""
    spec = loaded.spec
    if target == Mq.NATSMQ:
        from migrator.milvus.nats_store import read_store

        host = spec.host_path(str(changes.get(STORE_DIR, effective.get(STORE_DIR).value)))
        nats = read_store(host)
        paths, empty, contents = [str(host)], nats.empty, nats.to_dict()
    else:
        host = spec.host_path(str(effective.get(ROCKSMQ_PATH).value))
        paths, empty, contents = _rocksmq_store(host)
    action = "keep" if source == target else "none" if empty else "move-aside"
    return {"kind": target, "paths": paths, "empty": empty, "contents": contents, "action": action}


def _rocksmq_store(path: Path) -> tuple[list[str], bool, dict[str, Any]]:
    """rocksmq.path and its _meta_kv sibling: (paths, empty, contents). Contents come from `inspect`
    (topics, messages, sizes, age) when both are a RocksMQ, else their size and why not."""
    from migrator import rocksmq
    from migrator.errors import MigrateError
    from migrator.rocksmq.layout import directory_size, meta_kv_path

    pair = [path, meta_kv_path(path)]
    paths = [str(directory) for directory in pair]
    if not any(directory.exists() and (not directory.is_dir() or any(directory.iterdir())) for directory in pair):
        return paths, True, {"bytes_on_disk": 0}
    try:
        stats = rocksmq.inspect(path)
    except MigrateError as error:
        on_disk = sum(directory_size(directory) for directory in pair if directory.is_dir())
        return paths, False, {"bytes_on_disk": on_disk, "problem": error.message}
    return paths, False, {
        "topics": len(stats.topics),
        "messages": stats.messages,
        "bytes": stats.bytes,
        "bytes_on_disk": stats.data_bytes_on_disk + stats.meta_bytes_on_disk,
        "oldest_time": stats.oldest_time.isoformat(timespec="seconds") if stats.oldest_time else None,
        "newest_time": stats.newest_time.isoformat(timespec="seconds") if stats.newest_time else None,
        "topic_names": [topic.name for topic in stats.topics],
    }


def refused_on_pinned_release(env: Environment, loaded: LoadedPlaybook, effective: EffectiveConfig, version: str,
                               snapshot: SnapshotRecord, target: str) -> Plan:
    """Milvus 2.6+: no edit to plan. The plan says why (the pin, natsmq gone), who sets mq.type, and
    what 2.6 offers instead (AlterWAL and its preconditions here)."""
    from migrator.milvus.etcd import mq_pin_key

    spec = loaded.spec
    pin = effective.mq_pin()
    pin_key = mq_pin_key(effective.get("etcd.rootPath").raw or "")
    findings = preflight.version_findings(version, pin=pin.value if pin else None, pin_key=pin_key)
    if pin is None:
        findings.append(Finding("info", "etcd", f"the pin {pin_key} was not read ({effective.etcd_state})"))
    source = pin.value if pin else str(effective.get(MQ_TYPE).raw)
    found_road = road.road_for(version, parse_release(version), source, target, road_deployment(loaded, effective))
    plan = Plan(
        **provenance(loaded),
        source_mq=source,
        target_mq=target,
        milvus_version=version,
        changes={},
        config_target="",
        config_diff="",
        isolation_target="",
        isolation_diff="",
        layers=layer_digests(spec.config.dir, version),
        snapshot=snapshot,
        facts={"etcd": effective.etcd_state, "mq_pin": {"key": pin_key, "value": pin.value if pin else None},
               "config_sources": [setting.to_dict() for setting in effective.mq_settings()],
               "road": found_road.to_dict() if found_road else None},
        findings=findings,
    )
    env.log.info("plan.built", source=source, target=target, steps=0, errors=len(plan.errors), pinned=True)
    return plan


class Provenance(TypedDict):
    created_at: str
    tool_version: str
    playbook_path: str
    playbook_sha256: str


def provenance(loaded: LoadedPlaybook) -> Provenance:
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


def steps_and_estimate(plan: Plan, spec: Playbook, scale: Mapping[str, Any]) -> tuple[list[PlannedStep], Estimate]:
    """The steps apply would run and the write-downtime they should take; none of either when
    Milvus already runs on the target (apply then does nothing)."""
    if plan.nothing_to_do:
        return [], {}
    steps = [PlannedStep(step.id, step.description) for step in forward_steps(plan, spec)]
    return steps, plan_estimate(spec, scale, plan.source_mq, plan.target_mq, plan.gate["kind"])


def plan_estimate(spec: Playbook, scale: Mapping[str, Any], source: str, target: str, gate: str) -> Estimate:
    """The write-downtime this migration should take, from what the plan found (migration/costs.py),
    the budget that bounds it and the rollback's bound."""
    from migrator.migration import costs

    deadlines = spec.migration.deadlines
    return costs.estimate(scale, source=source, target=target, gate=gate,
                          stop_deadline_s=getattr(spec.runtime, "stop_timeout_s", deadlines.stop_s),
                          budget_s=spec.migration.write_downtime_budget_s,
                          rollback_budget_s=spec.migration.rollback_budget_s)
