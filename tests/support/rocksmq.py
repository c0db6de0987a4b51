"""Write RocksMQ databases the way Milvus does (key layout of pkg/mq/mqimpl/rocksmq/server), deterministically.

Used by the unit tests and benchmarks/bench_rocksmq.py. `write_rocksmq` returns what it wrote, so
tests compare the inspector against the truth.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

START_MS = 1_732_000_000_000  # 2024-11-19, a fixed clock
PAGE_SIZE = 64 * 1024 * 1024  # rocksmq.rocksmqPageSize default
_POOL_BYTES = 16 * 1024 * 1024


@dataclass
class WrittenTopic:
    name: str
    msg_ids: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    pages: int = 0

    @property
    def bytes(self) -> int:
        return sum(self.sizes)


def msg_id_at(ms: int, logical: int = 0) -> int:
    return (ms << 18) | logical


def _payload_pool(seed: int) -> bytes:
    # Incompressible bytes, so on-disk sizes are those of real protobuf-heavy payloads.
    return random.Random(seed).randbytes(_POOL_BYTES)


def write_rocksmq(
    path: Path | str,
    topics: Mapping[str, Sequence[int]],
    *,
    start_ms: int = START_MS,
    step_ms: int = 1,
    page_size: int = PAGE_SIZE,
    created_unix: int = START_MS // 1000,
    seed: int = 5,
) -> dict[str, WrittenTopic]:
    """Create rocksmq.path at `path` (and `path`_meta_kv) holding, per topic, messages of the given sizes."""
    from rocksdict import Options, Rdict, WriteBatch

    data_path, meta_path = Path(path), Path(str(path) + "_meta_kv")
    pool = _payload_pool(seed)
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    options.set_write_buffer_size(64 * 1024 * 1024)
    data = Rdict(str(data_path), options, column_families={"properties": Options(raw_mode=True)})
    meta = Rdict(str(meta_path), options)
    written: dict[str, WrittenTopic] = {}
    offset = 0
    last_id = 0
    for topic_index, (name, sizes) in enumerate(topics.items()):
        topic = written[name] = WrittenTopic(name)
        meta[f"topic_id/{name}".encode()] = str(created_unix).encode()
        open_page = 0
        batch, batch_bytes = WriteBatch(raw_mode=True), 0
        for index, size in enumerate(sizes):
            msg_id = msg_id_at(start_ms + index * step_ms, topic_index)
            if offset + size > len(pool):
                offset = 0
            batch.put(f"{name}/{msg_id}".encode(), pool[offset : offset + size])
            offset += size % 4093 + 1
            batch_bytes += size
            topic.msg_ids.append(msg_id)
            topic.sizes.append(size)
            last_id = max(last_id, msg_id)
            # updatePageInfo: a page closes at the message that makes it exceed the page size.
            if open_page + size > page_size:
                meta[f"page_message_size/{name}/{msg_id}".encode()] = str(open_page + size).encode()
                meta[f"page_ts/{name}/{msg_id}".encode()] = str((start_ms + index * step_ms) // 1000).encode()
                topic.pages += 1
                open_page = 0
            else:
                open_page += size
            if batch_bytes >= 32 * 1024 * 1024:
                data.write(batch)
                batch, batch_bytes = WriteBatch(raw_mode=True), 0
        data.write(batch)
        meta[f"message_size/{name}".encode()] = str(open_page).encode()
    meta[b"rmq_id"] = str(last_id + 1).encode()
    data.close()
    meta.close()
    for directory in (data_path, meta_path):
        # rocksdict leaves its own config file; Milvus's directories do not have it.
        (directory / "rocksdict-config.json").unlink(missing_ok=True)
    return written


def milvus_topics(channels: int = 2, sizes: Sequence[int] = (200, 3000, 70_000)) -> dict[str, list[int]]:
    """Topic names as Milvus 2.3 standalone creates them, each holding the given message sizes."""
    return {f"by-dev-rootcoord-dml_{index}": list(sizes) for index in range(channels)}


def tree_snapshot(*directories: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file: equal before and after proves nothing was written."""
    snapshot = {}
    for directory in directories:
        for root, _dirs, names in os.walk(directory):
            for name in names:
                status = os.stat(os.path.join(root, name))
                snapshot[os.path.join(root, name)] = (status.st_size, status.st_mtime_ns)
    return snapshot


def append_messages(path: Path | str, topic: str, count: int, *, size: int = 100, start_ms: int = START_MS + 10_000_000) -> list[int]:
    """Write `count` more messages into an existing RocksMQ topic, as a running Milvus would (data
    and the meta DB's open-page size); returns their msgIDs."""
    from rocksdict import Options, Rdict

    data_path, meta_path = Path(path), Path(str(path) + "_meta_kv")
    options = Options(raw_mode=True)
    data = Rdict(str(data_path), options, column_families={"properties": Options(raw_mode=True)})
    meta = Rdict(str(meta_path), options)
    ids = [msg_id_at(start_ms + index) for index in range(count)]
    for msg_id in ids:
        data[f"{topic}/{msg_id}".encode()] = b"x" * size
    key = f"message_size/{topic}".encode()
    meta[key] = str(int(meta[key].decode()) + count * size).encode()
    data.close()
    meta.close()
    for directory in (data_path, meta_path):
        (directory / "rocksdict-config.json").unlink(missing_ok=True)
    return ids
