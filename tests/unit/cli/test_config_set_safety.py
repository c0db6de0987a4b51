"""Issue 20, finding 15: `config set` never writes what Milvus would not start with, and says that
an MQ switch written by hand skips the whole safe sequence of `apply`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.config import fixture_dir


def config_of(name: str, tmp_path: Path) -> Path:
    target = tmp_path / "configs"
    shutil.copytree(fixture_dir(name), target)
    return target


@pytest.mark.parametrize("version", [[], ["--version", "2.6.1"]])
def test_natsmq_is_never_written_into_a_2_6_config_judged_from_its_shape_or_its_version(tmp_path, version):
    configs = config_of("v2.6-no-natsmq", tmp_path)
    before = (configs / "milvus.yaml").read_bytes()
    result = run_cli(["config", "set", "--config-dir", str(configs), "--to", "natsmq", "--write", *version])
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "2.6" in result.stderr and "natsmq" in result.stderr, result.stderr
    assert (configs / "milvus.yaml").read_bytes() == before


@pytest.mark.parametrize("mq", ["kafka", "pulsar", "woodpecker", "default"])
def test_an_mq_type_this_tool_does_not_migrate_to_is_refused(tmp_path, mq):
    configs = config_of("v2.3-single", tmp_path)
    before = (configs / "milvus.yaml").read_bytes()
    result = run_cli(["config", "set", "--config-dir", str(configs), "--set", f"mq.type={mq}", "--write"])
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "apply" in result.stderr and mq in result.stderr, result.stderr
    assert (configs / "milvus.yaml").read_bytes() == before


def test_a_switch_written_by_hand_warns_loudly_that_it_skips_the_safe_sequence(tmp_path):
    configs = config_of("v2.3-single", tmp_path)
    result = run_cli(["config", "set", "--config-dir", str(configs), "--version", "2.3.5", "--to", "natsmq", "--write"])
    assert result.exit_code == 0, result.stderr
    assert "WARNING" in result.stderr and "skips" in result.stderr and "milvus-migrate apply" in result.stderr
    json_result = run_cli(["--output", "json", "config", "set", "--config-dir", str(config_of("v2.3-single", tmp_path / "j")),
                           "--version", "2.3.5", "--to", "natsmq", "--write"])
    assert json_result.exit_code == 0 and "skips" in json_result.json()["warning"]


def test_settings_alone_need_no_warning(tmp_path):
    configs = config_of("v2.3-single", tmp_path)
    result = run_cli(["config", "set", "--config-dir", str(configs), "--set", "natsmq.server.port=4333", "--write"])
    assert result.exit_code == 0, result.stderr
    assert "WARNING" not in result.stderr
