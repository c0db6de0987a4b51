"""Issue 20, findings 16 and 17: what the operator reads at 3 a.m. is true, short and runnable."""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

from migrator.context import Environment
from migrator.findings import Finding
from migrator.playbook import load_playbook
from tests.support.plans import fitting_plan
from tests.support.playbooks import offline_playbook


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


ESTIMATE = {"write_downtime_s": 95.0, "write_downtime_budget_s": 250.0, "rollback_budget_s": 300.0,
            "parts": {"restarts": 60.0}, "budget_from": "estimate"}


# --- 16. the confirmation, plan's last line, a plan with nothing to do -------------------------


def test_the_confirmation_shows_host_direction_estimate_and_budget_on_one_screen(tmp_path):
    from migrator.errors import BadInput
    from migrator.verbs.apply import _confirm_migration

    loaded = load_playbook(offline_playbook(tmp_path))
    plan = fitting_plan(loaded, estimate=ESTIMATE, snapshot={"version": "v2.3.5", "collections": [
        {"database": "default", "name": "a", "loaded": True, "rows": 10, "key": "default.a"}]})
    env = Environment(stdout=_Terminal(), stderr=_Terminal(), stdin=_Terminal("n\n"))
    try:
        _confirm_migration(env, plan, False, loaded=loaded)
    except BadInput as refused:
        assert "not confirmed" in refused.message
    question = env.stderr.getvalue()
    for expected in ("127.0.0.1", "rocksmq -> natsmq", "95 s", "250 s", "300 s", "1 collection(s), 10 rows, 1 loaded",
                     str(loaded.path), "[y/N]"):
        assert expected in question, (expected, question)
    assert len(question.splitlines()) <= 12


def test_the_rollback_confirmation_says_it_is_a_rollback(tmp_path):
    from migrator.errors import BadInput
    from migrator.verbs.apply import _confirm_migration

    loaded = load_playbook(offline_playbook(tmp_path))
    env = Environment(stdout=_Terminal(), stderr=_Terminal(), stdin=_Terminal("\n"))
    with contextlib.suppress(BadInput):
        _confirm_migration(env, fitting_plan(loaded), False, loaded=loaded, rollback_of="20261130T000000Z")
    question = env.stderr.getvalue()
    assert question.startswith("Finish the rollback of run 20261130T000000Z: back to rocksmq?"), question
    assert "Migrate" not in question


def test_plan_never_says_apply_it_when_apply_would_refuse_it(tmp_path):
    from migrator.cli.render import render_plan

    loaded = load_playbook(offline_playbook(tmp_path))
    plan = fitting_plan(loaded, findings=[Finding("error", "natsmq.server.port", "taken")])
    text = render_plan(plan, tmp_path / "plan.json")
    assert "apply it" not in text and "apply refuses it" in text
    assert "apply it with `milvus-migrate apply" in render_plan(fitting_plan(loaded), tmp_path / "plan.json")


def test_a_plan_with_nothing_to_do_lists_no_step_and_no_estimate(tmp_path):
    from migrator.cli.render import render_plan
    from migrator.migration.planner import steps_and_estimate

    loaded = load_playbook(offline_playbook(tmp_path))
    plan = fitting_plan(loaded, source_mq="natsmq", target_mq="natsmq")
    assert steps_and_estimate(plan, loaded.spec, {"collections": 0}) == ([], {})
    plan.steps, plan.estimate = [], {}
    text = render_plan(plan, tmp_path / "plan.json")
    assert "nothing to do" in text and "estimate" not in text and "apply it" not in text
    moving = fitting_plan(loaded)
    steps, estimate = steps_and_estimate(moving, loaded.spec, {"collections": 0, "partitions": 0, "loaded_segments": 0,
                                                                "unflushed_rows": 0, "loaded_collections": 0})
    assert steps and estimate.get("write_downtime_s")


# --- 17. hints that run as printed, errors said once, plain text at the end, exit codes ----------


def test_status_hints_name_the_playbook_so_they_run_as_printed(tmp_path):
    from migrator.migration.journal import Journal, RunStatus
    from tests.support.cli import run_cli

    playbook = offline_playbook(tmp_path, running=True)
    journal = Journal.create(tmp_path / "state" / "journal.json", run_id="20261130T000000Z",
                             plan=fitting_plan(load_playbook(playbook)).to_dict())
    journal.set_status(RunStatus.INTERRUPTED, error="interrupted during flush-all")
    result = run_cli(["--output", "json", "status", "-p", str(playbook)])
    document = result.json()
    for text in (document["next"], document["hint"]):
        assert f"`milvus-migrate apply --resume -p {playbook}`" in text, text
        assert f"`milvus-migrate rollback -p {playbook}`" in text, text


def test_every_hint_naming_a_command_gets_the_playbook():
    from migrator.verbs.deployment import runnable

    hint = ("continue with `milvus-migrate apply --resume`, or undo with `milvus-migrate rollback`; "
            "`milvus-migrate writes allow --playbook PB`; `milvus-migrate status -p /x.yaml`")
    assert runnable(hint, Path("/etc/my pb.yaml")) == (
        "continue with `milvus-migrate apply --resume -p '/etc/my pb.yaml'`, or undo with "
        "`milvus-migrate rollback -p '/etc/my pb.yaml'`; `milvus-migrate writes allow -p '/etc/my pb.yaml'`; "
        "`milvus-migrate status -p /x.yaml`")


def test_a_milvus_error_is_said_once_and_without_pymilvus_repr(tmp_path):
    from migrator.migration.journal import Journal, RunStatus
    from tests.support.cli import run_cli

    playbook = offline_playbook(tmp_path)
    journal = Journal.create(tmp_path / "state" / "journal.json", run_id="20261130T000000Z",
                             plan=fitting_plan(load_playbook(playbook)).to_dict())
    journal.set_status(RunStatus.INTERRUPTED)
    result = run_cli(["apply", "--resume", "-p", str(playbook), "--yes"])
    assert result.exit_code == 1, result.stderr
    everything = result.stdout + result.stderr
    assert "<MilvusException" not in everything, everything
    assert everything.count("Fail connecting to server") <= 2, everything  # the step's line, the error line


def test_the_report_on_a_terminal_is_plain_text_not_a_markdown_table(tmp_path):
    from migrator.cli.render import render_report
    from migrator.migration.journal import Journal, RunStatus
    from migrator.migration.report import build_report

    plan = fitting_plan(load_playbook(offline_playbook(tmp_path)), snapshot={"version": "v2.3.5", "collections": [
        {"database": "default", "name": "a", "loaded": True, "rows": 10, "key": "default.a"}]})
    journal = Journal.create(tmp_path / "state" / "journal.json", run_id="20261130T000000Z", plan=plan.to_dict())
    journal.begin("preflight")
    journal.fail("preflight", 1.0, "boom")
    journal.set_status(RunStatus.FAILED, error="preflight: boom")
    text = render_report(build_report(journal))
    assert "|---" not in text and "| step |" not in text and "**" not in text, text
    assert "default.a" in text and "failed" in text
    # Both downtimes and the gate; the isolation-only Strong-reload line only when it was measured.
    assert "read-downtime" in text and "clients kept away by:" in text
    assert "answers a Strong query" not in text, text


def test_log_lines_never_merge_into_the_live_progress_line(tmp_path):
    from migrator.cli.progress import LiveProgress
    from migrator.migration.steps.base import Step

    stderr = _Terminal()
    env = Environment(stdout=_Terminal(), stderr=stderr, stdin=_Terminal(), environ={"TERM": "xterm"})
    env.progress = LiveProgress(stderr, colour=False)
    step = Step("flush-all", "FlushAll, then wait for it", lambda ctx: "ok")
    env.progress.start(1, 1, step)
    time.sleep(0.6)  # the live line is drawn (4 times a second)
    env.log.warning("budget.start", budget="write-downtime", seconds=250)
    time.sleep(0.6)
    env.progress.end(step, "flushed", 1.0)
    lines = stderr.getvalue().replace("\r", "\n").split("\n")
    logged = [line for line in lines if "budget.start" in line]
    assert logged, stderr.getvalue()
    assert all("FlushAll, then wait" not in line for line in logged), logged


def test_verify_with_no_journal_is_refused_not_bad_input(tmp_path):
    from tests.support.cli import run_cli

    result = run_cli(["verify", "-p", str(offline_playbook(tmp_path))])
    assert result.exit_code == 3, result.stderr
    assert "no migration recorded" in result.stderr


def test_unreachable_etcd_for_checkpoints_is_a_refusal(tmp_path):
    from migrator.errors import Refused
    from migrator.milvus.etcd import read_checkpoints

    try:
        read_checkpoints("http://127.0.0.1:1", "by-dev", timeout=1)
    except Refused as refused:
        assert "etcd" in refused.message
    else:
        raise AssertionError("etcd on port 1 answered")


def test_a_damaged_backup_fails_verify_with_4_and_refuses_a_restore_with_3(tmp_path):
    from migrator.rocksmq import create_backup
    from tests.support.cli import run_cli
    from tests.support.rocksmq import milvus_topics, write_rocksmq

    rocksmq = tmp_path / "rdb_data"
    write_rocksmq(rocksmq, milvus_topics(1, [100] * 5))
    create_backup(rocksmq, tmp_path / "backup", milvus_running=False)
    victim = next((tmp_path / "backup" / "data").glob("*.sst"))
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x00")
    verify = run_cli(["backup", "verify", str(tmp_path / "backup")])
    assert verify.exit_code == 4 and "damaged" in verify.stderr, verify.stderr
    restore = run_cli(["backup", "restore", str(tmp_path / "backup"), "--to", str(tmp_path / "elsewhere")])
    assert restore.exit_code == 3 and "damaged" in restore.stderr, restore.stderr
