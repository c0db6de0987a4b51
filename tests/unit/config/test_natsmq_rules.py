"""natsmq (and rocksmq, for the way back) rules: each a finding with a level and the key."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from migrator.config import load_layers, natsmq_findings

MILVUS = "mq:\n  type: rocksmq\nrocksmq:\n  path: {rocks}\nnatsmq:\n  server:\n    storeDir: {store}\n    monitor:\n      logFile: {log}\n"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "milvus.yaml").write_text(
        MILVUS.format(rocks=tmp_path / "rdb", store=tmp_path / "nats", log=tmp_path / "logs" / "nats.log")
    )
    return tmp_path / "conf"


def _errors(config_dir: Path, changes: dict[str, object], target: str = "natsmq") -> dict[str, str]:
    findings = natsmq_findings(load_layers(config_dir, None, {}, None), changes, target, port_is_free=lambda port: True)
    return {f.key: f.message for f in findings if f.level == "error"}


def test_defaults_are_fine(config_dir: Path) -> None:
    assert _errors(config_dir, {"mq.type": "natsmq"}) == {}


@pytest.mark.parametrize(
    "changes, key, words",
    [
        ({"natsmq.server.port": 0}, "natsmq.server.port", "not a port"),
        ({"natsmq.server.port": 70000}, "natsmq.server.port", "not a port"),
        ({"natsmq.server.storeDir": "relative/nats"}, "natsmq.server.storeDir", "absolute"),
        ({"natsmq.server.maxPayload": 1048576}, "natsmq.server.maxPayload", "below 5242880"),
        ({"natsmq.server.maxPayload": 9000000, "natsmq.server.maxPending": 8388608}, "natsmq.server.maxPayload", "above maxPending"),
        ({"natsmq.server.initializeTimeout": 0}, "natsmq.server.initializeTimeout", "> 0"),
        ({"natsmq.server.retention.maxAge": -1}, "natsmq.server.retention.maxAge", "> 0"),
        ({"natsmq.server.retention.maxBytes": 0}, "natsmq.server.retention.maxBytes", "positive"),
        ({"natsmq.server.retention.maxMsgs": -5}, "natsmq.server.retention.maxMsgs", "positive"),
    ],
)
def test_each_error_rule(config_dir: Path, changes: dict[str, object], key: str, words: str) -> None:
    assert words in _errors(config_dir, changes)[key]


def test_port_minus_one_is_not_probed_and_a_taken_port_is_an_error(config_dir: Path) -> None:
    effective = load_layers(config_dir, None, {}, None)
    findings = natsmq_findings(effective, {"natsmq.server.port": -1}, "natsmq", port_is_free=lambda p: pytest.fail("probed"))
    assert [f for f in findings if f.level == "error"] == []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        findings = natsmq_findings(effective, {"natsmq.server.port": port}, "natsmq")
    errors = [f for f in findings if f.level == "error"]
    assert [f.key for f in errors] == ["natsmq.server.port"] and "taken" in errors[0].message


def test_max_payload_must_also_cover_pulsar_max_message_size(config_dir: Path) -> None:
    (config_dir / "user.yaml").write_text("pulsar:\n  maxMessageSize: 10485760\n")
    assert "10485760" in _errors(config_dir, {})["natsmq.server.maxPayload"]


def test_small_disk_is_a_warning(config_dir: Path) -> None:
    findings = natsmq_findings(load_layers(config_dir, None, {}, None), {"natsmq.server.maxFileStore": 2**60}, "natsmq",
                               port_is_free=lambda p: True)
    assert [(f.level, f.key) for f in findings if "maxFileStore" in f.message] == [("warning", "natsmq.server.storeDir")]


def test_unwritable_paths(config_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    errors = _errors(config_dir, {"natsmq.server.storeDir": str(blocker / "nats"), "natsmq.server.monitor.logFile": str(blocker / "n.log")})
    assert "not a directory" in errors["natsmq.server.storeDir"] and "not a directory" in errors["natsmq.server.monitor.logFile"]


def test_misspelled_keys_are_named_with_the_nearest(config_dir: Path) -> None:
    (config_dir / "user.yaml").write_text("natsmq:\n  server:\n    storedir: /x\n    maxPayLoad: 8388608\n    storDir: /y\n")
    findings = natsmq_findings(load_layers(config_dir, None, {}, None), {}, "natsmq", port_is_free=lambda p: True)
    by_key = {f.key: f for f in findings}
    assert by_key["natsmq.server.storDir"].level == "error"
    assert "did you mean natsmq.server.storeDir" in by_key["natsmq.server.storDir"].message
    assert "user.yaml:5:5" in by_key["natsmq.server.storDir"].message
    # Milvus matches keys case-insensitively: storedir works, but is worth a warning.
    assert by_key["natsmq.server.storedir"].level == "warning" and "natsmq.server.storeDir" in by_key["natsmq.server.storedir"].message


def test_reverse_target_rules(config_dir: Path, tmp_path: Path) -> None:
    assert _errors(config_dir, {"mq.type": "rocksmq"}, "rocksmq") == {}
    (config_dir / "user.yaml").write_text(f"rocksmq:\n  path: {tmp_path / 'nats' / 'rdb'}\n")
    assert "inside natsmq.server.storeDir" in _errors(config_dir, {}, "rocksmq")["rocksmq.path"]
    (config_dir / "user.yaml").write_text("rocksmq:\n  path:\n")
    assert "empty" in _errors(config_dir, {}, "rocksmq")["rocksmq.path"]
