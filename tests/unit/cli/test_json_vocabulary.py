"""Issue 20, finding 18: one vocabulary for the JSON of every command (docs/json.md).

The MQs of a run are always `source_mq` and `target_mq`; the file an edit writes is always
`config_target`; no command says `from`, `to`, `direction` or a bare `target` for them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from migrator.migration.journal import Journal, RunStatus
from migrator.playbook import load_playbook
from tests.support import REPO
from tests.support.cli import run_cli
from tests.support.config import fixture_dir
from tests.support.plans import fitting_plan
from tests.support.playbooks import offline_playbook

OLD_WORDS = {"from", "to", "direction", "target"}


def keys_of(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*(keys_of(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_of(v) for v in value)) if value else set()
    return set()


def test_status_names_the_mqs_source_mq_and_target_mq(tmp_path):
    playbook = offline_playbook(tmp_path, running=True)
    journal = Journal.create(tmp_path / "state" / "journal.json", run_id="20261130T000000Z",
                             plan=fitting_plan(load_playbook(playbook)).to_dict())
    journal.set_status(RunStatus.DONE)
    document = run_cli(["--output", "json", "status", "-p", str(playbook)]).json()
    assert document["source_mq"] == "rocksmq" and document["target_mq"] == "natsmq"
    assert not keys_of(document) & OLD_WORDS, keys_of(document) & OLD_WORDS


def test_a_report_names_the_mqs_source_mq_and_target_mq(tmp_path):
    from migrator.migration.report import build_report

    playbook = offline_playbook(tmp_path)
    journal = Journal.create(tmp_path / "state" / "journal.json", run_id="20261130T000000Z",
                             plan=fitting_plan(load_playbook(playbook)).to_dict())
    journal.set_status(RunStatus.DONE)
    report = build_report(journal)
    assert report["source_mq"] == "rocksmq" and report["target_mq"] == "natsmq"
    assert not keys_of(report) & OLD_WORDS


def test_config_diff_and_set_name_the_file_config_target(tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(fixture_dir("v2.3-single"), configs)
    for command in (["config", "diff", "--to", "natsmq"], ["config", "set", "--to", "natsmq"]):
        document = run_cli(["--output", "json", *command, "--config-dir", str(configs), "--version", "2.3.5"]).json()
        assert document["config_target"] == str(configs / "milvus.yaml"), document
        assert not keys_of(document) & OLD_WORDS, keys_of(document) & OLD_WORDS


def test_a_kubernetes_change_names_its_mq_target_mq():
    from migrator.migration.kubernetes import change_for

    spec = load_playbook(REPO / "playbooks" / "kubernetes.yaml").spec
    change = change_for(spec.runtime, "natsmq", spec.migration.natsmq, Path("/tmp/out")).to_dict()
    assert change["target_mq"] == "natsmq" and "target" not in change


def test_docs_json_lists_the_vocabulary():
    text = (REPO / "docs" / "json.md").read_text()
    for key in ("source_mq", "target_mq", "config_target", "schema_version", "exit_code", "run_id"):
        assert f"`{key}`" in text, key


def test_a_kubernetes_change_in_the_old_words_is_bad_input_not_a_crash():
    import pytest

    from migrator.errors import BadInput
    from migrator.migration.kubernetes import KubernetesChange

    with pytest.raises(BadInput, match="target_mq"):
        KubernetesChange.from_dict({"target": "natsmq", "files": {}, "commands": []})
