"""The edit changes exactly the lines it must: on the project's fixtures, the wheel's template and,
when it sits beside the clone, the shared corpus of real milvus.yaml files."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.config import load_layers, plan_edit
from migrator.config.edit import edit_text
from migrator.config.keys import typed_value
from migrator.config.yamldoc import parse_document
from migrator.errors import BadInput
from tests.support.config import (
    FIXTURE_DIRS,
    changed_lines,
    milvus_yaml_sources,
    wheel_template_text,
)

SOURCES = milvus_yaml_sources()

EDITS = {
    "mq.type": "natsmq",
    "natsmq.server.port": 4333,
    "natsmq.server.storeDir": "/data/nats store",
    "natsmq.server.retention.maxBytes": 1073741824,
    "quotaAndLimits.limitWriting.forceDeny": True,
}


def test_every_fixture_layout_is_there() -> None:
    assert {path.name for path in FIXTURE_DIRS} >= {"v2.3-single", "v2.5-layers", "v2.6-no-natsmq", "crlf", "comments"}


def _source(text: str | None) -> str:
    return text if text is not None else wheel_template_text()


def _leaves_of(text: str, keys: list[str]) -> dict[str, tuple[str, str]]:
    """key -> (its line without line ending, its raw value) for the keys present in `text`."""
    document = parse_document(Path("x.yaml"), text)
    lines = [line.rstrip("\r\n") for line in document.lines]
    return {leaf.key: (lines[leaf.line - 1], leaf.raw) for leaf in document.leaves() if leaf.key in keys}


@pytest.mark.parametrize("name, text", SOURCES)
def test_edit_changes_exactly_the_edited_lines(tmp_path: Path, name: str, text: str | None) -> None:
    original = _source(text)
    (tmp_path / "milvus.yaml").write_bytes(original.encode("utf-8"))
    edit = plan_edit(load_layers(tmp_path, "2.5.4", {}, None), EDITS)

    removed, added = changed_lines(edit.diff)
    before = _leaves_of(original, list(EDITS))
    present = [key for key in EDITS if key in before]
    assert sorted(removed) == sorted(before[key][0] for key in present)
    # Each replaced line is the old line with only the value swapped: key, indent and comment stay.
    after = _leaves_of(edit.text, list(EDITS))
    for key in present:
        old, new = before[key][0], after[key][0]
        assert new.split(":")[0] == old.split(":")[0]
        assert ("#" in old) == ("#" in new) and old.partition(" #")[2] == new.partition(" #")[2]
    missing = [key for key in EDITS if key not in before]
    block = []
    if "natsmq.server.port" in missing:  # no natsmq section (2.6): it comes as one block after rocksmq's
        block = ["", "natsmq:", "  server:", "    port: 4333", "    storeDir: /data/nats store", "    retention:", "      maxBytes: 1073741824"]
        assert "\n".join(block) in "\n".join(added)
        assert edit.text.index("\nnatsmq:") > edit.text.index("\nrocksmq:")
    elif missing:  # a natsmq section without some keys: each comes in under its parent
        assert set(missing) <= {"natsmq.server.retention.maxBytes"}, missing
        block = [line for line in added if line not in [after[key][0] for key in present]]
        assert block and all("maxBytes: 1073741824" in line or line.strip().endswith(":") for line in block), block
    assert sorted(added) == sorted([after[key][0] for key in present] + block)
    # Everything else is byte-for-byte: editing the values back gives the original text.
    if not missing:
        document = parse_document(tmp_path / "milvus.yaml", edit.text)
        back = {key: typed_value(key, raw) for key, (_, raw) in before.items()}
        back = {key: None if value == "" else value for key, value in back.items()}
        assert edit_text(document, back) == original


@pytest.mark.parametrize("name, text", SOURCES)
def test_crlf_and_missing_final_newline_are_kept(tmp_path: Path, name: str, text: str | None) -> None:
    original = _source(text).replace("\r\n", "\n").replace("\n", "\r\n").rstrip("\r\n")
    (tmp_path / "milvus.yaml").write_bytes(original.encode("utf-8"))
    edit = plan_edit(load_layers(tmp_path, "2.5", {}, None), {"mq.type": "natsmq", "natsmq.server.port": 4333})
    assert not edit.text.endswith("\n")
    assert edit.text.count("\r\n") == original.count("\r\n") + (0 if "natsmq:" in original else 4)
    assert "\n" not in edit.text.replace("\r\n", "")
    removed, _added = changed_lines(edit.diff)
    assert len(removed) == (2 if "natsmq:" in original else 1)


def test_empty_value_keeps_its_comment_spacing(tmp_path: Path) -> None:
    text = "natsmq:\n  server:\n    retention:\n      maxBytes:  # unlimited\n      maxMsgs:\n"
    (tmp_path / "user.yaml").write_text(text)
    edit = plan_edit(load_layers(tmp_path, None, {}, None), {"natsmq.server.retention.maxBytes": 10, "natsmq.server.retention.maxMsgs": 5})
    assert edit.text == "natsmq:\n  server:\n    retention:\n      maxBytes: 10  # unlimited\n      maxMsgs: 5\n"
    back = edit_text(parse_document(tmp_path / "user.yaml", edit.text), {"natsmq.server.retention.maxBytes": None, "natsmq.server.retention.maxMsgs": None})
    assert back == text


def test_quotes_are_kept_and_strings_quoted_when_needed(tmp_path: Path) -> None:
    text = "natsmq:\n  server:\n    storeDir: '/var/lib/milvus/nats' # where\n    monitor:\n      logFile: /tmp/n.log\n"
    (tmp_path / "milvus.yaml").write_text(text)
    edit = plan_edit(
        load_layers(tmp_path, None, {}, None),
        {"natsmq.server.storeDir": "/data/it's", "natsmq.server.monitor.logFile": "/tmp/a: b.log"},
    )
    assert "    storeDir: '/data/it''s' # where\n" in edit.text
    assert '      logFile: "/tmp/a: b.log"\n' in edit.text


def test_missing_keys_go_where_a_reader_looks(tmp_path: Path) -> None:
    text = (
        "# user overrides\n"
        "mq:\n"
        "    enablePursuitMode: true\n"
        "natsmq:\n"
        "    server:\n"
        "        port: 4222\n"
        "        maxPending: 67108864\n"
        "\n"
        "quotaAndLimits:\n"
        "    enabled: true\n"
    )
    (tmp_path / "user.yaml").write_text(text)
    edit = plan_edit(
        load_layers(tmp_path, None, {}, None),
        {"mq.type": "natsmq", "natsmq.server.maxPayload": 8388608, "quotaAndLimits.limitWriting.forceDeny": True},
    )
    assert edit.text == (
        "# user overrides\n"
        "mq:\n"
        "    type: natsmq\n"
        "    enablePursuitMode: true\n"
        "natsmq:\n"
        "    server:\n"
        "        port: 4222\n"
        "        maxPayload: 8388608\n"
        "        maxPending: 67108864\n"
        "\n"
        "quotaAndLimits:\n"
        "    enabled: true\n"
        "    limitWriting:\n"
        "        forceDeny: true\n"
    )


def test_empty_user_yaml_gets_the_keys(tmp_path: Path) -> None:
    (tmp_path / "milvus.yaml").write_text("mq:\n  type: default\nrocksmq:\n  path: /r\n")
    (tmp_path / "user.yaml").write_text("# Extra config to override default milvus.yaml\n")
    edit = plan_edit(load_layers(tmp_path, "2.4.13", {}, None), {"quotaAndLimits.limitWriting.forceDeny": True})
    assert edit.layer == "user.yaml"
    assert edit.text == "# Extra config to override default milvus.yaml\nquotaAndLimits:\n  limitWriting:\n    forceDeny: true\n"


def test_the_winning_file_is_edited(tmp_path: Path) -> None:
    (tmp_path / "milvus.yaml").write_text("mq:\n  type: default\nrocksmq:\n  path: /r\n")
    (tmp_path / "user.yaml").write_text("mq:\n  type: rocksmq\n")
    edit = plan_edit(load_layers(tmp_path, "2.4", {}, None), {"mq.type": "natsmq"})
    assert edit.target == tmp_path / "user.yaml" and edit.text == "mq:\n  type: natsmq\n"
    # 2.3 reads milvus.yaml only: user.yaml is not a layer there.
    edit = plan_edit(load_layers(tmp_path, "v2.3.5-lite", {}, None), {"mq.type": "natsmq"})
    assert edit.target == tmp_path / "milvus.yaml"


def test_a_value_already_in_place_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "milvus.yaml").write_text("mq:\n  type: natsmq\n")
    edit = plan_edit(load_layers(tmp_path, None, {}, None), {"mq.type": "natsmq"})
    assert not edit.changed and edit.diff == ""


def test_env_override_is_refused_naming_the_variable(tmp_path: Path) -> None:
    (tmp_path / "milvus.yaml").write_text("mq:\n  type: rocksmq\n")
    effective = load_layers(tmp_path, None, {"MQ_TYPE": "rocksmq", "NATSMQ_SERVER_PORT": "4222"}, None, env_origin="/etc/milvus.env")
    edit = plan_edit(effective, {"mq.type": "natsmq", "natsmq.server.port": 4222})
    assert [(r.key, r.name, r.origin) for r in edit.refusals] == [("mq.type", "MQ_TYPE", "/etc/milvus.env")]
    with pytest.raises(Exception) as raised:
        edit.raise_if_refused()
    assert raised.value.exit_code == 3 and "MQ_TYPE" in raised.value.message


@pytest.mark.parametrize(
    "text, message",
    [
        ("natsmq:\n  server:\n    port: 1\n    storedir: /a\n    storeDir: /b\n", "spelled twice"),
        ("natsmq: {server: {port: 1}}\n", "{...} mapping"),
        ("natsmq:\n  server:\n    storeDir: >\n      /a\n      b\n", "spans several lines"),
        ("natsmq:\n  server: 5\n", "expected a section"),
    ],
)
def test_what_cannot_be_edited_safely_is_bad_input(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "milvus.yaml").write_text(text)
    with pytest.raises(BadInput, match=message):  # a key spelled twice is refused as soon as it is read
        effective = load_layers(tmp_path, None, {}, None)
        plan_edit(effective, {"natsmq.server.storeDir": "/c", "natsmq.server.maxPending": 67108864})


def test_unknown_key_and_bad_value_are_bad_input(tmp_path: Path) -> None:
    (tmp_path / "milvus.yaml").write_text("mq:\n  type: rocksmq\n")
    effective = load_layers(tmp_path, None, {}, None)
    with pytest.raises(BadInput, match="not a key"):
        plan_edit(effective, {"natsmq.server.storDir": "/x"})
    with pytest.raises(BadInput, match="integer"):
        plan_edit(effective, {"natsmq.server.port": "abc"})
    with pytest.raises(BadInput, match="unknown mq.type"):
        plan_edit(effective, {"mq.type": "nats"})


def test_an_edit_that_went_wrong_is_refused_and_nothing_is_written(tmp_path: Path, monkeypatch) -> None:
    """The edit is read back and compared key by key: a line editor that slipped (here, a fault
    injected into it that also flips forceDeny) is caught before a byte reaches the file."""
    import migrator.config.edit as edit
    from tests.support.cli import run_cli

    config = tmp_path / "configs"
    config.mkdir()
    original = "mq:\n  type: rocksmq\nquotaAndLimits:\n  limitWriting:\n    forceDeny: false\n"
    (config / "milvus.yaml").write_text(original)
    line_edit = edit._apply

    def slipped(document, path, value):
        return line_edit(document, path, value).replace("forceDeny: false", "forceDeny: true")

    monkeypatch.setattr(edit, "_apply", slipped)
    result = run_cli(["config", "set", "--config-dir", str(config), "--version", "2.3.5", "--to", "natsmq", "--write"])
    assert result.exit_code == 2, result.stderr
    assert "the edit could not be verified" in result.stderr and "forcedeny" in result.stderr.lower()
    assert (config / "milvus.yaml").read_text() == original
    assert [p.name for p in config.iterdir()] == ["milvus.yaml"]
