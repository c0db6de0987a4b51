"""Each config fixture of the project (tests/fixtures/config) and the layout trait it captures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from migrator.config import load_layers, plan_edit
from migrator.errors import BadInput
from tests.support.config import changed_lines, fixture_dir

FORCE_DENY = "quotaAndLimits.limitWriting.forceDeny"
STORE_DIR = "natsmq.server.storeDir"


def copy_of(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(fixture_dir(name), target)
    return target


def line_of(path: Path, text: str) -> int:
    """1-based number of the line that is exactly `text` (without its line ending)."""
    lines = [line.rstrip("\r\n") for line in path.read_bytes().decode("utf-8").splitlines()]
    assert lines.count(text) == 1, (path, text)
    return lines.index(text) + 1


def test_2_3_reads_milvus_yaml_only(tmp_path: Path) -> None:
    conf = copy_of("v2.3-single", tmp_path)
    effective = load_layers(conf, "v2.3.5-lite", {}, None)
    assert [layer.name for layer in effective.layers] == ["milvus.yaml"]
    assert effective.get("mq.type").raw == "default" and effective.mq_type() == "rocksmq"
    # The same directory read as a 2.5 Milvus would: the user.yaml beside it wins.
    assert load_layers(conf, "2.5.4", {}, None).mq_type() == "natsmq"


def test_2_3_force_deny_edit_leaves_the_reading_limit_alone(tmp_path: Path) -> None:
    conf = copy_of("v2.3-single", tmp_path)
    edit = plan_edit(load_layers(conf, "v2.3.5-lite", {}, None), {FORCE_DENY: True})
    assert edit.target == conf / "milvus.yaml"
    removed, added = changed_lines(edit.diff)
    assert removed == ["    forceDeny: false"] and added == ["    forceDeny: true"]
    writing = line_of(conf / "milvus.yaml", "  limitWriting:")
    assert edit.text.splitlines()[writing + 1] == "    forceDeny: true"
    reading = line_of(conf / "milvus.yaml", "  limitReading:")
    assert edit.text.splitlines()[reading + 1] == "    forceDeny: false"


def test_2_5_layers_win_in_order_and_other_spellings_override(tmp_path: Path) -> None:
    conf = copy_of("v2.5-layers", tmp_path)
    effective = load_layers(conf, "2.5.4", {}, None)
    assert [layer.name for layer in effective.layers] == ["milvus.yaml", "default.yaml", "user.yaml"]
    mq_type = effective.get("mq.type")
    assert mq_type.raw == "rocksmq" and mq_type.source.name == str(conf / "default.yaml")
    store = effective.get(STORE_DIR)
    assert store.value == "/data/milvus/nats"
    assert (store.source.name, store.source.line) == (str(conf / "user.yaml"), line_of(conf / "user.yaml", "    storedir: /data/milvus/nats # on the big disk"))
    assert effective.get(FORCE_DENY).source.name == str(conf / "user.yaml")
    # The environment beats every file, whatever the spelling.
    assert load_layers(conf, "2.5.4", {"NATSMQ_SERVER_STOREDIR": "/env"}, None).get(STORE_DIR).value == "/env"


def test_2_5_edit_goes_to_user_yaml_on_its_own_spelling(tmp_path: Path) -> None:
    conf = copy_of("v2.5-layers", tmp_path)
    edit = plan_edit(load_layers(conf, "2.5.4", {}, None), {STORE_DIR: "/nvme/nats", FORCE_DENY: True})
    assert edit.target == conf / "user.yaml"
    removed, added = changed_lines(edit.diff)
    assert removed == ["    storedir: /data/milvus/nats # on the big disk", "    forcedeny: false"]
    assert added == ["    storedir: /nvme/nats # on the big disk", "    forcedeny: true"]
    # No second spelling added beside the first: the edit rewrote the lines that were there.
    assert [line.split(":")[0].strip() for line in edit.text.splitlines() if not line.lstrip().startswith("#")] == \
        [line.split(":")[0].strip() for line in (conf / "user.yaml").read_text().splitlines() if not line.lstrip().startswith("#")]
    (conf / "user.yaml").write_text(edit.text, encoding="utf-8")
    again = load_layers(conf, "2.5.4", {}, None)
    assert again.get(STORE_DIR).value == "/nvme/nats" and again.get(FORCE_DENY).value is True


def test_2_6_has_no_natsmq(tmp_path: Path) -> None:
    conf = copy_of("v2.6-no-natsmq", tmp_path)
    effective = load_layers(conf, "2.6.0", {}, None)
    assert effective.mq_type() == "rocksmq"
    assert effective.get("natsmq.server.port").source.kind == "default"
    with pytest.raises(BadInput, match="unknown mq.type 'natsmq'.*woodpecker"):
        plan_edit(effective, {"mq.type": "natsmq"})


def test_crlf_file_stays_crlf_without_a_final_newline(tmp_path: Path) -> None:
    conf = copy_of("crlf", tmp_path)
    original = (conf / "milvus.yaml").read_bytes().decode("utf-8")
    assert original.count("\r\n") == original.count("\n") and not original.endswith("\n")
    edit = plan_edit(load_layers(conf, "2.5", {}, None), {"mq.type": "natsmq", FORCE_DENY: True})
    assert edit.text.count("\r\n") == edit.text.count("\n") == original.count("\n")
    assert edit.text.endswith("    forceDeny: true") and "  type: natsmq # picked by hand\r\n" in edit.text
    assert edit.diff.rstrip("\n").endswith("\\ No newline at end of file")


def test_comments_are_neither_keys_nor_values(tmp_path: Path) -> None:
    conf = copy_of("comments", tmp_path)
    path = conf / "milvus.yaml"
    effective = load_layers(conf, "2.5", {}, None)
    assert effective.get("mq.type").source.line == line_of(path, "  type: rocksmq # set explicitly, not `default`")
    assert effective.get("natsmq.server.port").value == 4222
    assert effective.get(STORE_DIR).value == "/var/lib/milvus/nats#store"
    assert effective.get("natsmq.server.monitor.logFile").value == "/var/log/milvus/nats: main.log"
    edit = plan_edit(effective, {"mq.type": "natsmq", "natsmq.server.port": 4333, FORCE_DENY: True})
    removed, added = changed_lines(edit.diff)
    assert removed == ["  type: rocksmq # set explicitly, not `default`",
                       '    port: 4222 # "port: 5555" in a comment is not a value',
                       "    forceDeny: false    # flipped by milvus-migrate during a migration"]
    assert added == ["  type: natsmq # set explicitly, not `default`",
                     '    port: 4333 # "port: 5555" in a comment is not a value',
                     "    forceDeny: true    # flipped by milvus-migrate during a migration"]
    # Every comment line, the commented-out keys included, is still there as it was.
    comments = [line for line in path.read_text(encoding="utf-8").splitlines() if line.lstrip().startswith("#")]
    assert comments == [line for line in edit.text.splitlines() if line.lstrip().startswith("#")]
