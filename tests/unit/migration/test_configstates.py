"""The config states of a run (migration/configstates.py), read back as Milvus would read them: the
isolated states move the client port to the private one and turn the HTTP API off; the held ones
hold automatic compaction off; the final state is the original plus the switch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from migrator.config import load_layers
from migrator.migration.configstates import (
    FINAL_TARGET,
    HELD_SOURCE,
    HELD_TARGET,
    ISOLATED_SOURCE,
    ISOLATED_TARGET,
    ORIGINAL,
    ConfigStates,
)
from tests.support.config import fixture_dir

PRIVATE_PORT = 23456
COMPACTION = "dataCoord.compaction.enableAutoCompaction"
KEYS = ("mq.type", "proxy.port", "proxy.http.enabled", COMPACTION)


def effective_values(config_dir: Path, version: str) -> dict[str, object]:
    effective = load_layers(config_dir, version, {}, None)
    return {key: effective.get(key).value for key in KEYS}


@pytest.mark.parametrize(("fixture", "version"), [("v2.3-single", "2.3.5"), ("v2.5-layers", "2.5.4")])
def test_each_state_is_what_milvus_reads(tmp_path: Path, fixture: str, version: str) -> None:
    config_dir = tmp_path / "configs"
    shutil.copytree(fixture_dir(fixture), config_dir)
    found = effective_values(config_dir, version)
    assert found["mq.type"] != "natsmq" and found["proxy.port"] != PRIVATE_PORT and found["proxy.http.enabled"] is True
    assert found[COMPACTION] is True

    states = ConfigStates.compute(load_layers(config_dir, version, {}, None), {"mq.type": "natsmq"}, PRIVATE_PORT)
    seen = {}
    for state in (ORIGINAL, ISOLATED_SOURCE, ISOLATED_TARGET, HELD_SOURCE, HELD_TARGET, FINAL_TARGET):
        states.write(state, lambda path, text: path.write_text(text, encoding="utf-8"))
        seen[state] = effective_values(config_dir, version)
    assert seen == {
        ORIGINAL: found,
        ISOLATED_SOURCE: {**found, "proxy.port": PRIVATE_PORT, "proxy.http.enabled": False},
        ISOLATED_TARGET: {**found, "mq.type": "natsmq", "proxy.port": PRIVATE_PORT, "proxy.http.enabled": False},
        HELD_SOURCE: {**found, COMPACTION: False},
        HELD_TARGET: {**found, "mq.type": "natsmq", COMPACTION: False},
        FINAL_TARGET: {**found, "mq.type": "natsmq"},
    }
    states.write(ORIGINAL, lambda path, text: path.write_text(text, encoding="utf-8"))
    for path in fixture_dir(fixture).iterdir():  # the way back is byte for byte
        assert (config_dir / path.name).read_bytes() == path.read_bytes()
