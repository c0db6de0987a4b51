"""Milvus on Kubernetes: Helm or milvus-operator own its config, so the tool never edits files in
the pod. The plan is the change (Helm values, or a merge patch of the Milvus CR) and the commands
that roll it out; `run_change` runs them only when the playbook asks and the tools are on PATH.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrator.config.keys import MQ_TYPE, NATSMQ_SERVER_PREFIX
from migrator.context import Environment
from migrator.errors import BadInput, Refused
from migrator.findings import Finding
from migrator.mq import Mq
from migrator.playbook import KubernetesRuntimeSpec, LoadedPlaybook, Playbook

if TYPE_CHECKING:
    from migrator.migration.plan import Plan

PERSISTED_MOUNT = "/var/lib/milvus"  # the chart's and the operator's data volume in the standalone pod
_ROLLOUT_TIMEOUT = "15m"  # the first seek per channel on a new MQ is slow (docs/milvus.md)


@dataclass(frozen=True)
class KubernetesChange:
    target: str
    files: dict[str, str]  # file name -> text, written into the plan's directory
    commands: list[list[str]]  # argv lists, in order; file arguments are paths in that directory

    def to_dict(self) -> dict[str, Any]:
        return {"target_mq": self.target, "files": self.files, "commands": self.commands}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> KubernetesChange:
        if "target_mq" not in raw:  # a plan of a version that said `target` (docs/json.md)
            raise BadInput("the plan's Kubernetes change names no target_mq: it was made by an older version",
                           hint="make a new plan with `milvus-migrate plan`")
        return cls(raw["target_mq"], dict(raw["files"]), [list(argv) for argv in raw["commands"]])

    def shown_commands(self) -> str:
        return "; ".join(" ".join(argv) for argv in self.commands)

    def missing_tools(self) -> list[str]:
        """The commands' programs (helm, kubectl) that are not on PATH."""
        return sorted({argv[0] for argv in self.commands if shutil.which(argv[0]) is None})

    def write_files(self, out_dir: Path) -> list[Path]:
        """Write the values/patch files where the commands expect them."""
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in self.files.items():
            (out_dir / name).write_text(text, encoding="utf-8")
            written.append(out_dir / name)
        return written


def natsmq_store_dir(natsmq: Mapping[str, Any]) -> str:
    """storeDir must be on the persisted volume, or JetStream's data dies with the pod."""
    store = str(natsmq.get("storeDir", f"{PERSISTED_MOUNT}/nats"))
    if store != PERSISTED_MOUNT and not store.startswith(PERSISTED_MOUNT + "/"):
        raise Refused(f"migration.natsmq.storeDir {store}: not under {PERSISTED_MOUNT}, the pod's persisted volume")
    return store


def _kubectl(spec: KubernetesRuntimeSpec, *args: str) -> list[str]:
    context = ["--context", spec.kube_context] if spec.kube_context else []
    return ["kubectl", *context, "-n", spec.namespace, *args]


def deployment_name(spec: KubernetesRuntimeSpec) -> str:
    """The standalone Deployment: the operator names it `<CR name>-milvus-standalone`; the chart
    `<fullname>-standalone`, its fullname being the release alone when that contains `milvus`."""
    if spec.manager == "helm" and "milvus" in spec.release:
        return f"{spec.release}-standalone"
    return f"{spec.release}-milvus-standalone"


def change_for(spec: KubernetesRuntimeSpec, target: str, natsmq: Mapping[str, Any], out_dir: Path) -> KubernetesChange:
    """The change that makes Helm/the operator run Milvus on `target` ("natsmq" or "rocksmq")."""
    from io import StringIO

    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import LiteralScalarString

    target = Mq(target).value  # a plain str: YAML cannot represent an enum member

    server = {"storeDir": natsmq_store_dir(natsmq), **{k: v for k, v in natsmq.items() if k != "storeDir"}}
    rollout = _kubectl(spec, "rollout", "status", f"deployment/{deployment_name(spec)}",
                       f"--timeout={_ROLLOUT_TIMEOUT}")
    if spec.manager == "helm":
        values: dict[str, Any] = {"standalone": {"messageQueue": target, "persistence": {"enabled": True}}}
        if target == Mq.NATSMQ:
            yaml = YAML()
            user_yaml = StringIO()
            yaml.dump({"natsmq": {"server": server}}, user_yaml)
            # Helm renders mq.type into default.yaml; user.yaml carries the natsmq settings.
            values["extraConfigFiles"] = {"user.yaml": LiteralScalarString(user_yaml.getvalue())}
        text = StringIO()
        YAML().dump(values, text)
        name = f"values-{target}.yaml"
        context = ["--kube-context", spec.kube_context] if spec.kube_context else []
        helm = ["helm", "upgrade", spec.release, spec.chart, *context, "-n", spec.namespace,
                "--reuse-values", "-f", str(out_dir / name)]
        return KubernetesChange(target, {name: text.getvalue()}, [helm, rollout])
    # rocksmq and natsmq have a persistence block each (default off: an emptyDir). The target's
    # reuses the volume the source's claim gives /var/lib/milvus, so the store persists and the
    # old MQ's data stays beside it for a rollback.
    persistence = {"enabled": True, "persistentVolumeClaim": {"existingClaim": spec.claim()}}
    dependencies: dict[str, Any] = {"msgStreamType": target, target: {"persistence": persistence}}
    config = {"natsmq": {"server": server}} if target == Mq.NATSMQ else {}
    patch = {"spec": {"dependencies": dependencies, **({"config": config} if config else {})}}
    name = f"milvus-patch-{target}.json"
    kubectl_patch = _kubectl(spec, "patch", "milvus", spec.release, "--type", "merge", "--patch-file",
                             str(out_dir / name))
    # The operator only rewrites the ConfigMap (updateConfigMapOnly defaults to true) and the pod
    # template keeps the same claim: without a restart Milvus keeps running on the old MQ.
    restart = _kubectl(spec, "rollout", "restart", f"deployment/{deployment_name(spec)}")
    return KubernetesChange(target, {name: json.dumps(patch, indent=2) + "\n"}, [kubectl_patch, restart, rollout])


def change_findings(spec: KubernetesRuntimeSpec, target: str) -> list[Finding]:
    """The traps of the manager that owns the config, for the plan to say."""
    if spec.manager == "operator":
        claim_name = ("runtime.data_claim" if spec.data_claim
                      else "the name the operator gives the claim it makes, <release>-data")
        return [
            Finding("info", "runtime.data_claim",
                    f"spec.dependencies.{target}.persistence reuses the claim {spec.claim()} "
                    f"({claim_name}): "
                    f"without it the {target} store would land on an emptyDir and die with the pod. If "
                    "spec.dependencies.rocksmq.persistence.persistentVolumeClaim.existingClaim names another claim, "
                    "set runtime.data_claim to it (`kubectl get milvus NAME -o yaml` shows it)"),
            Finding("warning", "runtime.manager",
                    "milvus-operator only updates the ConfigMap on this change (spec.components.updateConfigMapOnly "
                    "defaults to true) and the pod template does not change: Milvus keeps running on the old MQ until "
                    "it restarts, so the commands include "
                    f"`kubectl rollout restart deployment/{deployment_name(spec)}`"),
        ]
    return [Finding("warning", "standalone.messageQueue",
                    f"the values set standalone.messageQueue: {target} explicitly; keep it in every later upgrade. "
                    "Chart 5.x (milvus-5.0.0 and later, Milvus 2.6) defaults it to woodpecker and, on an upgrade with "
                    "the default, keeps the Deployment's sticky `milvus.io/message-queue` "
                    "annotation, or renders rocksmq "
                    "where there is none (charts before 5.0 never wrote it): a release upgraded without the explicit "
                    "value silently changes its MQ, and 2.6 has no natsmq at all")]


def kubernetes_runtime(spec: Playbook) -> KubernetesRuntimeSpec:
    """The playbook's runtime section, which the caller chose this path by (verbs/deployment.py driver_for)."""
    if not isinstance(spec.runtime, KubernetesRuntimeSpec):  # pragma: no cover - a caller's bug
        raise TypeError(f"runtime kind {spec.runtime.kind} is not kubernetes")
    return spec.runtime


def run_change(change: KubernetesChange, spec: KubernetesRuntimeSpec, out_dir: Path, timeout_s: float = 1200.0) -> None:
    """Write the change's files and run its commands; refuse (naming them) unless allowed and possible."""
    from migrator.runtime.base import run_argv

    shown = change.shown_commands()
    if not spec.run_kubectl:
        raise Refused("runtime.run_kubectl is false: the tool does not roll out the change itself",
                      hint=f"review the files in {out_dir} and run: {shown}")
    if missing := change.missing_tools():
        raise Refused(f"{', '.join(missing)} not on PATH", hint=f"run by hand: {shown}")
    change.write_files(out_dir)
    for argv in change.commands:
        run_argv(argv, timeout_s)


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
    from migrator.config.layers import parse_release
    from migrator.migration import preflight
    from migrator.migration.plan import NoSnapshot, Plan, PlannedStep, PlanSnapshot
    from migrator.migration.planner import (
        check_target,
        provenance,
        target_changes,
    )
    from migrator.migration.road import Deployment, road_for
    from migrator.milvus.client import MilvusAdapter, MilvusError

    spec = loaded.spec
    runtime = kubernetes_runtime(spec)
    check_target(target)
    source = (Mq.ROCKSMQ if target == Mq.NATSMQ else Mq.NATSMQ).value
    changes = target_changes(target, spec.migration.natsmq, sets)
    natsmq = {key.removeprefix(NATSMQ_SERVER_PREFIX): value for key, value in changes.items()
              if key.startswith(NATSMQ_SERVER_PREFIX)}
    change = change_for(runtime, target, natsmq, out_dir)

    findings: list[Finding] = []
    snapshot: PlanSnapshot | NoSnapshot
    try:
        with MilvusAdapter.connect(spec.milvus.uri, token=token) as milvus:
            version = milvus.version()
            snapshot = milvus.snapshot().to_dict()
        findings += preflight.version_findings(version)
    except MilvusError as error:
        version, snapshot = "unknown", NoSnapshot()
        findings.append(Finding("warning", "milvus.uri",
                                    f"{error.message}; the change is emitted without Milvus's version and collections "
                                    "(`kubectl port-forward` Milvus's service to check them)"))
    findings.append(Finding("info", MQ_TYPE,
                                f"taken to be {source} now: the pod's config is not read here "
                                "(`helm get values` or `kubectl get milvus` shows it)"))
    findings.append(Finding("warning", "migration",
                                "on Kubernetes the tool neither keeps clients away nor runs FlushAll: stop every "
                                "writer (forceDeny does not stop Milvus 2.3's HTTP API), FlushAll, and keep writers "
                                "away until the new pod's channels have moved, or acknowledged rows can be lost "
                                "(docs/deployments/kubernetes.md)"))
    findings += change_findings(runtime, target)
    findings.append(Finding("info", "target_store",
                            f"the {target} store is inside the pod and is not checked here: if "
                            f"{PERSISTED_MOUNT} already holds one from an earlier run, move it "
                            "aside before the rollout "
                            f"(`kubectl exec deploy/{deployment_name(runtime)} -- ls {PERSISTED_MOUNT}`)"))
    if version != "unknown":
        findings += preflight.road_findings(version, source, target)
    findings += preflight.state_findings(spec.migration.state_dir)
    found_road = road_for(version, parse_release(version) if version != "unknown" else None, source, target,
                          Deployment("kubernetes", None, None, spec.milvus.health_url()))

    plan = Plan(
        **provenance(loaded),
        source_mq=source,
        target_mq=target,
        milvus_version=version,
        changes=changes,
        config_target=", ".join(str(out_dir / name) for name in change.files),
        config_diff="",
        isolation_target="",
        isolation_diff="",
        layers={},  # no local config layer: staleness is the playbook's digest alone
        snapshot=snapshot,
        facts={"kubernetes": {**change.to_dict(), "manager": runtime.manager, "out_dir": str(out_dir),
                              "run_kubectl": runtime.run_kubectl},
               **({"road": found_road.to_dict()} if found_road else {})},
        findings=findings,
    )
    plan.steps = [PlannedStep("write-files", f"write {', '.join(change.files)} into {out_dir}")]
    plan.steps += [PlannedStep(f"command-{number}", " ".join(argv)) for number, argv in enumerate(change.commands, 1)]
    env.log.info("plan.built", source=source, target=target, runtime="kubernetes", errors=len(plan.errors))
    return plan
