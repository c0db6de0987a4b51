"""A NATS JetStream store on disk (natsmq.server.storeDir), read without a server and without changing it.

nats-server keeps each stream in `<storeDir>/jetstream/<account>/streams/<stream>/`: `meta.inf` (the
stream's config as JSON, with its creation time), `meta.sum`, `msgs/` (message blocks) and `obs/`
(consumers). Milvus's embedded server uses the global account `$G`, one stream per channel.
The config in meta.inf is what a restarted Milvus must ask for again: its `AddStream` with other
retention values fails ("stream name already in use") and Milvus panics at start (seen on 2.3.5).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from migrator.util.files import iter_tree

NANOS_PER_MINUTE = 60 * 1_000_000_000


@dataclass(frozen=True)
class StoredStream:
    account: str
    name: str
    created: str | None  # ISO time from meta.inf
    max_age_ns: int | None  # 0 = no limit
    max_bytes: int | None  # -1 = no limit
    max_msgs: int | None  # -1 = no limit
    bytes_on_disk: int  # msgs/
    newest_write: str | None  # ISO time of the newest file in msgs/
    problem: str | None = None  # why meta.inf could not be read


@dataclass(frozen=True)
class NatsStore:
    path: Path
    exists: bool
    files: int  # regular files anywhere under path
    bytes_on_disk: int
    streams: list[StoredStream]

    @property
    def empty(self) -> bool:
        return self.files == 0

    def to_dict(self) -> dict[str, Any]:
        created = [s.created for s in self.streams if s.created]
        written = [s.newest_write for s in self.streams if s.newest_write]
        return {
            "path": str(self.path),
            "exists": self.exists,
            "files": self.files,
            "bytes_on_disk": self.bytes_on_disk,
            "oldest_stream_created": min(created, default=None),
            "newest_write": max(written, default=None),
            "streams": [asdict(stream) for stream in self.streams],
        }


def read_store(store_dir: Path) -> NatsStore:
    """What is in `store_dir`: every stream of every account, its retention config, its size and age.

    A missing directory is an empty store. Unreadable parts are reported in `problem`, never raised:
    this is a fact for the plan, and a store the tool cannot read is still not empty.
    """
    store_dir = Path(store_dir)
    if not store_dir.exists():
        return NatsStore(store_dir, False, 0, 0, [])
    files, size, _newest = _walk(store_dir)
    streams = []
    for accounts in sorted((store_dir / "jetstream").glob("*/streams")):
        for stream_dir in sorted(path for path in accounts.iterdir() if path.is_dir()):
            streams.append(_stream(accounts.parent.name, stream_dir))
    return NatsStore(store_dir, True, files, size, streams)


def _stream(account: str, stream_dir: Path) -> StoredStream:
    _files, size, newest = _walk(stream_dir / "msgs")
    written = _iso(newest) if newest is not None else None
    try:
        meta = json.loads((stream_dir / "meta.inf").read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        # nats-server encrypts meta.inf when store encryption is on; Milvus never turns it on.
        return StoredStream(account, stream_dir.name, None, None, None, None, size, written,
                            problem=f"{stream_dir / 'meta.inf'}: {error}")
    return StoredStream(
        account=account,
        name=str(meta.get("name", stream_dir.name)),
        created=_created(meta.get("Created") or meta.get("created")),
        max_age_ns=_int(meta.get("max_age")),
        max_bytes=_int(meta.get("max_bytes")),
        max_msgs=_int(meta.get("max_msgs")),
        bytes_on_disk=size,
        newest_write=written,
    )


def _walk(directory: Path) -> tuple[int, int, float | None]:
    """(regular files, their bytes, the newest mtime) under `directory`; (0, 0, None) when absent."""
    files = size = 0
    newest: float | None = None
    for entry in iter_tree(directory):
        if entry.is_dir(follow_symlinks=False):
            continue
        try:
            stat = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # a running server compacts blocks at any time
            continue
        files += 1
        size += stat.st_size
        newest = stat.st_mtime if newest is None else max(newest, stat.st_mtime)
    return files, size, newest


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _created(value: object) -> str | None:
    """nats-server's RFC 3339 time with nanoseconds, as an ISO time Python can compare."""
    if not isinstance(value, str):
        return None
    text = value.replace("Z", "+00:00")
    main, _, rest = text.partition(".")
    if rest:  # Python takes at most microseconds
        digits = "".join(ch for ch in rest if ch.isdigit())
        text = f"{main}.{digits[:6]}{rest[len(digits):]}"
    try:
        return datetime.fromisoformat(text).astimezone(timezone.utc).isoformat(timespec="seconds")
    except ValueError:
        return None


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, tz=timezone.utc).isoformat(timespec="seconds")


# --- messages --------------------------------------------------------------------------------
# A stream's messages live in `msgs/<n>.blk`, appended record after record (nats-server
# filestore.go, 2.9 and 2.10, no compression or encryption: Milvus turns on neither):
#   uint32 length (the headers bit set when the record has NATS headers), uint64 sequence (high
#   bits mark erased/tombstone records), int64 time (ns), uint16 subject length, the subject,
#   [uint32 headers length, the headers], the payload, 8 bytes of hash.

_RECORD_HEAD = struct.Struct("<IQqH")
_HEADERS_BIT = 1 << 31
_SEQUENCE_FLAGS = 0b11 << 62
_HASH_BYTES = 8
BLOCK_LIMIT = 256 * 1024 * 1024  # nats-server's blocks stay far below this (at most 8 MiB by default)


class NatsStoreUnreadable(Exception):
    """A message block is not what nats-server writes (compressed, encrypted, damaged)."""


@dataclass(frozen=True)
class StoredMessage:
    sequence: int
    payload: bytes


def stream_messages(stream_dir: Path, after_sequence: int = 0) -> Iterator[StoredMessage]:
    """Every message of a stream on disk with a sequence above `after_sequence`, in block order.
    Only the record heads of older messages are read past."""
    from migrator.util.files import read_bounded

    blocks = sorted((stream_dir / "msgs").glob("*.blk"), key=lambda path: _block_number(path))
    for block in blocks:
        data = read_bounded(block, BLOCK_LIMIT, what="NATS message block")
        position = 0
        while position < len(data):
            if position + _RECORD_HEAD.size > len(data):
                raise NatsStoreUnreadable(f"{block}: a record head is cut off at byte {position}")
            length, sequence, _time, subject_length = _RECORD_HEAD.unpack_from(data, position)
            has_headers, length = bool(length & _HEADERS_BIT), length & ~_HEADERS_BIT
            end = position + length
            body = position + _RECORD_HEAD.size + subject_length
            if length < _RECORD_HEAD.size + _HASH_BYTES or end > len(data) or body > end - _HASH_BYTES:
                raise NatsStoreUnreadable(f"{block}: record at byte {position} is not a nats-server record")
            if not sequence & _SEQUENCE_FLAGS and sequence > after_sequence:
                payload = data[body:end - _HASH_BYTES]
                if has_headers:
                    (header_length,) = struct.unpack_from("<I", payload, 0)
                    payload = payload[4 + header_length:]
                yield StoredMessage(sequence, payload)
            position = end


def _block_number(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        raise NatsStoreUnreadable(f"{path}: not a nats-server message block name") from None
