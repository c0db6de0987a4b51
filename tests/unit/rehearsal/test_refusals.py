"""What `rehearse` refuses before it reads or copies anything: exit codes and messages that name why."""

from __future__ import annotations

from pathlib import Path

from migrator.migration.journal import DeploymentLock
from tests.support.cli import run_cli
from tests.support.playbooks import offline_playbook

REPO = Path(__file__).resolve().parents[3]


def test_kubernetes_is_rehearsed_on_the_host_only_with_a_binary() -> None:
    result = run_cli(["rehearse", "-p", str(REPO / "playbooks" / "kubernetes.yaml")])
    assert result.exit_code == 3
    assert "rehearsed on this host only when given a Milvus binary: --binary PATH" in result.stderr


def test_a_command_runtime_needs_a_binary_and_nothing_is_created(tmp_path: Path) -> None:
    playbook = offline_playbook(tmp_path)
    result = run_cli(["rehearse", "-p", str(playbook)])
    assert result.exit_code == 3 and "give --binary PATH" in result.stderr
    result = run_cli(["rehearse", "-p", str(playbook), "--binary", str(tmp_path / "no-such-milvus")])
    assert result.exit_code == 2 and "not an executable file" in result.stderr
    assert not (tmp_path / "state").exists()


def test_a_migration_in_progress_is_not_rehearsed(tmp_path: Path) -> None:
    playbook = offline_playbook(tmp_path)
    text = playbook.read_text().replace("version: \"2.3.5\"", "version: \"2.3.5\"\n  etcd:\n    endpoint: 127.0.0.1:1")
    playbook.write_text(text)
    (tmp_path / "state").mkdir()
    with DeploymentLock(tmp_path / "state" / "lock"):
        result = run_cli(["rehearse", "-p", str(playbook), "--binary", "/bin/sh"])
    assert result.exit_code == 3 and "a migration of this deployment holds" in result.stderr
