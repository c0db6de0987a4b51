"""Secrets are redacted on every way out: the CLI's error line, the log (console and file), a plan."""

from __future__ import annotations

import io
import json
from pathlib import Path

from migrator.migration.plan import Plan
from migrator.util.logging import make_logger
from tests.support.cli import run_cli
from tests.support.plans import make_plan

SECRET = "Pa55word-in-a-uri"
URI = f"http://root:{SECRET}@milvus.internal:19530"


def test_the_cli_error_line_is_redacted(tmp_path: Path) -> None:
    # An etcd endpoint with credentials that does not answer: the refusal quotes the endpoint back.
    (tmp_path / "milvus.yaml").write_text("etcd:\n  use:\n    embed: false\nmq:\n  type: rocksmq\n"
                                          "rocksmq:\n  path: /var/lib/milvus/rdb_data\n")
    result = run_cli(["config", "show", "--config-dir", str(tmp_path), "--etcd", "http://root:Pa55word-in-a-uri@127.0.0.1:9"])
    assert result.exit_code == 3, result.stderr
    assert "cannot read Milvus config overrides from etcd" in result.stderr
    assert SECRET not in result.stderr and SECRET not in result.stdout
    assert "http://***@127.0.0.1:9" in result.stderr


def test_log_events_are_redacted_on_the_console_and_in_the_file(tmp_path: Path) -> None:
    stream = io.StringIO()
    log_file = tmp_path / "log.jsonl"
    for log_format in ("console", "json"):
        log = make_logger(stream, log_format=log_format, log_file=log_file, verbose=True)
        log.warning("milvus.unreachable", uri=URI, token="s3cr3t-token", reason=f"dial {URI} failed")
    assert "milvus.unreachable" in stream.getvalue()
    written = log_file.read_text()
    assert written.count("milvus.unreachable") == 2
    for text in (stream.getvalue(), written):
        assert SECRET not in text and "s3cr3t-token" not in text


def test_a_saved_plan_holds_no_secret(tmp_path: Path) -> None:
    layer = tmp_path / "milvus.yaml"
    layer.write_text("mq:\n  type: rocksmq\n")
    plan = make_plan(tmp_path, layer)
    plan.facts["kubernetes"] = {"uri": URI, "token": "s3cr3t-token"}
    plan.config_diff = f"+  address: {URI}\n"
    out = tmp_path / "plan.json"
    plan.save(out)
    text = out.read_text()
    assert SECRET not in text and "s3cr3t-token" not in text
    assert Plan.load(out).facts["kubernetes"]["token"] == "***"
    assert SECRET not in json.dumps(plan.to_dict())
