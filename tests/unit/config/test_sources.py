"""Every source that sets mq.type or a natsmq key, and why an edit would not take effect: on the
2.3, 2.5 and 2.6 config shapes under tests/fixtures/road/ (an etcd stand-in serves the etcd keys;
tests/integration/test_road_live.py reads a real one)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from migrator.config import EtcdSource, load_layers
from migrator.config.layers import PIN_NOTE
from migrator.errors import BadInput, ExitCode
from tests.support.cli import run_cli
from tests.support.etcd import fake_etcd

ROAD = Path(__file__).parents[2] / "fixtures" / "road"


def _sources(effective, key: str) -> list[tuple[str, str, str]]:
    """(where, raw, status) of every source of `key`, in the order mq_settings gives them."""
    return [(str(s.source), s.raw, s.status) for s in effective.mq_settings() if s.key == key]


def test_2_3_reads_milvus_yaml_only_so_user_yaml_is_listed_as_ignored() -> None:
    effective = load_layers(ROAD / "2.3", "v2.3.5-lite", {}, None)
    assert effective.mq_type() == "natsmq"
    sources = [s for s in effective.mq_settings() if s.key == "mq.type"]
    assert [(s.source.name, s.raw, s.status) for s in sources] == [
        (str(ROAD / "2.3" / "milvus.yaml"), "natsmq", "wins"),
        (str(ROAD / "2.3" / "user.yaml"), "rocksmq", "ignored"),
    ]
    assert "Milvus v2.3.5-lite does not read user.yaml (it reads milvus.yaml)" in sources[1].note


def test_env_beats_files_and_a_milvus_underscore_variable_sets_nothing() -> None:
    environ = {"MQ_TYPE": "rocksmq", "MILVUS_MQ_TYPE": "kafka", "NATSMQ_SERVER_PORT": "4333", "PATH": "/bin"}
    effective = load_layers(ROAD / "2.3", "2.3.5", environ, None, env_origin="the unit")
    assert effective.mq_type() == "rocksmq"
    mq = [s for s in effective.mq_settings() if s.key == "mq.type"]
    assert [(s.source.kind, s.source.name, s.status) for s in mq] == [
        ("env", "MQ_TYPE", "wins"),
        ("env", "MILVUS_MQ_TYPE", "ignored"),
        ("file", str(ROAD / "2.3" / "milvus.yaml"), "overridden"),
        ("file", str(ROAD / "2.3" / "user.yaml"), "ignored"),
    ]
    assert "environment variable MQ_TYPE (the unit) wins" in mq[2].note
    assert "not `milvus_`" in mq[1].note
    port = _sources(effective, "natsmq.server.port")
    assert [status for _, _, status in port] == ["wins", "overridden"] and port[0][1] == "4333"
    assert not any(s.source.name == "PATH" for s in effective.mq_settings())


def test_2_5_layers_and_an_active_etcd() -> None:
    keys = {"by-dev/config/natsmq/server/port": "4555", "by-dev/config/mq/type": "rocksmq",
            "by-dev/config/mqtype": "natsmq", "other/config/mq/type": "kafka"}
    with fake_etcd(keys) as endpoint:
        effective = load_layers(ROAD / "2.5", "v2.5.4", {}, EtcdSource(endpoint))
    # mq/type and mqtype format alike; etcd gives them in key order and the later one wins, as in Milvus.
    assert effective.mq_type() == "natsmq"
    mq = _sources(effective, "mq.type")
    assert mq == [
        ("etcd key by-dev/config/mq/type", "rocksmq", "ignored"),
        ("etcd key by-dev/config/mqtype", "natsmq", "wins"),
        (f"{ROAD / '2.5' / 'default.yaml'}:3:3", "natsmq", "overridden"),
        (f"{ROAD / '2.5' / 'milvus.yaml'}:34:3", "default", "overridden"),
    ]
    port = _sources(effective, "natsmq.server.port")
    assert [(raw, status) for _, raw, status in port] == [("4555", "wins"), ("4223", "overridden"),
                                                         ("4222", "overridden")]
    # On 2.3-2.5 the `mqtype` key is what it is to Milvus: an override of mq.type, not a pin.
    assert not any(s.note == PIN_NOTE for s in effective.mq_settings())


def test_2_6_goes_by_the_pin_whatever_the_files_say() -> None:
    with fake_etcd({"by-dev/config/mqtype": "rocksmq"}) as endpoint:
        effective = load_layers(ROAD / "2.6", "v2.6.3", {"MQ_TYPE": "natsmq"}, EtcdSource(endpoint))
    assert effective.mq_type() == "rocksmq" and effective.mq_pin().key == "by-dev/config/mqtype"
    mq = [s for s in effective.mq_settings() if s.key == "mq.type"]
    assert [(s.source.kind, s.raw, s.status) for s in mq] == [
        ("etcd", "rocksmq", "wins"), ("env", "natsmq", "overridden"), ("file", "natsmq", "overridden"),
        ("file", "default", "overridden")]
    assert mq[0].note == PIN_NOTE


def test_2_6_standalone_embed_goes_by_the_pin_too(tmp_path: Path) -> None:
    """With an embedded etcd the config source is off, but 2.6 still pins its MQ in that etcd."""
    config = tmp_path / "configs"
    shutil.copytree(ROAD / "2.6", config)
    milvus_yaml = config / "milvus.yaml"
    milvus_yaml.write_text(milvus_yaml.read_text().replace("embed: false", "embed: true"))
    with fake_etcd({"by-dev/config/mqtype": "woodpecker", "by-dev/config/natsmq/server/port": "1"}) as endpoint:
        effective = load_layers(config, "2.6.0", {}, EtcdSource(endpoint))
    assert effective.etcd == {} and effective.mq_type() == "woodpecker"
    assert [(s.key, s.status) for s in effective.mq_settings() if s.source.kind == "etcd"] == [
        ("mq.type", "wins"), ("natsmq.server.port", "ignored")]


def test_2_6_without_the_pin_is_judged_by_its_files() -> None:
    """No etcd read: user.yaml's natsmq is what a first 2.6 start would panic on."""
    with pytest.raises(BadInput, match=r"user.yaml:3:3: unknown mq.type 'natsmq'.*woodpecker"):
        load_layers(ROAD / "2.6", "2.6.0", {}, None)
    assert load_layers(ROAD / "2.6", "2.6.0", {}, None, check=False).get("woodpecker.storage.type").raw == "local"


def test_an_embedded_etcd_is_read_best_effort_and_listed_as_ignored(tmp_path: Path) -> None:
    with fake_etcd({"by-dev/config/mqtype": "rocksmq", "by-dev/config/natsmq/server/port": "1"}) as endpoint:
        effective = load_layers(ROAD / "2.3", "2.3.5", {}, EtcdSource(endpoint))
    assert effective.mq_type() == "natsmq" and effective.etcd == {}
    assert effective.mq_pin().value == "rocksmq"
    assert [status for _, _, status in _sources(effective, "natsmq.server.port")] == ["ignored", "wins"]
    unreachable = load_layers(ROAD / "2.3", "2.3.5", {}, EtcdSource("127.0.0.1:9", timeout=1))
    assert "its keys could not be read" in unreachable.etcd_state and unreachable.mq_pin() is None


def test_config_show_lists_the_sources_and_the_pin() -> None:
    with fake_etcd({"by-dev/config/mqtype": "woodpecker"}) as endpoint:
        result = run_cli(["--output", "json", "config", "show", "--config-dir", str(ROAD / "2.6"),
                          "--version", "2.6.1", "--etcd", endpoint], environ={})
    assert result.exit_code == ExitCode.OK, result.stderr
    data = result.json()
    assert data["mq_type"] == "woodpecker"
    assert data["mq_pin"] == {"key": "by-dev/config/mqtype", "value": "woodpecker", "note": PIN_NOTE}
    assert [(s["where"]["kind"], s["status"]) for s in data["sources"] if s["key"] == "mq.type"] == [
        ("etcd", "wins"), ("file", "overridden"), ("file", "overridden")]

    with fake_etcd({"by-dev/config/mqtype": "woodpecker"}) as endpoint:
        text = run_cli(["config", "show", "--config-dir", str(ROAD / "2.6"), "--version", "2.6.1", "--etcd", endpoint],
                       environ={})
    assert "2.6 MQ pin by-dev/config/mqtype = woodpecker" in text.stdout
    assert "who sets mq.type and natsmq.*" in text.stdout and "[overridden: etcd key by-dev/config/mqtype wins]" in text.stdout


def test_config_show_on_2_6_without_etcd_says_the_pin_was_not_read(tmp_path: Path) -> None:
    config = tmp_path / "configs"
    shutil.copytree(ROAD / "2.6", config)
    (config / "user.yaml").write_text("woodpecker:\n  storage:\n    type: local\n")
    result = run_cli(["config", "show", "--config-dir", str(config), "--version", "2.6.0"], environ={})
    assert result.exit_code == ExitCode.OK, result.stderr
    assert "2.6 MQ pin by-dev/config/mqtype = (not read)" in result.stdout


@pytest.mark.parametrize("change", [["--to", "rocksmq"], ["--set", "natsmq.server.port=4333"]])
def test_mq_edits_on_2_6_are_refused_naming_the_pin(change: list[str], tmp_path: Path) -> None:
    config = tmp_path / "configs"
    shutil.copytree(ROAD / "2.6", config)
    before = {path.name: path.read_bytes() for path in config.iterdir()}
    with fake_etcd({"by-dev/config/mqtype": "rocksmq"}) as endpoint:
        result = run_cli(["config", "set", "--config-dir", str(config), "--version", "v2.6.0", "--etcd", endpoint,
                          "--write", *change], environ={})
    assert result.exit_code == ExitCode.REFUSED
    assert "pins its MQ in etcd at by-dev/config/mqtype (it holds 'rocksmq')" in result.stderr
    assert "AlterWAL" in result.stderr and "Traceback" not in result.stderr
    assert {path.name: path.read_bytes() for path in config.iterdir()} == before


def test_force_deny_alone_may_still_be_written_on_2_6(tmp_path: Path) -> None:
    config = tmp_path / "configs"
    shutil.copytree(ROAD / "2.6", config)
    with fake_etcd({"by-dev/config/mqtype": "rocksmq"}) as endpoint:
        result = run_cli(["config", "diff", "--config-dir", str(config), "--version", "2.6.0", "--etcd", endpoint,
                          "--to", "rocksmq"], environ={})
        assert result.exit_code == ExitCode.REFUSED
        allowed = run_cli(["config", "set", "--config-dir", str(config), "--version", "2.6.0", "--etcd", endpoint,
                           "--set", "quotaAndLimits.limitWriting.forceDeny=true"], environ={})
    assert allowed.exit_code == ExitCode.OK, allowed.stderr
    assert "+    forceDeny: true" in allowed.stdout
