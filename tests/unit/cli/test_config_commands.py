"""`config show|diff|set` in-process: output, exit codes, nothing written unless asked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.config import fixture_dir


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """The 2.5 fixture's milvus.yaml alone, its NATS store inside tmp_path."""
    conf = tmp_path / "configs"
    conf.mkdir()
    text = (fixture_dir("v2.5-layers") / "milvus.yaml").read_text(encoding="utf-8")
    (conf / "milvus.yaml").write_text(text.replace("/var/lib/milvus/nats", str(tmp_path / "nats")), encoding="utf-8")
    return conf


def test_show_json_names_sources(config_dir: Path) -> None:
    result = run_cli(["--output", "json", "config", "show", "--config-dir", str(config_dir)], environ={"NATSMQ_SERVER_PORT": "4333"})
    assert result.exit_code == 0, result.stderr
    data = result.json()
    settings = {item["key"]: item for item in data["settings"]}
    assert data["mq_type"] == "rocksmq"
    line = (config_dir / "milvus.yaml").read_text().splitlines().index("  type: default") + 1
    assert settings["mq.type"]["source"] == f"{config_dir / 'milvus.yaml'}:{line}:3"
    assert settings["natsmq.server.port"]["value"] == 4333
    assert settings["natsmq.server.port"]["where"] == {"kind": "env", "name": "NATSMQ_SERVER_PORT", "origin": "environment of this shell"}


def test_show_text_with_env_file(config_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "milvus.env").write_text("MQ_TYPE=natsmq\n")
    result = run_cli(["config", "show", "--config-dir", str(config_dir), "--env-file", str(tmp_path / "milvus.env")], environ={})
    assert result.exit_code == 0, result.stderr
    assert "mq in use: natsmq" in result.stdout and f"environment variable MQ_TYPE ({tmp_path / 'milvus.env'})" in result.stdout


def test_diff_writes_nothing(config_dir: Path) -> None:
    before = (config_dir / "milvus.yaml").read_bytes()
    result = run_cli(["config", "diff", "--config-dir", str(config_dir), "--to", "natsmq", "--set", "natsmq.server.port=-1"], environ={})
    assert result.exit_code == 0, result.stderr
    assert "-  type: default\n+  type: natsmq\n" in result.stdout and "+    port: -1 # Listening" in result.stdout
    assert (config_dir / "milvus.yaml").read_bytes() == before


def test_diff_refused_by_env_exits_3(config_dir: Path) -> None:
    result = run_cli(["config", "diff", "--config-dir", str(config_dir), "--to", "natsmq"], environ={"MQ_TYPE": "rocksmq"})
    assert result.exit_code == 3 and "MQ_TYPE" in result.stderr


def test_set_write_keeps_original(config_dir: Path, tmp_path: Path) -> None:
    before = (config_dir / "milvus.yaml").read_bytes()
    args = ["--output", "json", "config", "set", "--config-dir", str(config_dir), "--to", "natsmq",
            "--set", "natsmq.server.port=-1", "--write", "--backup-dir", str(tmp_path / "journal")]
    result = run_cli(args, environ={})
    assert result.exit_code == 0, result.stderr
    written = result.json()["written"]
    assert Path(written["original"]).read_bytes() == before
    assert written["sha256"] == hashlib.sha256(before).hexdigest()
    assert "  type: natsmq\n" in (config_dir / "milvus.yaml").read_text()


def test_set_without_write_writes_nothing(config_dir: Path) -> None:
    before = (config_dir / "milvus.yaml").read_bytes()
    result = run_cli(["config", "set", "--config-dir", str(config_dir), "--set", "quotaAndLimits.limitWriting.forceDeny=true"], environ={})
    assert result.exit_code == 0 and "not written" in result.stderr
    assert (config_dir / "milvus.yaml").read_bytes() == before


@pytest.mark.parametrize(
    "args, words",
    [
        (["--set", "natsmq.server.storDir=/x"], "did you mean natsmq.server.storeDir"),
        (["--set", "natsmq.server.port=abc"], "must be an integer"),
        (["--set", "natsmq.server.port"], "expected KEY=VALUE"),
    ],
)
def test_bad_set_exits_2(config_dir: Path, args: list[str], words: str) -> None:
    before = (config_dir / "milvus.yaml").read_bytes()
    result = run_cli(["config", "set", "--config-dir", str(config_dir), "--write", *args], environ={})
    assert result.exit_code == 2 and words in result.stderr
    assert (config_dir / "milvus.yaml").read_bytes() == before


def test_bad_config_exits_2(tmp_path: Path) -> None:
    result = run_cli(["config", "show", "--config-dir", str(tmp_path / "missing")], environ={})
    assert result.exit_code == 2 and "config dir not found" in result.stderr
    (tmp_path / "milvus.yaml").write_text("mq:\n  type: rocksmq\n  type: natsmq\n")
    result = run_cli(["config", "diff", "--config-dir", str(tmp_path), "--to", "natsmq"], environ={})
    assert result.exit_code == 2 and "milvus.yaml:3:3: duplicate key mq.type" in result.stderr
