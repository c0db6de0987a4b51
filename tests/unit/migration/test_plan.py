"""Pure parts of the migration: journal, lock, plan file and staleness, report, playbook errors, secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrator.errors import BadInput, Refused
from migrator.migration.plan import Plan, check_fresh
from migrator.util.redact import redact
from tests.support.plans import make_plan, write_playbook


def test_plan_round_trips_and_detects_a_changed_layer(tmp_path: Path) -> None:
    layer = tmp_path / "milvus.yaml"
    layer.write_text("mq:\n  type: rocksmq\n")
    playbook = write_playbook(tmp_path)
    plan = make_plan(tmp_path, layer)
    plan.playbook_sha256 = playbook.sha256
    plan.save(tmp_path / "plan.json")
    loaded = Plan.load(tmp_path / "plan.json")
    assert loaded == plan
    check_fresh(loaded, playbook)
    layer.write_text("mq:\n  type: rocksmq\n# touched\n")
    with pytest.raises(Refused, match=str(layer)):
        check_fresh(loaded, playbook)
    other = make_plan(tmp_path, layer)
    other.playbook_sha256 = "other"
    with pytest.raises(Refused, match="playbook"):
        check_fresh(other, playbook)


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
