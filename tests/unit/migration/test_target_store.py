"""The target store at plan time: what is in it, that apply moves it aside, the retention its NATS
streams would refuse, and the room on its disk. Stores are written here the way nats-server and
Milvus write them; tests/integration/test_road_live.py reads ones a real Milvus wrote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from migrator.config import load_layers
from migrator.migration import preflight
from migrator.migration.planner import target_store
from migrator.milvus.nats_store import read_store
from migrator.playbook import load_playbook
from tests.support.rocksmq import write_rocksmq

DAYS_3_NS = 4320 * 60 * 1_000_000_000


def write_stream(store: Path, name: str, *, max_age_ns: int = DAYS_3_NS, max_bytes: int = -1, max_msgs: int = -1,
                 block: bytes = b"\x00" * 1000) -> Path:
    """One JetStream stream as nats-server 2.9 lays it out (meta.inf as Milvus 2.3.5's store has it)."""
    stream = store / "jetstream" / "$G" / "streams" / name
    (stream / "msgs").mkdir(parents=True)
    (stream / "obs").mkdir()
    (stream / "meta.inf").write_text(json.dumps({
        "Created": "2026-11-30T05:42:00.436735838Z", "name": name, "subjects": [name], "retention": "limits",
        "max_consumers": -1, "max_msgs": max_msgs, "max_bytes": max_bytes, "max_age": max_age_ns,
        "max_msgs_per_subject": -1, "max_msg_size": -1, "discard": "old", "storage": "file", "num_replicas": 1}))
    (stream / "meta.sum").write_text("d6031b30e42b0310")
    (stream / "msgs" / "1.blk").write_bytes(block)
    return stream


def _fact(store: Path, action: str = "move-aside") -> dict:
    nats = read_store(store)
    return {"kind": "natsmq", "paths": [str(store)], "empty": nats.empty, "contents": nats.to_dict(),
            "action": "none" if nats.empty else action}


def test_a_nats_store_is_read_from_its_files(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    write_stream(store, "by-dev-rootcoord-dml_0", block=b"x" * 2000)
    write_stream(store, "by-dev-rootcoord-dml_1")
    (store / "jetstream" / "$G" / "streams" / "broken").mkdir()
    (store / "jetstream" / "$G" / "streams" / "broken" / "meta.inf").write_bytes(b"\x8f\x01 encrypted")
    found = read_store(store)
    assert not found.empty and found.files == 7  # meta.inf, meta.sum, 1.blk twice, and the broken meta.inf
    assert [s.name for s in found.streams] == ["broken", "by-dev-rootcoord-dml_0", "by-dev-rootcoord-dml_1"]
    dml_0 = found.streams[1]
    assert (dml_0.max_age_ns, dml_0.max_bytes, dml_0.max_msgs, dml_0.bytes_on_disk) == (DAYS_3_NS, -1, -1, 2000)
    assert dml_0.created == "2026-11-30T05:42:00+00:00" and dml_0.newest_write is not None
    assert found.streams[0].problem is not None and "meta.inf" in found.streams[0].problem
    assert read_store(tmp_path / "absent").empty and not read_store(tmp_path / "absent").exists


def test_a_non_empty_store_is_reported_and_moved_aside(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    write_stream(store, "by-dev-rootcoord-dml_0")
    (finding,) = preflight.target_store_findings(_fact(store))
    assert finding.level == "warning" and finding.key == "natsmq.server.storeDir"
    assert f"the target store {store} is not empty: 1 JetStream stream(s)" in finding.message
    assert "apply moves it aside" in finding.message
    (tmp_path / "empty").mkdir()
    assert preflight.target_store_findings(_fact(tmp_path / "empty")) == []


def test_retention_against_an_existing_store(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    for n in range(5):
        write_stream(store, f"by-dev-rootcoord-dml_{n}")
    same = {"natsmq.server.retention.maxAge": 4320, "natsmq.server.retention.maxBytes": None,
            "natsmq.server.retention.maxMsgs": 0}
    assert preflight.retention_findings(_fact(store, "keep"), same) == []
    (kept,) = preflight.retention_findings(_fact(store, "keep"), {**same, "natsmq.server.retention.maxAge": 60})
    assert kept.level == "error" and kept.key == "natsmq.server.retention"
    assert "by-dev-rootcoord-dml_0, by-dev-rootcoord-dml_1, by-dev-rootcoord-dml_2 and 2 more" in kept.message
    assert "Milvus panics" in kept.message
    (bytes_,) = preflight.retention_findings(_fact(store, "keep"), {**same, "natsmq.server.retention.maxBytes": 10})
    assert bytes_.level == "error"
    (moved,) = preflight.retention_findings(_fact(store), {**same, "natsmq.server.retention.maxAge": 60})
    assert moved.level == "info" and "moved aside" in moved.message


def test_expected_limits_are_what_nats_server_stores() -> None:
    assert preflight.expected_stream_limits({"natsmq.server.retention.maxAge": 4320}) == {
        "max_age_ns": DAYS_3_NS, "max_bytes": -1, "max_msgs": -1}
    assert preflight.expected_stream_limits({"natsmq.server.retention.maxAge": 1, "natsmq.server.retention.maxBytes": 5,
                                             "natsmq.server.retention.maxMsgs": 7}) == {
        "max_age_ns": 60_000_000_000, "max_bytes": 5, "max_msgs": 7}


def test_room_for_the_store(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    store = tmp_path / "nats"
    (error,) = preflight.store_room_findings(store, str(store), 1, free + 2**30)
    assert error.level == "error" and "less than the" in error.message and "the RocksMQ holds now" in error.message
    assert preflight.store_room_findings(store, str(store), free + 2**30, 1) == []  # natsmq_rules warns on this path
    (mapped,) = preflight.store_room_findings(store, "/var/lib/milvus/nats", free + 2**30, 1)
    assert mapped.level == "warning" and "host side of /var/lib/milvus/nats" in mapped.message


def _loaded(tmp_path: Path, config_dir: Path, path_map: str = ""):
    playbook = tmp_path / "pb.yaml"
    playbook.write_text(f"""\
version: 1
name: store
config:
  dir: {config_dir}
runtime:
  kind: systemd
{path_map}
migration:
  state_dir: {tmp_path / "state"}
""")
    return load_playbook(playbook)


def test_the_rocksmq_target_store_on_the_way_back(tmp_path: Path) -> None:
    """NATS -> RocksMQ: rocksmq.path (host side, through path_map) and its _meta_kv, inspected."""
    config = tmp_path / "configs"
    config.mkdir()
    (config / "milvus.yaml").write_text("mq:\n  type: natsmq\nrocksmq:\n  path: /var/lib/milvus/rdb_data\n")
    loaded = _loaded(tmp_path, config, f"path_map:\n  /var/lib/milvus: {tmp_path / 'volume'}")
    effective = load_layers(config, "2.3.5", {}, None)

    empty = target_store(loaded, effective, {}, "natsmq", "rocksmq")
    assert empty == {"kind": "rocksmq", "empty": True, "action": "none", "contents": {"bytes_on_disk": 0},
                     "paths": [str(tmp_path / "volume" / "rdb_data"), str(tmp_path / "volume" / "rdb_data_meta_kv")]}

    written = write_rocksmq(tmp_path / "volume" / "rdb_data", {"by-dev-rootcoord-dml_0": [100] * 30,
                                                               "by-dev-rootcoord-dml_1": [2000] * 5})
    store = target_store(loaded, effective, {}, "natsmq", "rocksmq")
    assert (store["empty"], store["action"]) == (False, "move-aside")
    contents = store["contents"]
    assert contents["topic_names"] == sorted(written)
    assert contents["messages"] == sum(len(topic.msg_ids) for topic in written.values())
    assert contents["bytes"] == sum(topic.bytes for topic in written.values())
    (finding,) = preflight.target_store_findings(store)
    assert finding.key == "rocksmq.path" and "2 topic(s), 35 message(s)" in finding.message


def test_a_rocksmq_path_that_is_not_a_rocksmq_is_still_not_empty(tmp_path: Path) -> None:
    config = tmp_path / "configs"
    config.mkdir()
    (config / "milvus.yaml").write_text(f"mq:\n  type: natsmq\nrocksmq:\n  path: {tmp_path / 'rdb'}\n")
    (tmp_path / "rdb").mkdir()
    (tmp_path / "rdb" / "notes.txt").write_text("not RocksDB")
    store = target_store(_loaded(tmp_path, config), load_layers(config, "2.3.5", {}, None), {}, "natsmq", "rocksmq")
    assert (store["empty"], store["action"]) == (False, "move-aside")
    assert "is not a RocksDB directory" in store["contents"]["problem"] and store["contents"]["bytes_on_disk"] == 11


def test_the_nats_target_store_takes_the_planned_store_dir(tmp_path: Path) -> None:
    config = tmp_path / "configs"
    config.mkdir()
    (config / "milvus.yaml").write_text(f"mq:\n  type: rocksmq\nrocksmq:\n  path: {tmp_path / 'rdb'}\n")
    write_stream(tmp_path / "planned", "by-dev-rootcoord-dml_0")
    loaded, effective = _loaded(tmp_path, config), load_layers(config, "2.3.5", {}, None)
    store = target_store(loaded, effective, {"natsmq.server.storeDir": str(tmp_path / "planned")}, "rocksmq", "natsmq")
    assert store["paths"] == [str(tmp_path / "planned")] and store["action"] == "move-aside"
    assert [s["name"] for s in store["contents"]["streams"]] == ["by-dev-rootcoord-dml_0"]
    # Milvus already on NATS there: the store is kept, so a retention change is refused, not waved through.
    kept = target_store(loaded, effective, {"natsmq.server.storeDir": str(tmp_path / "planned")}, "natsmq", "natsmq")
    assert kept["action"] == "keep"
