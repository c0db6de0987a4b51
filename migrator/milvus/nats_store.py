"""A NATS JetStream store on disk (natsmq.server.storeDir), read without a server and without changing it.

nats-server keeps each stream in `<storeDir>/jetstream/<account>/streams/<stream>/`: `meta.inf` (the
stream's config as JSON, with its creation time), `meta.sum`, `msgs/` (message blocks) and `obs/`
(consumers). Milvus's embedded server uses the global account `$G`, one stream per channel.
The config in meta.inf is what a restarted Milvus must ask for again: its `AddStream` with other
retention values fails ("stream name already in use") and Milvus panics at start (seen on 2.3.5).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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
    for root, _dirs, names in os.walk(directory):
        for name in names:
            try:
                stat = os.lstat(os.path.join(root, name))
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
