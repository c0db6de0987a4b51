"""`Mq` (migrator/mq.py) is its string everywhere a value leaves the tool: JSON, plans, f-strings, YAML."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

from ruamel.yaml import YAML

from migrator.migration.plan import Plan
from migrator.mq import MIGRATABLE, Mq
from tests.support.plans import make_plan


def test_mq_values_are_milvus_mq_type_strings() -> None:
    assert [str(mq) for mq in Mq] == ["rocksmq", "natsmq"] and set(MIGRATABLE) == {"rocksmq", "natsmq"}
    assert json.dumps({"to": Mq.NATSMQ, Mq.ROCKSMQ: 1}) == '{"to": "natsmq", "rocksmq": 1}'
    assert f"{Mq.NATSMQ}:{Mq.ROCKSMQ!s}" == "natsmq:rocksmq" and Mq("natsmq") is Mq.NATSMQ
    assert "natsmq" in MIGRATABLE and "kafka" not in MIGRATABLE


def test_a_plan_made_with_mq_members_saves_the_same_bytes_as_with_strings(tmp_path: Path) -> None:
    layer = tmp_path / "milvus.yaml"
    layer.write_text("mq:\n  type: rocksmq\n")
    with_strings = make_plan(tmp_path, layer)
    with_members = make_plan(tmp_path, layer)
    with_members.source_mq, with_members.target_mq = Mq.ROCKSMQ, Mq.NATSMQ
    with_members.changes = {"mq.type": Mq.NATSMQ}
    assert json.dumps(with_members.to_dict()) == json.dumps(with_strings.to_dict())
    with_members.save(tmp_path / "plan.json")
    assert Plan.load(tmp_path / "plan.json").to_dict() == with_strings.to_dict()


def test_the_kubernetes_change_for_an_mq_member_is_plain_yaml(tmp_path: Path) -> None:
    from migrator.migration.kubernetes import change_for
    from migrator.playbook import KubernetesRuntimeSpec

    spec = KubernetesRuntimeSpec(kind="kubernetes", manager="helm", release="m", namespace="ns")
    change = change_for(spec, Mq.NATSMQ, {}, tmp_path)
    for text in change.files.values():
        assert "!!" not in text and "Mq" not in text
    out = StringIO()
    YAML().dump(json.loads(json.dumps(change.to_dict())), out)  # its JSON form is plain data too
