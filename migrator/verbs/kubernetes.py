"""The verbs on a Kubernetes deployment: Helm or milvus-operator restart the pod, so plan and apply
hand them the change (migration/kubernetes.py), emitted or run when the playbook asks, and nothing
here drives the pod. verbs/deployment.py:driver_for picks this driver for `runtime.kind: kubernetes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from migrator.context import Environment
from migrator.errors import BadInput, Refused
from migrator.migration.journal import DeploymentLock, RunStatus
from migrator.migration.kubernetes import KubernetesChange, kubernetes_runtime
from migrator.migration.plan import Plan
from migrator.mq import Mq
from migrator.playbook import LoadedPlaybook, Playbook
from migrator.runtime.base import Runtime


class HelmOrOperator:
    """Helm or the operator own Milvus's config and pod: the tool emits (or runs) their change."""

    def plan(self, env: Environment, loaded: LoadedPlaybook, *, target: str, sets: Mapping[str, Any],
             out: Path | None) -> Plan:
        """The change for Helm/the operator; its files go beside the plan file (the commands name them)."""
        from migrator.migration.kubernetes import build_kubernetes_plan

        out_dir = out.resolve().parent if out is not None else loaded.spec.migration.state_dir / "kubernetes"
        built = build_kubernetes_plan(env, loaded, target=target, sets=sets,
                                      token=loaded.spec.milvus.token(env.environ), out_dir=out_dir)
        if out is not None:
            built.save(out)
            KubernetesChange.from_dict(built.facts["kubernetes"]).write_files(out_dir)
        return built

    def apply(self, env: Environment, loaded: LoadedPlaybook, saved: Plan | None, *, plan_path: Path | None,
              target: str | None, sets: Mapping[str, Any], yes: bool, dry_run: bool, resume: bool,
              rollback_on_failure: bool) -> dict[str, Any]:
        """Helm/the operator roll the change out. The tool runs its commands only when the playbook asks
        (runtime.run_kubectl) and helm/kubectl are on PATH; otherwise it writes the files and says what to
        run: nothing failed, the operator applies it (exit 0). No journal, so nothing to resume or roll
        back (`saved` is read again as apply's fresh_plan reads every plan file)."""
        from migrator.migration.kubernetes import run_change
        from migrator.verbs.apply import confirm, fresh_plan

        if resume:
            raise BadInput("--resume: apply on Kubernetes keeps no journal; run apply again "
                           "(the same helm upgrade or kubectl patch applied twice changes nothing more)")
        plan = fresh_plan(env, loaded, plan_path, target or Mq.NATSMQ.value, sets)
        kubernetes = plan.facts["kubernetes"]
        change = KubernetesChange.from_dict(kubernetes)
        out_dir = Path(kubernetes["out_dir"])
        runtime = kubernetes_runtime(loaded.spec)
        missing = change.missing_tools()
        runs = runtime.run_kubectl and not missing
        if dry_run:
            would = (f"run: {change.shown_commands()}" if runs
                     else f"write {', '.join(change.files)} in {out_dir} and print the commands for you to run")
            return {"status": "dry-run", "message": f"dry run, nothing written or run: apply would {would}",
                    "kubernetes": kubernetes}
        if not runs:
            why = "runtime.run_kubectl is false" if not runtime.run_kubectl else f"{', '.join(missing)} not on PATH"
            written = change.write_files(out_dir)
            return {"status": "emitted", "message": _handover(why, plan, written, change),
                    "kubernetes": kubernetes}
        confirm(env, f"Roll out {plan.target_mq} to {runtime.manager} release {runtime.release} in namespace "
                  f"{runtime.namespace} ({change.shown_commands()})? [y/N] ", yes)
        with DeploymentLock(loaded.spec.migration.state_dir / "lock"):
            env.log.info("apply.kubernetes.start", target=plan.target_mq, manager=runtime.manager,
                         commands=len(change.commands))
            run_change(change, runtime, out_dir)
            env.log.info("apply.kubernetes.end", target=plan.target_mq)
        return {"status": str(RunStatus.DONE), "kubernetes": kubernetes,
                "message": f"ran: {change.shown_commands()}; the rollout finished. Check the new pod's log for "
                           f"`try to init mq` with mqType={plan.target_mq}, then allow writes again."}

    def summary(self, spec: Playbook) -> dict[str, Any]:
        from migrator.migration.kubernetes import change_for

        out_dir = spec.migration.state_dir / "kubernetes"
        change = change_for(kubernetes_runtime(spec), Mq.NATSMQ.value, spec.migration.natsmq, out_dir)
        return {"kubernetes_change": change.to_dict()}

    def refuse_writes(self, action: str) -> None:
        raise BadInput(f"writes {action}: on Kubernetes, Helm or the operator owns Milvus's config",
                       hint="set quotaAndLimits.limitWriting.forceDeny in the release's values "
                            "(docs/deployments/kubernetes.md)")

    def production_runtime(self, env: Environment, loaded: LoadedPlaybook) -> Runtime | None:
        return None  # Helm or the operator run the pod: the playbook's view only

    def rehearsal_refusal(self) -> Refused | None:
        return Refused("a Kubernetes deployment is rehearsed on this host only when given a Milvus binary: "
                       "--binary PATH (the same version as the pod's), with the playbook's path_map reaching its "
                       "volumes and config.etcd.endpoint its etcd from here",
                       hint="otherwise rehearse on a staging release of the same chart")


def _handover(why: str, plan: Plan, written: list[Path], change: KubernetesChange) -> str:
    lines = [f"{why}: the tool does not roll out the change; the operator applies it:",
             "  1. stop every writer, then FlushAll (docs/deployments/kubernetes.md)",
             f"  2. review {', '.join(str(path) for path in written)}",
             "  3. run:"]
    lines += ["       " + " ".join(argv) for argv in change.commands]
    lines.append(f"  4. check the new pod's log for `try to init mq` with mqType={plan.target_mq}, then allow writes")
    return "\n".join(lines)
