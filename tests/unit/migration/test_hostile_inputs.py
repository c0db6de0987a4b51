"""Issue 14's cases for plans, journals, secrets, config files and signals, reproduced as root.

Each gives the input, checks the exit code and message, and that nothing was written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from migrator.errors import BadInput, Refused
from migrator.migration.journal import Journal
from migrator.migration.plan import Plan, check_fresh, digest_of
from tests.support.cli import ctrl_c_as_at_a_terminal, run_cli
from tests.support.plans import make_plan, write_playbook

SECRET = "Ab/Cd+Secret9"
URI = f"http://root:{SECRET}@milvus.internal:19530"


@pytest.fixture
def planned(tmp_path: Path):
    """(plan file, its dict, the playbook) as `plan --out` leaves them, for a systemd deployment."""
    layer = tmp_path / "milvus.yaml"
    layer.write_text("mq:\n  type: rocksmq\n")
    loaded = write_playbook(tmp_path)
    plan = make_plan(tmp_path, layer)
    plan.playbook_sha256 = loaded.sha256
    plan.save(tmp_path / "plan.json")
    return tmp_path / "plan.json", json.loads((tmp_path / "plan.json").read_text()), loaded


def _state_untouched(tmp_path: Path) -> bool:
    return not (tmp_path / "state").exists()


# --- 6. a hand-edited plan -------------------------------------------------------------------


@pytest.mark.parametrize("edit", [{"layers": {}}, {"target_mq": "kafka"}, {"changes": {"mq.type": "natsmq", "etcd.endpoints": "x"}}])
def test_a_hand_edited_plan_is_refused_before_the_lock(planned, tmp_path, edit):
    path, raw, _loaded = planned
    path.write_text(json.dumps({**raw, **edit}))
    result = run_cli(["apply", str(path), "--yes"])
    assert result.exit_code == 2, result.stderr
    assert "digest does not match" in result.stderr and "Traceback" not in result.stderr
    assert _state_untouched(tmp_path)


@pytest.mark.parametrize("edit, named", [
    ({"layers": {}}, "layers are not the files"),
    ({"target_mq": "kafka", "changes": {"mq.type": "kafka"}}, "target_mq 'kafka'"),
    ({"changes": {"mq.type": "natsmq", "etcd.endpoints": "x"}}, "changes.etcd.endpoints"),
    ({"milvus_version": "v2.6.0"}, "outside 2.3"),
    ({"config_target": "/etc/passwd"}, "config_target /etc/passwd"),
])
def test_a_resealed_plan_whose_fields_do_not_fit_the_playbook_is_refused(planned, tmp_path, edit, named):
    path, raw, loaded = planned
    content = {key: value for key, value in {**raw, **edit}.items() if key != "digest"}
    path.write_text(json.dumps({**content, "digest": digest_of(content)}))
    with pytest.raises(Refused, match=named):
        check_fresh(Plan.load(path), loaded)
    result = run_cli(["apply", str(path), "--yes"])
    assert result.exit_code == 3 and "does not fit" in result.stderr, result.stderr
    assert _state_untouched(tmp_path)


@pytest.mark.parametrize("shape", [
    [], "plan", {"schema_version": 2}, {"findings": [1, 2]}, {"findings": [{"level": "fatal", "key": "k", "message": "m"}]},
    {"steps": {"a": 1}}, {"layers": ["milvus.yaml"]}, {"snapshot": None}, {"changes": "mq.type=natsmq"},
])
def test_malformed_plan_shapes_are_bad_input_naming_the_field(planned, shape):
    path, raw, _loaded = planned
    content = ({key: value for key, value in {**raw, **shape}.items() if key != "digest"} if isinstance(shape, dict)
               else shape)
    if isinstance(content, dict) and content.get("schema_version") == 2 and len(shape) == 1:
        content = {"schema_version": 2}
    sealed = {**content, "digest": digest_of(content)} if isinstance(content, dict) else content
    path.write_text(json.dumps(sealed))
    with pytest.raises(BadInput, match=str(path)):
        Plan.load(path)


# --- 9. a malformed journal -----------------------------------------------------------------


@pytest.mark.parametrize("content", [
    "[]", '"journal"', "{}", '{"schema_version": 1}',
    json.dumps({"schema_version": 1, "run_id": "20261130T000000Z", "status": "running", "started_at": "t", "plan": [],
                "steps": {}, "rollback": {}}),
    json.dumps({"schema_version": 1, "run_id": "20261130T000000Z", "status": "exploded", "started_at": "t", "plan": {},
                "steps": {}, "rollback": {}}),
    json.dumps({"schema_version": 1, "run_id": "20261130T000000Z", "status": "running", "started_at": "t", "plan": {},
                "steps": {"stop": []}, "rollback": {}}),
    json.dumps({"schema_version": 1, "run_id": "20261130T000000Z", "status": "done", "started_at": "t", "plan": {},
                "steps": {}, "rollback": {}, "marks": {"clients_off_at": "soon"}}),
])
def test_malformed_journal_shapes_are_bad_input(tmp_path, content):
    (tmp_path / "journal.json").write_text(content)
    with pytest.raises(BadInput, match="journal"):
        Journal.load(tmp_path / "journal.json")


def test_status_on_a_malformed_journal_says_so_without_a_traceback(tmp_path):
    loaded = write_playbook(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "journal.json").write_text('{"schema_version": 1, "steps": []}')
    result = run_cli(["status", "--playbook", str(loaded.path)])
    assert result.exit_code == 2 and "not a milvus-migrate journal" in result.stderr
    assert "Traceback" not in result.stderr


# --- 5. secrets in every file the tool writes ------------------------------------------------


def test_a_password_with_a_slash_reaches_no_file_and_no_stream(tmp_path):
    from migrator.migration.report import build_report, write_report
    from migrator.util.logging import make_logger

    layer = tmp_path / "milvus.yaml"
    layer.write_text("mq:\n  type: rocksmq\n")
    plan = make_plan(tmp_path, layer)
    journal = Journal.create(tmp_path / "state" / "journal.json", run_id="20261130T000000Z", plan=plan.to_dict())
    journal.begin("deny-writes")
    journal.fail("deny-writes", 1.0, f"cannot reach {URI}: connection refused")
    journal.set_status("failed", error=f"deny-writes failed: {URI}?token=tok123")
    json_path, md_path = write_report(build_report(journal), tmp_path / "state")
    import io

    stderr = io.StringIO()
    make_logger(stderr, log_format="json", log_file=tmp_path / "run.log", verbose=True).error(
        "step.failed", error=f"dial {URI}", uri=URI)
    for text in (stderr.getvalue(), *(p.read_text() for p in (tmp_path / "state" / "journal.json", json_path, md_path,
                                                                tmp_path / "run.log"))):
        assert "Secret9" not in text and "tok123" not in text and "***" in text
    assert oct(md_path.stat().st_mode & 0o777) == "0o600"


def test_playbook_check_shows_the_uri_without_its_password(tmp_path):
    (tmp_path / "pb.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        name: x
        milvus: {{uri: "{URI}"}}
        config: {{dir: ., etcd: {{endpoint: "http://127.0.0.1:2379"}}}}
        runtime: {{kind: systemd}}
        migration: {{state_dir: state}}
    """))
    for output in ("text", "json"):
        result = run_cli(["--output", output, "playbook", "check", str(tmp_path / "pb.yaml")])
        assert result.exit_code == 0, result.stderr
        assert "Secret9" not in result.stdout + result.stderr and "root:" not in result.stdout


def test_an_error_naming_a_uri_with_a_password_is_redacted_on_stderr(tmp_path):
    result = run_cli(["inspect", "rocksmq", str(tmp_path / "x"), "--etcd", URI])
    assert "Secret9" not in result.stderr + result.stdout


# --- 4 and 9. config files Milvus reads --------------------------------------------------------

_BOMB = "".join(f"{chr(97 + i)}: &{chr(97 + i)} [{','.join([f'*{chr(96 + i)}'] * 9) if i else '1,2,3,4,5,6,7,8,9'}]\n"
                for i in range(9))


def test_an_alias_bomb_in_milvus_yaml_is_refused_at_once(tmp_path):
    (tmp_path / "milvus.yaml").write_text("mq:\n  type: rocksmq\n" + _BOMB)
    started = time.monotonic()
    result = run_cli(["config", "show", "--config-dir", str(tmp_path)])
    assert result.exit_code == 2 and "alias" in result.stderr and "milvus.yaml:" in result.stderr
    assert time.monotonic() - started < 10


def test_an_alias_bomb_playbook_is_refused_at_once(tmp_path):
    (tmp_path / "pb.yaml").write_text(_BOMB)
    started = time.monotonic()
    result = run_cli(["playbook", "check", str(tmp_path / "pb.yaml")])
    assert result.exit_code == 2 and "alias bomb" in result.stderr
    assert time.monotonic() - started < 10


def test_a_merge_key_is_refused_where_milvus_would_read_another_mq(tmp_path):
    # Milvus (viper/yaml.v3) merges `<<`: it reads natsmq here; the tool must not report rocksmq.
    (tmp_path / "milvus.yaml").write_text("base: &b\n  type: natsmq\nmq:\n  type: rocksmq\n  <<: *b\n")
    result = run_cli(["config", "show", "--config-dir", str(tmp_path)])
    assert result.exit_code == 2 and "merge key" in result.stderr and "milvus.yaml:5" in result.stderr


def test_type_and_Type_in_one_section_are_refused(tmp_path):
    (tmp_path / "milvus.yaml").write_text("mq:\n  type: rocksmq\n  Type: natsmq\n")
    result = run_cli(["config", "show", "--config-dir", str(tmp_path)])
    assert result.exit_code == 2 and "spelled twice" in result.stderr and "milvus.yaml:3" in result.stderr


@pytest.mark.parametrize("special", ["fifo", "zero"])
def test_a_fifo_or_device_as_milvus_yaml_is_refused(tmp_path, special):
    if special == "fifo":
        os.mkfifo(tmp_path / "milvus.yaml")
    else:
        (tmp_path / "milvus.yaml").symlink_to("/dev/zero")
    result = run_cli(["config", "show", "--config-dir", str(tmp_path)])
    assert result.exit_code == 2 and "not a regular file" in result.stderr


def test_config_set_refuses_a_bad_port_without_to(tmp_path):
    (tmp_path / "milvus.yaml").write_text("mq:\n  type: rocksmq\nnatsmq:\n  server:\n    port: 4222\n")
    before = (tmp_path / "milvus.yaml").read_bytes()
    result = run_cli(["config", "set", "--config-dir", str(tmp_path), "--set", "natsmq.server.port=-5", "--write"])
    assert result.exit_code == 3 and "-5 is not a port" in result.stderr, result.stderr
    assert (tmp_path / "milvus.yaml").read_bytes() == before
    assert not (tmp_path / ".milvus-migrate").exists()


# --- 9. signals outside apply ----------------------------------------------------------------

_SLOW_COMMAND = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import migrator.verbs.playbook as verbs
    def slow(env, file):
        Path(sys.argv[1]).touch()
        time.sleep(30)
    verbs.check = slow
    from migrator.cli import main
    sys.exit(main(["playbook", "check", "x.yaml"]))
""")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_outside_apply_exit_130_with_a_message(tmp_path, signum):
    marker = tmp_path / "started"
    process = subprocess.Popen([sys.executable, "-c", _SLOW_COMMAND, str(marker)], stderr=subprocess.PIPE, text=True,
                               cwd=Path(__file__).parents[3], preexec_fn=ctrl_c_as_at_a_terminal)
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signum)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err


def test_the_journal_copy_of_a_plan_keeps_its_digest(tmp_path):
    from migrator.verbs.deployment import recorded_plan

    layer = tmp_path / "milvus.yaml"
    layer.write_text("mq:\n  type: rocksmq\n")
    plan = make_plan(tmp_path, layer)
    plan.config_diff = f"-uri: {URI}\n+uri: {URI}?token=abc\n"  # redacted in the plan, again in the journal
    Journal.create(tmp_path / "state" / "journal.json", run_id="20261130T000000Z", plan=plan.to_dict())
    again = recorded_plan(Journal.load(tmp_path / "state" / "journal.json"))
    assert again.to_dict() == plan.to_dict() and "Secret9" not in again.config_diff


@pytest.mark.parametrize("files", [
    {"path": "data/../../../etc/passwd", "size": 1, "sha256": "0" * 64},
    {"path": "/etc/passwd", "size": 1, "sha256": "0" * 64},
    {"path": "data/CURRENT", "size": -1, "sha256": "0" * 64},
    ["data/CURRENT"],
    {"size": 1},
])
def test_malformed_manifest_entries_are_bad_input(tmp_path, files):
    from migrator.rocksmq import restore_backup

    (tmp_path / "backup").mkdir()
    manifest = {"format": 2, "source_data": "/x", "source_meta_kv": "/x_meta_kv", "mode": "copy",
                "milvus_running": False, "created_at": "t", "files": [files]}
    (tmp_path / "backup" / "manifest.json").write_text(json.dumps(manifest))
    result = run_cli(["backup", "restore", str(tmp_path / "backup"), "--to", str(tmp_path / "rdb")])
    assert result.exit_code == 2 and "not a valid backup manifest" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "rdb").exists()
    with pytest.raises(BadInput):
        restore_backup(tmp_path / "backup", tmp_path / "rdb")
