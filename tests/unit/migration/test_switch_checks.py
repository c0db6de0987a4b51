"""The comparisons that decide whether a switch lost anything (steps/verify.py, steps/flush_all.py),
on the data they are given: counts before and after, channel checkpoints before and after, stored
rows after a FlushAll. Each is the last word on a run; a lax one lets a loss through."""

from __future__ import annotations

from migrator.migration.steps.flush_all import stored_short_of_counted
from migrator.migration.steps.verify import CollectionChannels, checkpoint_problems, count_mismatches
from migrator.milvus.client import CollectionFacts
from migrator.milvus.etcd import ChannelCheckpoint
from migrator.mq import Mq

A = CollectionFacts("default", "a", True, 100)
B = CollectionFacts("shop", "b", False, 50)


def test_fewer_rows_after_is_a_mismatch_as_much_as_more() -> None:
    assert count_mismatches([A, B], {"default.a": 100, "shop.b": 50}) == []
    assert count_mismatches([A, B], {"default.a": 99, "shop.b": 50}) == ["default.a: 100 before, 99 after"]
    assert count_mismatches([A, B], {"default.a": 101, "shop.b": 50}) == ["default.a: 100 before, 101 after"]
    assert count_mismatches([A, B], {"default.a": 100}) == ["shop.b: 50 before, missing after"]


def test_stored_rows_below_what_a_strong_count_saw_means_the_flush_dropped_rows() -> None:
    assert stored_short_of_counted([A], [100]) == [] and stored_short_of_counted([A], [130]) == []
    assert stored_short_of_counted([A], [99]) == ["default.a: 100 rows answered a Strong count, 99 are stored"]


ROCKS_ID = 470_964_000_000_000_000
COLLECTIONS = [CollectionChannels("default.a", 11, 1)]
BEFORE = {"dml_0_11v0": (ROCKS_ID, 1_000)}


def cp(msg_id: int, timestamp: int, vchannel: str = "dml_0_11v0") -> ChannelCheckpoint:
    return ChannelCheckpoint(vchannel, "dml_0", msg_id, timestamp)


def test_a_checkpoint_proves_the_switch_only_once_it_moved_to_a_position_of_the_new_mq() -> None:
    assert checkpoint_problems([cp(42, 1_001)], COLLECTIONS, mq=Mq.NATSMQ, before=BEFORE) == []
    unmoved = checkpoint_problems([cp(ROCKS_ID, 1_000)], COLLECTIONS, mq=Mq.NATSMQ, before=BEFORE)
    assert unmoved == ["dml_0_11v0 (default.a): checkpoint not moved since the switch"]
    old_position = checkpoint_problems([cp(ROCKS_ID + 5, 1_001)], COLLECTIONS, mq=Mq.NATSMQ, before=BEFORE)
    assert old_position == [f"dml_0_11v0 (default.a): position {ROCKS_ID + 5} is not a NATS sequence"]


def test_back_on_rocksmq_a_nats_sequence_or_the_old_id_is_no_proof() -> None:
    assert checkpoint_problems([cp(ROCKS_ID + 9, 1_001)], COLLECTIONS, mq=Mq.ROCKSMQ, before=BEFORE) == []
    for msg_id in (42, ROCKS_ID):
        assert checkpoint_problems([cp(msg_id, 1_001)], COLLECTIONS, mq=Mq.ROCKSMQ, before=BEFORE) == \
            [f"dml_0_11v0 (default.a): position {msg_id} is not one of the new RocksMQ store"]


def test_every_shard_of_every_live_collection_needs_a_checkpoint() -> None:
    two_shards = [CollectionChannels("default.a", 11, 2)]
    assert checkpoint_problems([cp(42, 1_001)], two_shards, mq=Mq.NATSMQ, before=BEFORE) == \
        ["default.a: 1 of 2 channels have a checkpoint yet"]
    # A dropped collection's checkpoint is no one's business.
    assert checkpoint_problems([cp(42, 1_001), cp(ROCKS_ID, 5, "dml_1_99v0")], COLLECTIONS, mq=Mq.NATSMQ,
                               before=BEFORE) == []
