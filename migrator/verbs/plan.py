"""plan: read-only; gather the facts, run every preflight rule, save the plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from migrator.context import Environment
from migrator.migration.plan import Plan
from migrator.mq import Mq
from migrator.playbook import LoadedPlaybook, load_playbook
from migrator.verbs.deployment import deployment_for


def parse_sets(assignments: list[str]) -> dict[str, Any]:
    """`--set KEY=VALUE` flags -> canonical key -> typed value."""
    from migrator.config import parse_assignment

    return dict(parse_assignment(item) for item in assignments)


def plan(env: Environment, playbook_path: Path, *, target: str = Mq.NATSMQ.value, sets: Mapping[str, Any] | None = None,
         out: Path | None = None) -> Plan:
    return plan_for(env, load_playbook(playbook_path), target=target, sets=sets or {}, out=out)


def plan_for(env: Environment, loaded: LoadedPlaybook, *, target: str, sets: Mapping[str, Any],
             out: Path | None = None) -> Plan:
    from migrator.migration.planner import build_plan

    if loaded.spec.runtime.kind == "kubernetes":
        return _plan_kubernetes(env, loaded, target=target, sets=sets, out=out)
    deployment = deployment_for(env, loaded)
    built = build_plan(env, deployment.loaded, target=target, sets=sets,
                       runtime_environ=deployment.runtime.environment(), token=deployment.token)
    if out is not None:
        built.save(out)
    return built


def _plan_kubernetes(env: Environment, loaded: LoadedPlaybook, *, target: str, sets: Mapping[str, Any],
                     out: Path | None) -> Plan:
    """The change for Helm/the operator; its files go beside the plan file (the commands name them)."""
    from migrator.migration.kubernetes import KubernetesChange, build_kubernetes_plan

    out_dir = out.resolve().parent if out is not None else loaded.spec.migration.state_dir / "kubernetes"
    built = build_kubernetes_plan(env, loaded, target=target, sets=sets, token=loaded.spec.milvus.token(env.environ),
                                  out_dir=out_dir)
    if out is not None:
        built.save(out)
        KubernetesChange.from_dict(built.facts["kubernetes"]).write_files(out_dir)
    return built
