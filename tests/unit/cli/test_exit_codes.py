"""Exit codes that say what happened: a command that could not reach Milvus changed nothing (3),
`status` says when the operator is needed (4), flags that contradict a saved plan are bad input (2)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from migrator.errors import ExitCode
from migrator.migration.journal import DeploymentLock, Journal, RunStatus
from migrator.migration.plan import Plan
from migrator.playbook import load_playbook
from tests.support.cli import run_cli
from tests.support.plans import make_plan
from tests.support.playbooks import offline_playbook


def journal_of(tmp_path: Path, status: str, *, error: str | None = None) -> Journal:
    plan = make_plan(tmp_path, tmp_path / "configs" / "milvus.yaml")
    journal = Journal.create(tmp_path / "state" / "journal.json", run_id="20261130T000000Z", plan=plan.to_dict())
    journal.set_status(status, error=error)
    return journal


def test_plan_that_cannot_reach_milvus_is_refused_with_a_hint(tmp_path: Path) -> None:
    result = run_cli(["plan", "-p", str(offline_playbook(tmp_path))])
    assert result.exit_code == ExitCode.REFUSED
    assert "error: cannot connect to Milvus at http://127.0.0.1:1" in result.stderr
    assert "hint: Milvus did not answer" in result.stderr
    assert not (tmp_path / "state").exists()


def test_verify_that_cannot_reach_milvus_is_refused_not_failed(tmp_path: Path) -> None:
    playbook = offline_playbook(tmp_path)
    journal_of(tmp_path, RunStatus.DONE)
    result = run_cli(["verify", "-p", str(playbook)])
    assert result.exit_code == ExitCode.REFUSED, result.stderr
    assert "hint: Milvus did not answer" in result.stderr


def test_apply_names_the_failed_migration_before_trying_milvus(tmp_path: Path) -> None:
    playbook = offline_playbook(tmp_path)
    journal_of(tmp_path, RunStatus.FAILED, error="flush-all: FlushAll not complete within 180 s")
    result = run_cli(["apply", "-p", str(playbook), "--yes"])
    assert result.exit_code == ExitCode.REFUSED
    assert "error: an earlier migration is failed" in result.stderr
    assert "--resume" in result.stderr and "rollback" in result.stderr


def test_apply_that_cannot_reach_milvus_before_any_change_is_refused(tmp_path: Path) -> None:
    result = run_cli(["apply", "-p", str(offline_playbook(tmp_path)), "--yes"])
    assert result.exit_code == ExitCode.REFUSED, result.stderr
    assert "nothing was changed" in result.stderr and not (tmp_path / "state" / "journal.json").exists()


def test_status_with_nothing_recorded_and_writes_allowed_is_0(tmp_path: Path) -> None:
    result = run_cli(["status", "-p", str(offline_playbook(tmp_path, running=True))])
    assert result.exit_code == 0, result.stderr
    assert "status: no migration recorded" in result.stdout and "writes_denied: False" in result.stdout


@pytest.mark.parametrize("state, error", [(RunStatus.FAILED, "stop: Milvus still alive after SIGKILL"),
                                          (RunStatus.INTERRUPTED, "interrupted during flush-all")])
def test_status_of_a_failed_or_interrupted_run_is_4(tmp_path: Path, state: str, error: str) -> None:
    playbook = offline_playbook(tmp_path)
    journal_of(tmp_path, state, error=error)
    result = run_cli(["--output", "json", "status", "-p", str(playbook)])
    assert result.exit_code == ExitCode.NOT_ROLLED_BACK
    document = result.json()
    assert document["ok"] is False and document["status"] == state
    assert document["error"] == f"the last migration is {state}: {error}"
    assert "--resume" in document["hint"] and "rollback" in document["hint"]


def test_status_of_a_running_run_is_0_while_its_process_holds_the_lock_and_4_once_it_died(tmp_path: Path) -> None:
    playbook = offline_playbook(tmp_path)
    journal_of(tmp_path, RunStatus.RUNNING)
    with DeploymentLock(tmp_path / "state" / "lock"):
        held = run_cli(["status", "-p", str(playbook)])
    assert held.exit_code == 0, held.stderr
    assert "lock_holder: pid" in held.stdout
    died = run_cli(["status", "-p", str(playbook)])
    assert died.exit_code == ExitCode.NOT_ROLLED_BACK and "the last migration is running" in died.stderr


@pytest.mark.parametrize("recorded", [None, RunStatus.DONE])
def test_status_with_writes_still_denied_is_4(tmp_path: Path, recorded: str | None) -> None:
    playbook = offline_playbook(tmp_path, force_deny=True, running=True)
    if recorded:
        journal_of(tmp_path, recorded)
    result = run_cli(["status", "-p", str(playbook)])
    assert result.exit_code == ExitCode.NOT_ROLLED_BACK
    assert f"error: writes are still denied (forceDeny true at {tmp_path / 'configs' / 'milvus.yaml'}:" in result.stderr
    assert f"hint: `milvus-migrate writes allow -p {playbook}`" in result.stderr  # runs as printed


def test_status_of_a_done_run_with_writes_allowed_is_0(tmp_path: Path) -> None:
    playbook = offline_playbook(tmp_path, running=True)
    journal_of(tmp_path, RunStatus.DONE)
    result = run_cli(["status", "-p", str(playbook)])
    assert result.exit_code == 0, result.stderr
    assert "status: done" in result.stdout


def saved_plan(tmp_path: Path) -> Path:
    offline_playbook(tmp_path)
    path = tmp_path / "plan.json"
    make_plan(tmp_path, tmp_path / "configs" / "milvus.yaml").save(path)
    return path


@pytest.mark.parametrize("flags, words", [
    (["--to", "rocksmq"], "--to rocksmq: {plan} migrates to natsmq"),
    (["--set", "natsmq.server.port=4333"], "--set natsmq.server.port: {plan} already fixed its settings"),
])
def test_flags_that_contradict_a_saved_plan_are_bad_input(tmp_path: Path, flags: list[str], words: str) -> None:
    plan = saved_plan(tmp_path)
    other = tmp_path / "other.yaml"
    other.write_text((tmp_path / "pb.yaml").read_text())
    names = {"plan": plan, "other": other, "playbook": tmp_path / "pb.yaml"}
    result = run_cli(["apply", str(plan), "--yes", *[flag.format(**names) for flag in flags]])
    assert result.exit_code == ExitCode.BAD_INPUT, result.stderr
    assert f"error: {words.format(**names)}" in result.stderr
    assert not (tmp_path / "state").exists()


def test_flags_that_agree_with_a_saved_plan_go_on_to_its_checks(tmp_path: Path) -> None:
    plan = saved_plan(tmp_path)
    result = run_cli(["apply", str(plan), "--yes", "--to", "natsmq", "--playbook", str(tmp_path / "pb.yaml")])
    # Past the flags: the plan (made for another playbook digest) does not fit it, which is a refusal.
    assert result.exit_code == ExitCode.REFUSED and "was not made from --playbook" in result.stderr, result.stderr


def test_resume_with_another_plan_is_bad_input(tmp_path: Path) -> None:
    plan = saved_plan(tmp_path)
    made = Plan.load(plan)
    made.playbook_sha256 = load_playbook(tmp_path / "pb.yaml").sha256  # made from this very playbook
    made.save(plan)
    journal = journal_of(tmp_path, RunStatus.INTERRUPTED)
    other = Plan.from_dict(journal.plan)
    other.created_at = "2026-11-29T00:00:00+00:00"
    journal.document.plan = other.to_dict()
    journal.save()
    result = run_cli(["apply", str(plan), "--resume", "--yes"])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "is not the plan of the migration in" in result.stderr


def test_resume_after_writes_were_allowed_by_hand_is_refused(tmp_path: Path) -> None:
    playbook = offline_playbook(tmp_path)
    journal = journal_of(tmp_path, RunStatus.INTERRUPTED)
    journal.mark("clients_off_at", time.time() - 60)
    journal.add_write({"action": "allow", "at": "2026-11-30T03:00:00+00:00", "unix": time.time(),
                       "file": "milvus.yaml", "changed": True, "proof": "a probe went through"})
    result = run_cli(["apply", "--resume", "-p", str(playbook), "--yes"])
    assert result.exit_code == ExitCode.REFUSED
    assert "writes were allowed again by hand at 2026-11-30T03:00:00+00:00" in result.stderr
    assert "milvus-migrate rollback" in result.stderr


def test_an_unexpected_error_is_refused_in_a_read_only_command_and_4_elsewhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import migrator.verbs.apply
    import migrator.verbs.status

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(migrator.verbs.status, "status", broken)
    monkeypatch.setattr(migrator.verbs.apply, "rollback", broken)
    playbook = str(offline_playbook(tmp_path))
    status = run_cli(["status", "-p", playbook])
    assert status.exit_code == ExitCode.REFUSED and "error: unexpected error: RuntimeError: a bug" in status.stderr
    assert "Traceback" not in status.stderr
    assert "Traceback" in run_cli(["status", "-p", playbook, "--verbose"]).stderr
    rollback = run_cli(["rollback", "-p", playbook, "--yes"])
    assert rollback.exit_code == ExitCode.NOT_ROLLED_BACK and "milvus-migrate status" in rollback.stderr


def test_a_failed_apply_says_where_its_report_is(tmp_path: Path) -> None:
    playbook = offline_playbook(tmp_path)
    journal_of(tmp_path, RunStatus.INTERRUPTED)  # nothing done yet: the resumed run starts at preflight, which fails
    result = run_cli(["apply", "--resume", "-p", str(playbook), "--yes", "--output", "json"])
    assert result.exit_code == ExitCode.ROLLED_BACK, result.stderr
    document = result.json()
    assert document["ok"] is False and "preflight failed" in document["error"]
    report = Path(document["report"])
    assert report.parent == tmp_path / "state" / "reports" and report.is_file()
    assert document["report_files"][0] == str(report) and document["status"] == "rolled-back"
    assert f"report: {report}" in result.stderr

    journal_of(tmp_path, RunStatus.INTERRUPTED)
    text = run_cli(["apply", "--resume", "-p", str(playbook), "--yes"])
    assert text.exit_code == ExitCode.ROLLED_BACK
    assert "status: rolled-back" in text.stdout and "|" not in text.stdout  # plain text, not a Markdown table
    assert "report: " in text.stderr and Path(text.stderr.split("report: ")[1].split()[0]).is_file()
