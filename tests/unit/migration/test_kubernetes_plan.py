"""plan/apply for `runtime.kind: kubernetes`: the Helm values or operator CR patch and its commands,
emitted by plan, run by apply only when the playbook asks and helm/kubectl are on PATH.

Milvus is not needed: its uri points at a closed port, which plan reports as a warning. helm and
kubectl are stand-in scripts that record their arguments.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from migrator.errors import ExitCode
from tests.support.cli import run_cli


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _playbook(tmp_path: Path, *, manager: str = "helm", run_kubectl: bool = False, store_dir: str = "/var/lib/milvus/nats") -> Path:
    path = tmp_path / "k8s.yaml"
    path.write_text(f"""\
version: 1
name: k8s
milvus:
  uri: http://127.0.0.1:{_closed_port()}
config:
  dir: {tmp_path / "configs"}
runtime:
  kind: kubernetes
  manager: {manager}
  namespace: milvus
  release: my-release
  run_kubectl: {str(run_kubectl).lower()}
migration:
  state_dir: {tmp_path / "state"}
  natsmq:
    storeDir: {store_dir}
""")
    return path


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """helm and kubectl stand-ins on PATH; each call appends `NAME ARGS` to the returned file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    for name in ("helm", "kubectl"):
        (bin_dir / name).write_text(f'#!/bin/sh\nprintf "%s\\n" "{name} $*" >> {calls}\n')
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return calls


def test_plan_emits_the_helm_change_beside_out_when_milvus_is_unreachable(tmp_path: Path) -> None:
    out = tmp_path / "plans" / "plan.json"
    result = run_cli(["plan", "--playbook", str(_playbook(tmp_path)), "--out", str(out)])
    assert result.exit_code == ExitCode.OK, result.stderr
    values = out.parent / "values-natsmq.yaml"
    assert "messageQueue: natsmq" in values.read_text()
    assert f"helm upgrade my-release milvus/milvus -n milvus --reuse-values -f {values}" in result.stdout
    assert "kubectl -n milvus rollout status deployment/my-release-milvus-standalone" in result.stdout
    assert "warning: milvus.uri: cannot connect to Milvus" in result.stdout
    assert "collections:" not in result.stdout  # unknown, not zero

    saved = json.loads(out.read_text())
    assert saved["source_mq"] == "rocksmq" and saved["target_mq"] == "natsmq"
    assert saved["milvus_version"] == "unknown" and saved["layers"] == {}
    kubernetes = saved["facts"]["kubernetes"]
    assert kubernetes["out_dir"] == str(out.parent) and kubernetes["manager"] == "helm"
    assert kubernetes["files"]["values-natsmq.yaml"] == values.read_text()
    assert [step["id"] for step in saved["steps"]] == ["write-files", "command-1", "command-2"]


def test_plan_operator_patch_takes_set_and_writes_nothing_without_out(tmp_path: Path) -> None:
    result = run_cli(["--output", "json", "plan", "--playbook", str(_playbook(tmp_path, manager="operator")),
                      "--set", "natsmq.server.port=4223"])
    assert result.exit_code == ExitCode.OK, result.stderr
    kubernetes = result.json()["facts"]["kubernetes"]
    patch = json.loads(kubernetes["files"]["milvus-patch-natsmq.json"])
    assert patch["spec"]["dependencies"]["msgStreamType"] == "natsmq"
    assert patch["spec"]["config"]["natsmq"]["server"] == {"storeDir": "/var/lib/milvus/nats", "port": 4223}
    assert kubernetes["out_dir"] == str(tmp_path / "state" / "kubernetes")
    assert not (tmp_path / "state").exists()  # plan is read-only without --out


def test_plan_back_to_rocksmq(tmp_path: Path) -> None:
    result = run_cli(["--output", "json", "plan", "--playbook", str(_playbook(tmp_path)), "--to", "rocksmq"])
    assert result.exit_code == ExitCode.OK, result.stderr
    plan = result.json()
    assert (plan["source_mq"], plan["target_mq"]) == ("natsmq", "rocksmq")
    assert "natsmq" not in plan["facts"]["kubernetes"]["files"]["values-rocksmq.yaml"].replace("messageQueue", "")


def test_plan_refuses_a_store_dir_off_the_persisted_volume(tmp_path: Path) -> None:
    result = run_cli(["plan", "--playbook", str(_playbook(tmp_path, store_dir="/tmp/nats"))])
    assert result.exit_code == ExitCode.REFUSED
    assert "storeDir /tmp/nats: not under /var/lib/milvus" in result.stderr


def test_apply_without_run_kubectl_writes_the_files_and_says_what_to_run(tmp_path: Path, tools: Path) -> None:
    result = run_cli(["apply", "--playbook", str(_playbook(tmp_path))])  # nothing changes: no --yes needed
    assert result.exit_code == ExitCode.OK, result.stderr
    assert "runtime.run_kubectl is false: the tool does not roll out the change; the operator applies it" in result.stdout
    assert "stop every writer, then FlushAll" in result.stdout
    assert "helm upgrade my-release" in result.stdout
    assert (tmp_path / "state" / "kubernetes" / "values-natsmq.yaml").is_file()
    assert not tools.exists()


def test_apply_with_run_kubectl_but_no_tools_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = run_cli(["--output", "json", "apply", "--playbook", str(_playbook(tmp_path, run_kubectl=True)), "--yes"])
    assert result.exit_code == ExitCode.OK, result.stderr
    report = result.json()
    assert report["status"] == "emitted"
    assert report["message"].startswith("helm, kubectl not on PATH: the tool does not roll out the change")


def test_apply_of_a_plan_runs_the_commands_when_asked(tmp_path: Path, tools: Path) -> None:
    out = tmp_path / "plans" / "plan.json"
    assert run_cli(["plan", "--playbook", str(_playbook(tmp_path, manager="operator", run_kubectl=True)),
                    "--out", str(out)]).exit_code == ExitCode.OK
    result = run_cli(["apply", str(out), "--yes"])
    assert result.exit_code == ExitCode.OK, result.stderr
    patch = out.parent / "milvus-patch-natsmq.json"
    assert tools.read_text().splitlines() == [
        f"kubectl -n milvus patch milvus my-release --type merge --patch-file {patch}",
        "kubectl -n milvus rollout restart deployment/my-release-milvus-standalone",
        "kubectl -n milvus rollout status deployment/my-release-milvus-standalone --timeout=15m",
    ]
    assert "the rollout finished" in result.stdout and "mqType=natsmq" in result.stdout


def test_apply_asks_before_running_and_reports_a_failed_command(tmp_path: Path, tools: Path) -> None:
    playbook = _playbook(tmp_path, run_kubectl=True)
    refused = run_cli(["apply", "--playbook", str(playbook)])
    assert refused.exit_code == ExitCode.BAD_INPUT and "pass --yes" in refused.stderr
    assert not tools.exists()

    helm = tools.parent / "bin" / "helm"
    helm.write_text("#!/bin/sh\necho 'Error: UPGRADE FAILED: another operation is in progress' >&2\nexit 1\n")
    failed = run_cli(["apply", "--playbook", str(playbook), "--yes"])
    assert failed.exit_code == ExitCode.NOT_ROLLED_BACK
    assert "UPGRADE FAILED" in failed.stderr
    assert not tools.exists()  # the rollout status never ran


def test_apply_dry_run_writes_and_runs_nothing(tmp_path: Path, tools: Path) -> None:
    result = run_cli(["apply", "--playbook", str(_playbook(tmp_path, run_kubectl=True)), "--dry-run"])
    assert result.exit_code == ExitCode.OK, result.stderr
    assert "dry run, nothing written or run: apply would run: helm upgrade" in result.stdout
    assert not tools.exists() and not (tmp_path / "state").exists()


def test_apply_refuses_a_stale_plan_and_resume(tmp_path: Path, tools: Path) -> None:
    playbook = _playbook(tmp_path, run_kubectl=True)
    out = tmp_path / "plan.json"
    assert run_cli(["plan", "--playbook", str(playbook), "--out", str(out)]).exit_code == ExitCode.OK
    playbook.write_text(playbook.read_text().replace("release: my-release", "release: other"))
    stale = run_cli(["apply", str(out), "--yes"])
    assert stale.exit_code == ExitCode.REFUSED and "the plan is stale" in stale.stderr
    resume = run_cli(["apply", "--playbook", str(playbook), "--resume"])
    assert resume.exit_code == ExitCode.BAD_INPUT and "keeps no journal" in resume.stderr
    assert not tools.exists()


def test_other_verbs_refuse_kubernetes_naming_the_way_back(tmp_path: Path) -> None:
    result = run_cli(["status", "--playbook", str(_playbook(tmp_path))])
    assert result.exit_code == ExitCode.REFUSED
    assert "plan --to rocksmq" in result.stderr
