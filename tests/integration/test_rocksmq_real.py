"""The inspector against the RocksMQ a real Milvus 2.3.5 wrote after `seed`, read while Milvus runs."""

from __future__ import annotations

import pytest

from migrator.rocksmq import advice, inspect
from tests.support.rocksmq import tree_snapshot


@pytest.mark.milvus
def test_inspect_reads_the_live_sandbox_rocksmq_without_writing(milvus_sandbox):
    path = milvus_sandbox.rocksmq_path
    meta = path.with_name(path.name + "_meta_kv")
    files_before = set(tree_snapshot(path, meta))
    stats = inspect(path, deep=True)
    dml = [topic for topic in stats.topics if topic.name.startswith("by-dev-rootcoord-dml_")]
    assert dml, [topic.name for topic in stats.topics]
    assert sum(topic.messages for topic in dml) > 0
    assert all(topic.newest_time is not None for topic in dml if topic.messages)
    assert advice(stats).verdict in {"nats", "rocksmq", "either"}
    # Milvus itself keeps writing (new SSTs, logs); what must never appear is a file of ours.
    files_after = set(tree_snapshot(path, meta))
    assert not (path / "rocksdict-config.json").exists() and not (meta / "rocksdict-config.json").exists()
    assert {f for f in files_after - files_before if "rocksdict" in f or "milvus-migrate" in f} == set()
