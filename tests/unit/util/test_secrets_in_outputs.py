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


# --- issue 20, finding 7: the secrets the tool knows are redacted in anyone's text -------------


def _offline_playbook_with_uri(tmp_path: Path, uri: str, token_env: str | None = None) -> Path:
    import shutil

    from tests.support.config import fixture_dir

    shutil.copytree(fixture_dir("v2.3-single"), tmp_path / "configs")
    token = f"\n  token_env: {token_env}" if token_env else ""
    (tmp_path / "pb.yaml").write_text(f"""version: 1
name: secret
milvus:
  uri: "{uri}"{token}
  metrics_url: http://127.0.0.1:1
config: {{dir: configs, version: "2.3.5", etcd: {{endpoint: "http://127.0.0.1:1"}}}}
runtime: {{kind: command, stop: ["true"], start: ["true"], running: ["false"], logs: ["echo", "{{since}}"]}}
migration: {{state_dir: state}}
""")
    return tmp_path / "pb.yaml"


def test_pymilvus_quoting_part_of_a_password_as_a_port_is_redacted_everywhere(tmp_path: Path) -> None:
    """pymilvus splits `http://root:P4ssw0rd/x@host` at the `/` and says the port "P4ssw0rd" is no
    integer: the part is no URI userinfo any pattern finds, but the tool knows the password."""
    playbook = _offline_playbook_with_uri(tmp_path, "http://root:P4ssw0rd/x@127.0.0.1:1")
    log_file = tmp_path / "run.log"
    for output, log_format in (("text", "console"), ("json", "json")):
        result = run_cli(["--output", output, "--log-format", log_format, "--log-file", str(log_file),
                          "plan", "-p", str(playbook)])
        assert result.exit_code == 3, result.stderr
        assert "could not be cast" in result.stderr + result.stdout  # the message is kept, the secret not
        assert "P4ssw0rd" not in result.stdout + result.stderr, result.stdout + result.stderr
    assert "P4ssw0rd" not in log_file.read_text()


def test_a_token_is_redacted_wherever_a_third_party_quotes_it(tmp_path: Path) -> None:
    from migrator.util.redact import forget_secrets, redact, redact_text, remember_token

    remember_token("root:Tok3n-Value")
    try:
        assert "Tok3n-Value" not in redact_text("server said: bad credentials Tok3n-Value (user root)")
        assert redact({"error": "auth Tok3n-Value failed", "path": "/var/lib/x"}) == \
            {"error": "auth *** failed", "path": "/var/lib/x"}
    finally:
        forget_secrets()
    assert "Tok3n-Value" in redact_text("Tok3n-Value")  # known per command only


def test_playbook_check_never_shows_a_password_with_a_space(tmp_path: Path) -> None:
    playbook = _offline_playbook_with_uri(tmp_path, "http://root:pass word@127.0.0.1:1")
    for output in ("text", "json"):
        result = run_cli(["--output", output, "playbook", "check", str(playbook)])
        assert result.exit_code == 0, result.stderr
        assert "pass word" not in result.stdout and "word@" not in result.stdout, result.stdout


def test_a_percent_encoded_password_is_redacted_decoded_too(tmp_path: Path) -> None:
    from migrator.util.redact import forget_secrets, redact_text, remember_uri

    remember_uri("http://root:S3cr%40t-pw@host:19530")
    try:
        assert "S3cr@t-pw" not in redact_text("auth failed for S3cr@t-pw")
    finally:
        forget_secrets()
