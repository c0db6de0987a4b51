"""The Kubernetes change: Helm values or an operator CR patch, and the commands that roll it out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from migrator.errors import Refused
from migrator.migration.kubernetes import change_findings, change_for, run_change
from migrator.playbook import KubernetesRuntimeSpec


def _spec(**fields) -> KubernetesRuntimeSpec:
    return KubernetesRuntimeSpec.model_validate({"kind": "kubernetes", "release": "my-release",
                                                 "namespace": "milvus", **fields})


def test_helm_values_and_commands(tmp_path: Path) -> None:
    change = change_for(_spec(manager="helm", kube_context="prod"), "natsmq", {"port": 4222}, tmp_path)
    values = YAML(typ="safe").load(change.files["values-natsmq.yaml"])
    assert values["standalone"] == {"messageQueue": "natsmq", "persistence": {"enabled": True}}
    user_yaml = YAML(typ="safe").load(values["extraConfigFiles"]["user.yaml"])
    assert user_yaml == {"natsmq": {"server": {"storeDir": "/var/lib/milvus/nats", "port": 4222}}}
    assert change.commands == [
        ["helm", "upgrade", "my-release", "milvus/milvus", "--kube-context", "prod", "-n", "milvus",
         "--reuse-values", "-f", str(tmp_path / "values-natsmq.yaml")],
        ["kubectl", "--context", "prod", "-n", "milvus", "rollout", "status",
         "deployment/my-release-milvus-standalone", "--timeout=15m"],
    ]


def test_helm_back_to_rocksmq_has_no_natsmq_config(tmp_path: Path) -> None:
    change = change_for(_spec(manager="helm"), "rocksmq", {}, tmp_path)
    values = YAML(typ="safe").load(change.files["values-rocksmq.yaml"])
    assert values == {"standalone": {"messageQueue": "rocksmq", "persistence": {"enabled": True}}}


def test_operator_patch_reuses_the_rocksmq_claim_and_restarts(tmp_path: Path) -> None:
    """The natsmq persistence reuses the claim the operator made for RocksMQ (`<CR name>-data`); the
    operator only rewrites the ConfigMap, so the commands restart the Deployment themselves."""
    change = change_for(_spec(manager="operator"), "natsmq", {}, tmp_path)
    patch = json.loads(change.files["milvus-patch-natsmq.json"])
    dependencies = patch["spec"]["dependencies"]
    assert dependencies["msgStreamType"] == "natsmq"
    assert dependencies["natsmq"] == {"persistence": {"enabled": True,
                                                      "persistentVolumeClaim": {"existingClaim": "my-release-data"}}}
    assert patch["spec"]["config"] == {"natsmq": {"server": {"storeDir": "/var/lib/milvus/nats"}}}
    assert change.commands == [
        ["kubectl", "-n", "milvus", "patch", "milvus", "my-release", "--type", "merge",
         "--patch-file", str(tmp_path / "milvus-patch-natsmq.json")],
        ["kubectl", "-n", "milvus", "rollout", "restart", "deployment/my-release-milvus-standalone"],
        ["kubectl", "-n", "milvus", "rollout", "status", "deployment/my-release-milvus-standalone", "--timeout=15m"],
    ]


def test_operator_claim_from_the_playbook_and_the_way_back(tmp_path: Path) -> None:
    spec = _spec(manager="operator", data_claim="milvus-rdb")
    back = json.loads(change_for(spec, "rocksmq", {}, tmp_path).files["milvus-patch-rocksmq.json"])
    assert back["spec"] == {"dependencies": {
        "msgStreamType": "rocksmq",
        "rocksmq": {"persistence": {"enabled": True, "persistentVolumeClaim": {"existingClaim": "milvus-rdb"}}}}}
    findings = change_findings(spec, "rocksmq")
    assert any("reuses the claim milvus-rdb (runtime.data_claim)" in f.message for f in findings)
    assert any(f.level == "warning" and "updateConfigMapOnly" in f.message and "rollout restart" in f.message
               for f in findings)


def test_helm_sets_the_queue_explicitly_and_warns_of_chart_5(tmp_path: Path) -> None:
    for target in ("natsmq", "rocksmq"):
        values = YAML(typ="safe").load(change_for(_spec(manager="helm"), target, {}, tmp_path).files[f"values-{target}.yaml"])
        assert values["standalone"]["messageQueue"] == target
    (warning,) = change_findings(_spec(manager="helm"), "rocksmq")
    assert warning.key == "standalone.messageQueue" and warning.level == "warning"
    assert "milvus.io/message-queue" in warning.message and "woodpecker" in warning.message


def test_helm_deployment_name_follows_the_chart_fullname(tmp_path: Path) -> None:
    """The chart's fullname is the release alone when it contains `milvus`; the operator always adds it."""
    helm = change_for(_spec(manager="helm", release="prod-milvus"), "natsmq", {}, tmp_path)
    assert helm.commands[-1][-2] == "deployment/prod-milvus-standalone"
    operator = change_for(_spec(manager="operator", release="prod-milvus"), "natsmq", {}, tmp_path)
    assert operator.commands[-1][-2] == "deployment/prod-milvus-milvus-standalone"


def test_store_dir_off_the_persisted_volume_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Refused, match="storeDir /tmp/nats: not under /var/lib/milvus"):
        change_for(_spec(manager="helm"), "natsmq", {"storeDir": "/tmp/nats"}, tmp_path)


def test_run_change_refuses_unless_asked_and_possible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    change = change_for(_spec(manager="operator"), "natsmq", {}, tmp_path)
    with pytest.raises(Refused, match="run_kubectl is false") as refused:
        run_change(change, _spec(manager="operator"), tmp_path)
    assert "kubectl -n milvus patch milvus my-release" in refused.value.hint
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(Refused, match="kubectl not on PATH"):
        run_change(change, _spec(manager="operator", run_kubectl=True), tmp_path)
    assert not (tmp_path / "milvus-patch-natsmq.json").exists()  # nothing written when refused


def test_run_change_runs_commands_with_files_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "kubectl").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls}\ntest "$3" != patch || test -s "$9"\n')
    (bin_dir / "kubectl").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    spec = _spec(manager="operator", run_kubectl=True)
    out = tmp_path / "out"
    run_change(change_for(spec, "natsmq", {}, out), spec, out)
    assert calls.read_text().splitlines()[1:] == ["-n milvus rollout restart deployment/my-release-milvus-standalone",
                                                  "-n milvus rollout status deployment/my-release-milvus-standalone --timeout=15m"]
