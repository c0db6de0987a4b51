"""Issue 20, finding 14: exit codes that say what happened, whatever road led there."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.errors import ExitCode
from migrator.migration.journal import Journal, RunStatus
from migrator.playbook import load_playbook
from tests.support.cli import run_cli
from tests.support.plans import fitting_plan
from tests.support.playbooks import offline_playbook


@pytest.mark.parametrize("how", ["plan", "playbook", "plan --dry-run"])
def test_apply_with_milvus_unreachable_is_refused_whichever_way_it_is_given(tmp_path: Path, how: str) -> None:
    playbook = offline_playbook(tmp_path)
    plan_file = tmp_path / "plan.json"
    fitting_plan(load_playbook(playbook)).save(plan_file)
    args = {"plan": [str(plan_file), "--yes"], "playbook": ["-p", str(playbook), "--yes"],
            "plan --dry-run": [str(plan_file), "--dry-run"]}[how]
    result = run_cli(["apply", *args])
    assert result.exit_code == ExitCode.REFUSED, result.stderr
    assert "cannot connect to Milvus" in result.stderr and "nothing was changed" in result.stderr, result.stderr
    assert "rolled-back" not in result.stdout + result.stderr
    assert not (tmp_path / "state" / "journal.json").exists()


@pytest.mark.parametrize("state", [RunStatus.DONE, RunStatus.ROLLED_BACK])
def test_status_never_says_milvus_runs_when_it_does_not(tmp_path: Path, state: str) -> None:
    playbook = offline_playbook(tmp_path)  # its `running` command says no
    journal = Journal.create(tmp_path / "state" / "journal.json", run_id="20261130T000000Z",
                             plan=fitting_plan(load_playbook(playbook)).to_dict())
    journal.set_status(state)
    result = run_cli(["status", "-p", str(playbook)])
    assert result.exit_code == ExitCode.NOT_ROLLED_BACK, result.stdout + result.stderr
    assert "runs on the source MQ again" not in result.stdout
    assert "Milvus is not running" in result.stderr, result.stderr


def test_status_with_milvus_running_and_nothing_left_to_do_is_0(tmp_path: Path) -> None:
    playbook = offline_playbook(tmp_path, running=True)
    journal = Journal.create(tmp_path / "state" / "journal.json", run_id="20261130T000000Z",
                             plan=fitting_plan(load_playbook(playbook)).to_dict())
    journal.set_status(RunStatus.ROLLED_BACK)
    result = run_cli(["status", "-p", str(playbook)])
    assert result.exit_code == 0, result.stderr
    assert "runs on the source MQ again" in result.stdout
