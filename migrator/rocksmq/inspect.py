"""What is in a RocksMQ: topics, messages, bytes, age, size histogram. Read-only, also while Milvus runs.

Fast mode reads the meta DB (bytes per topic: closed pages + open page) and a sample of the newest
messages of each topic (count and histogram are estimated from it): O(topics). `deep=True` scans
every message: exact, O(messages).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from migrator.errors import BadInput
from migrator.milvus.etcd import ChannelCheckpoint, read_checkpoints
from migrator.rocksmq.layout import (
    MESSAGE_SIZE_PREFIX,
    PAGE_MESSAGE_SIZE_PREFIX,
    TOPIC_ID_PREFIX,
    RocksmqDirs,
    directory_size,
    msg_id_time,
    rocksmq_dirs,
)
from migrator.rocksmq.reader import check_status, in_a_child, open_read_only, prefixed

# Bucket upper bounds (exclusive) from the issue; the last bucket is >= 5 MB.
SIZE_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("<1KB", 1024),
    ("<64KB", 64 * 1024),
    ("<1MB", 1024 * 1024),
    ("<5MB", 5 * 1024 * 1024),
    (">=5MB", None),
)
LARGE_MESSAGE_BYTES = 64 * 1024  # where the NATS article's figures flip in favour of NATS
SAMPLE_PER_TOPIC = 256


def bucket_of(size: int) -> str:
    for name, bound in SIZE_BUCKETS:
        if bound is None or size < bound:
            return name
    raise AssertionError("unreachable: the last bucket has no bound")


@dataclass
class SizeHistogram:
    messages: dict[str, int] = field(default_factory=lambda: {name: 0 for name, _ in SIZE_BUCKETS})
    bytes: dict[str, int] = field(default_factory=lambda: {name: 0 for name, _ in SIZE_BUCKETS})

    def add(self, size: int, count: int = 1) -> None:
        name = bucket_of(size)
        self.messages[name] += count
        self.bytes[name] += size * count

    def merge(self, other: SizeHistogram) -> None:
        for name, _ in SIZE_BUCKETS:
            self.messages[name] += other.messages[name]
            self.bytes[name] += other.bytes[name]

    def scaled(self, factor: float) -> SizeHistogram:
        result = SizeHistogram()
        for name, _ in SIZE_BUCKETS:
            result.messages[name] = round(self.messages[name] * factor)
            result.bytes[name] = round(self.bytes[name] * factor)
        return result

    def total_messages(self) -> int:
        return sum(self.messages.values())

    def total_bytes(self) -> int:
        return sum(self.bytes.values())

    def messages_at_least(self, size: int) -> int:
        return sum(self.messages[name] for name, bound in SIZE_BUCKETS if bound is None or bound > size)

    def bytes_at_least(self, size: int) -> int:
        return sum(self.bytes[name] for name, bound in SIZE_BUCKETS if bound is None or bound > size)


@dataclass
class TopicStats:
    name: str
    messages: int
    bytes: int
    histogram: SizeHistogram
    oldest_msg_id: int | None = None
    newest_msg_id: int | None = None
    closed_pages: int = 0
    created_unix: int | None = None
    checkpoint_msg_id: int | None = None  # the lowest datacoord checkpoint among its vchannels
    unconsumed: int | None = None  # messages after that checkpoint

    @property
    def oldest_time(self) -> datetime | None:
        return msg_id_time(self.oldest_msg_id) if self.oldest_msg_id is not None else None

    @property
    def newest_time(self) -> datetime | None:
        return msg_id_time(self.newest_msg_id) if self.newest_msg_id is not None else None


@dataclass
class RocksmqStats:
    path: Path
    meta_path: Path
    exact: bool  # True after a deep scan; False when counts and histogram are estimated from samples
    topics: list[TopicStats]
    data_bytes_on_disk: int
    meta_bytes_on_disk: int
    checkpoints_read: bool = False

    @property
    def messages(self) -> int:
        return sum(topic.messages for topic in self.topics)

    @property
    def bytes(self) -> int:
        return sum(topic.bytes for topic in self.topics)

    @property
    def histogram(self) -> SizeHistogram:
        total = SizeHistogram()
        for topic in self.topics:
            total.merge(topic.histogram)
        return total

    @property
    def oldest_time(self) -> datetime | None:
        return min((t.oldest_time for t in self.topics if t.oldest_time), default=None)

    @property
    def newest_time(self) -> datetime | None:
        return max((t.newest_time for t in self.topics if t.newest_time), default=None)

    def to_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment else None

        return {
            "path": str(self.path),
            "meta_path": str(self.meta_path),
            "exact": self.exact,
            "messages": self.messages,
            "bytes": self.bytes,
            "oldest_time": iso(self.oldest_time),
            "newest_time": iso(self.newest_time),
            "histogram": asdict(self.histogram),
            "data_bytes_on_disk": self.data_bytes_on_disk,
            "meta_bytes_on_disk": self.meta_bytes_on_disk,
            "checkpoints_read": self.checkpoints_read,
            "topics": [
                {
                    "name": t.name,
                    "messages": t.messages,
                    "bytes": t.bytes,
                    "oldest_msg_id": t.oldest_msg_id,
                    "newest_msg_id": t.newest_msg_id,
                    "oldest_time": iso(t.oldest_time),
                    "newest_time": iso(t.newest_time),
                    "closed_pages": t.closed_pages,
                    "created_unix": t.created_unix,
                    "histogram": asdict(t.histogram),
                    "checkpoint_msg_id": t.checkpoint_msg_id,
                    "unconsumed": t.unconsumed,
                }
                for t in self.topics
            ],
        }


@dataclass
class _TopicMeta:
    created_unix: int | None = None
    open_page_bytes: int = 0
    closed_page_bytes: int = 0
    closed_pages: int = 0


def _int(value: bytes) -> int:
    return int(value.decode("ascii"))


def _read_meta(meta_db: Any) -> dict[str, _TopicMeta]:
    """Topic bookkeeping from the meta DB; a topic exists iff it has a `topic_id/<topic>` key."""
    topics: dict[str, _TopicMeta] = {}
    for key, value in prefixed(meta_db, TOPIC_ID_PREFIX):
        topics[key[len(TOPIC_ID_PREFIX) :].decode()] = _TopicMeta(created_unix=_int(value))
    for key, value in prefixed(meta_db, MESSAGE_SIZE_PREFIX):
        name = key[len(MESSAGE_SIZE_PREFIX) :].decode()
        topics.setdefault(name, _TopicMeta()).open_page_bytes = _int(value)
    for key, value in prefixed(meta_db, PAGE_MESSAGE_SIZE_PREFIX):
        name = key[len(PAGE_MESSAGE_SIZE_PREFIX) :].decode().rsplit("/", 1)[0]
        meta = topics.setdefault(name, _TopicMeta())
        meta.closed_page_bytes += _int(value)
        meta.closed_pages += 1
    return topics


def _every(db: Any) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of the default column family; BadInput if the scan stops on damage."""
    iterator = db.iter()
    iterator.seek_to_first()
    while iterator.valid():
        yield iterator.key(), iterator.value()
        iterator.next()
    check_status(iterator, db)


def _msg_id(key: bytes) -> int:
    return int(key.rsplit(b"/", 1)[1])


def _topic_prefix(name: str) -> bytes:
    return name.encode() + b"/"


def _fast_topic(data_db: Any, name: str, meta: _TopicMeta) -> TopicStats:
    prefix = _topic_prefix(name)
    byte_total = meta.closed_page_bytes + meta.open_page_bytes
    first = data_db.iter()
    first.seek(prefix)
    if not first.valid():
        check_status(first, data_db)
    if not (first.valid() and first.key().startswith(prefix)):
        return TopicStats(name, 0, byte_total, SizeHistogram(), closed_pages=meta.closed_pages,
                          created_unix=meta.created_unix)
    oldest = _msg_id(first.key())
    # The newest messages: walk back from just past the topic's keys ('0' sorts right after '/').
    last = data_db.iter()
    last.seek_for_prev(name.encode() + b"0")
    newest = _msg_id(last.key())
    sample = SizeHistogram()
    reached_oldest = False
    while last.valid() and last.key().startswith(prefix) and sample.total_messages() < SAMPLE_PER_TOPIC:
        sample.add(len(last.value()))
        reached_oldest = _msg_id(last.key()) == oldest
        last.prev()
    if not last.valid():
        check_status(last, data_db)
    if reached_oldest:  # the sample is the whole topic: exact
        histogram, messages = sample, sample.total_messages()
    else:
        mean = sample.total_bytes() / sample.total_messages()
        messages = max(sample.total_messages(), round(byte_total / mean)) if mean else sample.total_messages()
        histogram = sample.scaled(messages / sample.total_messages())
    return TopicStats(
        name, messages, byte_total, histogram, oldest, newest, meta.closed_pages, meta.created_unix
    )


def _deep_topics(data_db: Any, metas: dict[str, _TopicMeta]) -> list[TopicStats]:
    """One pass over every message; topics found only in the data DB are reported too."""
    histograms: dict[str, SizeHistogram] = defaultdict(SizeHistogram)
    bounds: dict[str, list[int]] = {}
    for key, value in _every(data_db):
        topic, _, raw_id = key.rpartition(b"/")
        name = topic.decode()
        msg_id = int(raw_id)
        histograms[name].add(len(value))
        span = bounds.get(name)
        if span is None:
            bounds[name] = [msg_id, msg_id]
        elif msg_id < span[0]:
            span[0] = msg_id
        elif msg_id > span[1]:
            span[1] = msg_id
    topics = []
    for name in sorted(set(metas) | set(histograms)):
        meta = metas.get(name, _TopicMeta())
        histogram = histograms.get(name, SizeHistogram())
        oldest, newest = bounds.get(name, (None, None))
        topics.append(
            TopicStats(
                name, histogram.total_messages(), histogram.total_bytes(), histogram,
                oldest, newest, meta.closed_pages, meta.created_unix,
            )
        )
    return topics


def _apply_checkpoints(data_db: Any, topics: list[TopicStats], checkpoints: list[ChannelCheckpoint]) -> None:
    """Per topic, the messages after its lowest vchannel checkpoint (not yet consumed by datanodes)."""
    lowest: dict[str, int] = {}
    for checkpoint in checkpoints:
        lowest[checkpoint.pchannel] = min(checkpoint.msg_id, lowest.get(checkpoint.pchannel, checkpoint.msg_id))
    for topic in topics:
        if topic.name not in lowest:
            continue
        topic.checkpoint_msg_id = lowest[topic.name]
        prefix = _topic_prefix(topic.name)
        start = prefix + str(topic.checkpoint_msg_id).encode()
        topic.unconsumed = sum(1 for key, _ in prefixed(data_db, prefix, start)
                               if _msg_id(key) > topic.checkpoint_msg_id)


def inspect(
    path: Path | str,
    deep: bool = False,
    *,
    etcd_url: str | None = None,
    etcd_root_path: str = "by-dev",
) -> RocksmqStats:
    """Describe the RocksMQ at `path` (rocksmq.path) and its `_meta_kv` sibling without writing to either.

    BadInput when a directory is missing, unreadable, not RocksDB, or the database cannot be opened.
    The reads run in a child process the tool can stop (reader.in_a_child).
    """
    dirs: RocksmqDirs = rocksmq_dirs(path)
    return in_a_child(_inspect, dirs, deep, etcd_url, etcd_root_path)


def _inspect(dirs: RocksmqDirs, deep: bool, etcd_url: str | None, etcd_root_path: str) -> RocksmqStats:
    checkpoints = read_checkpoints(etcd_url, etcd_root_path) if etcd_url else []
    try:
        with open_read_only(dirs.meta_kv) as meta_db:
            metas = _read_meta(meta_db)
        with open_read_only(dirs.data) as data_db:
            if deep:
                topics = _deep_topics(data_db, metas)
            else:
                topics = [_fast_topic(data_db, name, metas[name]) for name in sorted(metas)]
            if etcd_url:
                _apply_checkpoints(data_db, topics, checkpoints)
    except (ValueError, UnicodeDecodeError) as error:
        # A key or value outside Milvus's layout: some other RocksDB, or the wrong directory pair.
        raise BadInput(f"{dirs.data} does not hold RocksMQ data in Milvus's key layout: {error}") from error
    return RocksmqStats(
        path=dirs.data,
        meta_path=dirs.meta_kv,
        exact=deep,
        topics=topics,
        data_bytes_on_disk=directory_size(dirs.data),
        meta_bytes_on_disk=directory_size(dirs.meta_kv),
        checkpoints_read=bool(etcd_url),
    )


def newest_msg_ids(data_dir: Path, meta_dir: Path) -> dict[str, int | None]:
    """Per topic (a `topic_id/<topic>` key in `meta_dir`), the newest message id in `data_dir`
    (None: the topic holds no message). What a backup records and a clean-up compares: any message
    written after the backup changes it. BadInput for a damaged or foreign database."""
    return in_a_child(_newest_msg_ids, data_dir, meta_dir)


def _newest_msg_ids(data_dir: Path, meta_dir: Path) -> dict[str, int | None]:
    try:
        with open_read_only(meta_dir) as meta_db:
            names = sorted(key[len(TOPIC_ID_PREFIX) :].decode() for key, _ in prefixed(meta_db, TOPIC_ID_PREFIX))
        with open_read_only(data_dir) as data_db:
            newest: dict[str, int | None] = {}
            for name in names:
                last = data_db.iter()
                last.seek_for_prev(name.encode() + b"0")  # '0' sorts right after '/'
                if last.valid() and last.key().startswith(_topic_prefix(name)):
                    newest[name] = _msg_id(last.key())
                else:
                    if not last.valid():
                        check_status(last, data_db)
                    newest[name] = None
            return newest
    except (ValueError, UnicodeDecodeError) as error:
        raise BadInput(f"{data_dir} does not hold RocksMQ data in Milvus's key layout: {error}") from error
