"""Global options before or after the command; one JSON document on stdout for success and failure
alike; with --log-format json, stderr holds JSON lines only."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from migrator.cli.render import OUTPUT_SCHEMA_VERSION
from migrator.errors import ExitCode
from tests.support.cli import run_cli
from tests.support.config import fixture_dir
from tests.support.playbooks import offline_playbook
from tests.support.rocksmq import write_rocksmq

CONFIG = str(fixture_dir("v2.5-layers"))


def json_lines(text: str) -> list[dict]:
    """Every line of `text` as JSON; fails on the first line that is not."""
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("args", [
    ["--output", "json", "config", "show", "--config-dir", CONFIG],
    ["config", "show", "--config-dir", CONFIG, "--output", "json"],
    ["config", "show", "--output=json", "--config-dir", CONFIG],
    ["config", "show", "-o", "json", "--config-dir", CONFIG, "-v"],
])
def test_global_options_go_before_or_after_the_command(args: list[str]) -> None:
    result = run_cli(args, environ={})
    assert result.exit_code == 0, result.stderr
    document = result.json()
    assert document["schema_version"] == OUTPUT_SCHEMA_VERSION and document["ok"] is True
    assert document["exit_code"] == 0 and document["mq_type"] == "rocksmq"


def test_a_command_keeps_its_own_option_of_a_global_name() -> None:
    # `config show --version` is Milvus's version, not the tool's: 2.3 reads milvus.yaml alone.
    result = run_cli(["config", "show", "--config-dir", CONFIG, "--version", "2.3.5", "--output", "json"], environ={})
    assert result.exit_code == 0, result.stderr
    assert result.json()["files"] == [f"{CONFIG}/milvus.yaml"]


def test_inspect_rocksmq_takes_output_after_its_path(tmp_path: Path) -> None:
    write_rocksmq(tmp_path / "rdb_data", {"by-dev-rootcoord-dml_0": [100, 200]})
    result = run_cli(["inspect", "rocksmq", str(tmp_path / "rdb_data"), "--output", "json"])
    assert result.exit_code == 0, result.stderr
    assert result.json()["ok"] is True and result.json()["topics"][0]["name"] == "by-dev-rootcoord-dml_0"


def test_apply_of_a_plan_takes_output_after_its_flags(tmp_path: Path) -> None:
    result = run_cli(["apply", str(tmp_path / "missing.json"), "--yes", "--output", "json"])
    assert result.exit_code == ExitCode.BAD_INPUT
    document = result.json()  # the whole of stdout is one JSON document
    assert document["ok"] is False and document["exit_code"] == 2
    assert "missing.json" in document["error"]


def test_a_usage_error_is_a_json_document_too() -> None:
    result = run_cli(["config", "show", "--bogus", "--output", "json"])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert result.json() == {"schema_version": OUTPUT_SCHEMA_VERSION, "ok": False, "exit_code": 2,
                             "error": "No such option: --bogus", "hint": None, "report": None}
    assert "Usage:" in result.stderr  # the person at the terminal still sees click's usage line


def test_a_refused_plan_is_one_document_with_its_hint(tmp_path: Path) -> None:
    result = run_cli(["plan", "-p", str(offline_playbook(tmp_path)), "--output", "json"])
    assert result.exit_code == ExitCode.REFUSED
    document = result.json()
    assert document["ok"] is False and document["exit_code"] == 3
    assert "cannot connect to Milvus at http://127.0.0.1:1" in document["error"]
    assert "milvus.uri" in document["hint"] and "nothing was changed" in document["hint"]


def test_log_format_json_keeps_stderr_json_only_on_failure(tmp_path: Path) -> None:
    result = run_cli(["plan", "-p", str(offline_playbook(tmp_path)), "--log-format", "json"])
    assert result.exit_code == ExitCode.REFUSED and result.stdout == ""
    events = json_lines(result.stderr)
    assert events[-1]["event"] == "command.failed" and events[-1]["exit_code"] == 3
    assert "milvus.uri" in events[-1]["hint"]


def test_log_format_json_turns_notes_into_events(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "milvus.yaml").write_text("rocksmq:\n  path: /r\nquotaAndLimits:\n  limitWriting:\n    forceDeny: false\n")
    result = run_cli(["config", "set", "--config-dir", str(conf), "--set", "quotaAndLimits.limitWriting.forceDeny=true",
                      "--log-format", "json"], environ={})
    assert result.exit_code == 0, result.stderr
    assert [event["message"] for event in json_lines(result.stderr) if event["event"] == "cli.note"] == [
        "not written: add --write to write it"]


def test_log_format_json_with_verbose_puts_the_traceback_in_the_event(tmp_path: Path) -> None:
    result = run_cli(["status", "-p", str(tmp_path / "nope.yaml"), "--log-format", "json", "--verbose"])
    assert result.exit_code == ExitCode.BAD_INPUT
    failed = [event for event in json_lines(result.stderr) if event["event"] == "command.failed"]
    assert len(failed) == 1 and "Traceback" in failed[0]["traceback"]


def test_the_json_document_and_json_log_of_a_failure_hold_no_secret(tmp_path: Path) -> None:
    secret = "Pa55word-in-a-uri"
    (tmp_path / "milvus.yaml").write_text("etcd:\n  use:\n    embed: false\nmq:\n  type: rocksmq\n"
                                          "rocksmq:\n  path: /var/lib/milvus/rdb_data\n")
    result = run_cli(["config", "show", "--config-dir", str(tmp_path), "--etcd", f"http://root:{secret}@127.0.0.1:9",
                      "--output", "json", "--log-format", "json"])
    assert result.exit_code == ExitCode.REFUSED
    assert "http://***@127.0.0.1:9" in result.json()["error"]
    assert json_lines(result.stderr)[-1]["event"] == "command.failed"
    assert secret not in result.stdout and secret not in result.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_question_is_asked_with_log_format_json_even_on_a_terminal(tmp_path: Path) -> None:
    from migrator.cli import main
    from migrator.context import Environment
    from migrator.migration.journal import Journal, RunStatus
    from tests.support.plans import make_plan

    playbook = str(offline_playbook(tmp_path))
    plan = make_plan(tmp_path, tmp_path / "configs" / "milvus.yaml")
    Journal.create(tmp_path / "state" / "journal.json", run_id="20261130T000000Z", plan=plan.to_dict()).set_status(RunStatus.INTERRUPTED)

    asked = Environment(stdout=_Terminal(), stderr=_Terminal(), stdin=_Terminal("n\n"), environ={"TERM": "dumb"})
    assert main(["rollback", "-p", playbook], environment=asked) == ExitCode.BAD_INPUT
    assert "[y/N]" in asked.stderr.getvalue() and "not confirmed; nothing was changed" in asked.stderr.getvalue()

    scripted = Environment(stdout=_Terminal(), stderr=_Terminal(), stdin=_Terminal("y\n"), environ={"TERM": "dumb"})
    assert main(["rollback", "-p", playbook, "--log-format", "json"], environment=scripted) == ExitCode.BAD_INPUT
    events = json_lines(scripted.stderr.getvalue())
    assert events[-1]["event"] == "command.failed" and "pass --yes" in events[-1]["error"]
