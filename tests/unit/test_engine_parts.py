"""Pure parts of the migration: journal, lock, plan file and staleness, report, playbook errors, secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from migrator.errors import BadInput, Refused
from migrator.journal import DONE, DeploymentLock, Journal, write_json_atomic
from migrator.redact import redact
from migrator.plan import Plan, PlanFinding, PlannedStep, check_fresh, sha256_of
from migrator.playbook import load_playbook
from migrator.report import build_report, render_markdown

REPO = Path(__file__).resolve().parents[2]


def make_plan(tmp_path: Path, layer: Path) -> Plan:
    return Plan(
        created_at="2026-11-28T00:00:00+00:00", tool_version="0", playbook_path=str(tmp_path / "pb.yaml"),
        playbook_sha256="abc", source_mq="rocksmq", target_mq="natsmq", milvus_version="v2.3.5-lite",
        changes={"mq.type": "natsmq"}, config_target=str(layer), config_diff="-a\n+b\n",
        force_deny_target=str(layer), force_deny_original=False, layers={str(layer): sha256_of(layer)},
        snapshot={"version": "v2.3.5", "collections": [
            {"database": "default", "name": "a", "loaded": True, "rows": 10, "key": "default.a"}]},
        findings=[PlanFinding("warning", "natsmq.server.storeDir", "rotational disk")],
        steps=[PlannedStep("preflight", "checks")],
    )


def test_plan_round_trips_and_detects_a_changed_layer(tmp_path: Path) -> None:
    layer = tmp_path / "milvus.yaml"
    layer.write_text("mq:\n  type: rocksmq\n")
    plan = make_plan(tmp_path, layer)
    plan.save(tmp_path / "plan.json")
    loaded = Plan.load(tmp_path / "plan.json")
    assert loaded == plan
    check_fresh(loaded, "abc")
    layer.write_text("mq:\n  type: rocksmq\n# touched\n")
    with pytest.raises(Refused, match=str(layer)):
        check_fresh(loaded, "abc")
    with pytest.raises(Refused, match="playbook"):
        check_fresh(make_plan(tmp_path, layer), "other")


def test_plan_with_another_schema_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(BadInput, match="schema"):
        Plan.load(tmp_path / "plan.json")
    (tmp_path / "plan.json").write_text("{not json")
    with pytest.raises(BadInput, match="not a JSON plan"):
        Plan.load(tmp_path / "plan.json")


def test_secrets_never_reach_plan_or_logs() -> None:
    data = {"uri": "http://root:Milvus@10.0.0.1:19530", "token": "s3cr3t", "nested": {"password": "x"},
            "text": "connect to https://u:p@host/path failed", "token_env": "MILVUS_TOKEN"}
    clean = json.dumps(redact(data))
    assert '"token_env": "MILVUS_TOKEN"' in clean  # the variable's name is no secret
    for secret in ("Milvus@", "s3cr3t", '"x"', "u:p@"):
        assert secret not in clean
    assert "http://***@10.0.0.1:19530" in clean


def test_journal_records_steps_and_survives_reload(tmp_path: Path) -> None:
    path = tmp_path / "state" / "journal.json"
    journal = Journal.create(path, run_id="r1", plan={"x": 1})
    journal.begin("deny-writes")
    journal.remember("deny-writes", original=False)
    journal.finish("deny-writes", 1.5, "denied")
    journal.set_status(DONE)
    again = Journal.load(path)
    assert again is not None
    assert again.is_done("deny-writes") and again.recall("deny-writes", "original") is False
    assert again.status == DONE and again.data["schema_version"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["journal.json"]  # no temp file left


def test_dry_run_journal_writes_nothing(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path / "j.json", run_id="r", plan={}, dry_run=True)
    journal.begin("stop")
    journal.finish("stop", 0.1)
    assert not (tmp_path / "j.json").exists()


def test_atomic_write_keeps_the_old_file_when_a_write_dies(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    write_json_atomic(path, {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"v": object.__new__(type("Unserializable", (), {"__str__": None}))})
    assert json.loads(path.read_text()) == {"v": 1}


def test_lock_refuses_a_second_holder_and_is_freed_by_death(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, %r); from migrator.journal import DeploymentLock; "
        "l = DeploymentLock(__import__('pathlib').Path(%r)); l.acquire(); print('held', flush=True); time.sleep(60)"
    ) % (str(REPO), str(path))], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(Refused, match=f"pid {holder.pid}"):
        DeploymentLock(path).acquire()
    assert DeploymentLock(path).held_by_other() is not None
    holder.kill()
    holder.wait()
    lock = DeploymentLock(path)
    lock.acquire()  # kill -9 of the holder released it
    assert f"pid {os.getpid()}" in path.read_text()
    lock.release()


def test_report_counts_downtime_and_renders(tmp_path: Path) -> None:
    layer = tmp_path / "milvus.yaml"
    layer.write_text("x: 1\n")
    journal = Journal.create(tmp_path / "j.json", run_id="r9", plan=make_plan(tmp_path, layer).to_dict())
    journal.mark("deny_at", 100.0)
    journal.mark("allow_at", 112.5)
    journal.begin("verify")
    journal.remember("verify", counts={"collections": {"default.a": {"rows": 10, "loaded": True}},
                                       "all_answer_strong_s": 3.2, "restart_to_all_strong_s": 30.5})
    journal.finish("verify", 4.0, "counts equal")
    report = build_report(journal)
    assert report["write_downtime_s"] == 12.5
    assert report["counts"] == [{"collection": "default.a", "loaded": True, "before": 10, "after": 10}]
    text = render_markdown(report)
    assert "write-downtime (deny to allow): 12.5 s" in text and "| verify | done |" in text
    assert "restart until every loaded collection answers a Strong query: 30.5 s" in text


def test_playbook_error_names_field_and_line(tmp_path: Path) -> None:
    import string

    source = (REPO / "playbooks" / "sandbox.yaml").read_text()
    names = {"dir", "name", "proxy_port", "metrics_port", "etcd_port", "config_dir", "binary", "bin_dir", "run_dir", "pid_file",
             "stdout_log", "log_dir"}
    good = string.Template(source).substitute({n: "1234" if n.endswith("port") else f"/x/{n}" for n in names})
    bad = good.replace("stop_timeout_s: 2", "stop_timeout_s: -1")
    path = tmp_path / "pb.yaml"
    path.write_text(bad)
    with pytest.raises(BadInput) as error:
        load_playbook(path)
    line = next(n for n, text in enumerate(bad.splitlines(), 1) if "stop_timeout_s: -1" in text)
    assert f"{path}:{line}: runtime.stop_timeout_s" in error.value.message


def test_playbook_unknown_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pb.yaml"
    path.write_text("version: 1\nname: x\nconfig: {dir: /c}\nruntime: {kind: process, argv: [m], cwd: /, "
                    "pid_file: /p, stdout_log: /l}\nmigration: {state_dir: s, backupdir: /b}\n")
    with pytest.raises(BadInput, match="backupdir"):
        load_playbook(path)
