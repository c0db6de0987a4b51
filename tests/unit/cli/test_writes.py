"""`writes deny|allow` refusals that need no Milvus: nothing is written when the verb cannot go on.
(What it does to a real Milvus: tests/integration/test_writes.py.)"""

from __future__ import annotations

from pathlib import Path

from migrator.errors import ExitCode
from migrator.migration.journal import DeploymentLock
from tests.support.cli import run_cli
from tests.support.playbooks import offline_playbook


def test_writes_while_a_migration_holds_the_lock_is_refused(tmp_path: Path) -> None:
    playbook = offline_playbook(tmp_path)
    before = (tmp_path / "configs" / "milvus.yaml").read_bytes()
    with DeploymentLock(tmp_path / "state" / "lock"):
        result = run_cli(["writes", "deny", "-p", str(playbook), "--yes"])
    assert result.exit_code == ExitCode.REFUSED and "another migration holds" in result.stderr
    assert (tmp_path / "configs" / "milvus.yaml").read_bytes() == before


def test_writes_that_cannot_reach_milvus_changes_nothing(tmp_path: Path) -> None:
    playbook = offline_playbook(tmp_path, force_deny=True)
    before = (tmp_path / "configs" / "milvus.yaml").read_bytes()
    result = run_cli(["writes", "allow", "-p", str(playbook), "--yes", "--output", "json"])
    assert result.exit_code == ExitCode.REFUSED
    assert result.json()["hint"].endswith("nothing was changed")
    assert (tmp_path / "configs" / "milvus.yaml").read_bytes() == before


def test_writes_on_kubernetes_is_bad_input(tmp_path: Path) -> None:
    playbook = tmp_path / "k8s.yaml"
    playbook.write_text(f"""version: 1
name: k8s
config:
  dir: {tmp_path}
runtime:
  kind: kubernetes
  manager: helm
  release: my-release
migration:
  state_dir: {tmp_path / "state"}
""")
    result = run_cli(["writes", "deny", "-p", str(playbook), "--yes"])
    assert result.exit_code == ExitCode.BAD_INPUT and "Helm or the operator owns" in result.stderr

