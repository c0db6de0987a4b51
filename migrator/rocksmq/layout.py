"""Where RocksMQ lives on disk and what its keys look like (Milvus pkg/mq/mqimpl/rocksmq/server).

Two RocksDB databases: `rocksmq.path` (messages `<topic>/<msgID>`; column families `default`
and `properties`) and `rocksmq.path + "_meta_kv"` (page and topic bookkeeping). Every verb takes
`rocksmq.path` and brings the sibling along: a backup or clean-up that forgets it is broken.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from migrator.errors import BadInput
from migrator.util.files import iter_tree

META_KV_SUFFIX = "_meta_kv"

TOPIC_ID_PREFIX = b"topic_id/"
MESSAGE_SIZE_PREFIX = b"message_size/"
PAGE_MESSAGE_SIZE_PREFIX = b"page_message_size/"
PAGE_TS_PREFIX = b"page_ts/"

# msgIDs are TSO-like: physical milliseconds in the high bits, an 18-bit logical counter below.
LOGICAL_BITS = 18


def msg_id_time(msg_id: int) -> datetime:
    return datetime.fromtimestamp((msg_id >> LOGICAL_BITS) / 1000, tz=timezone.utc)


@dataclass(frozen=True)
class RocksmqDirs:
    data: Path
    meta_kv: Path

    def both(self) -> tuple[Path, Path]:
        return self.data, self.meta_kv


# Every name RocksDB (6.x-8.x) keeps in a database directory; nothing else belongs in rocksmq.path.
ROCKSDB_FILE = re.compile(
    r"^(CURRENT|IDENTITY|LOCK|LOG|LOG\.old\.\d+|MANIFEST-\d+|OPTIONS-\d+(\.dbtmp)?|\d+\.(sst|log|blob|dbtmp))$"
)


def meta_kv_path(path: Path) -> Path:
    # `rocksmq.path + "_meta_kv"`: a string suffix, so a trailing slash must not put it inside.
    return Path(str(Path(path)).rstrip("/") + META_KV_SUFFIX)


def is_rocksdb_dir(path: Path) -> bool:
    """A RocksDB directory has CURRENT and at least one MANIFEST-* (looked for without listing
    every name at once: a directory may hold a million)."""
    try:
        if not os.path.lexists(os.path.join(path, "CURRENT")):
            return False
        with os.scandir(path) as entries:
            return any(entry.name.startswith("MANIFEST-") for entry in entries)
    except OSError:
        return False


def foreign_entries(directory: Path) -> list[str]:
    """What in `directory` is not RocksDB's own: subdirectories, links, FIFOs, unknown names."""
    found = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            found.append(f"{entry.name} (a symbolic link)")
        elif stat.S_ISDIR(mode):
            found.append(f"{entry.name}/")
        elif not stat.S_ISREG(mode):
            found.append(f"{entry.name} (not a regular file)")
        elif not ROCKSDB_FILE.match(entry.name):
            found.append(entry.name)
    return found


def rocksmq_dirs(path: Path | str, *, no_links: bool = False) -> RocksmqDirs:
    """Check that `path` is a RocksMQ data directory with its `_meta_kv` sibling; BadInput if not.

    `no_links`: also refuse either directory being a symbolic link (before deleting or replacing:
    a link's target is not where the operator pointed)."""
    data = Path(path).expanduser().absolute()
    dirs = RocksmqDirs(data=data, meta_kv=meta_kv_path(data))
    for role, directory in (("rocksmq.path", dirs.data), ("its _meta_kv sibling", dirs.meta_kv)):
        if no_links and directory.is_symlink():
            raise BadInput(f"{directory} is a symbolic link ({role}): give the directory itself",
                           hint=f"it points to {os.readlink(directory)}")
        if not directory.exists():
            hint = "RocksMQ keeps its meta in rocksmq.path + '_meta_kv'" if directory == dirs.meta_kv else None
            raise BadInput(f"{directory} does not exist ({role})", hint=hint)
        if not directory.is_dir():
            raise BadInput(f"{directory} is not a directory ({role})")
        if not os.access(directory, os.R_OK | os.X_OK):
            raise BadInput(f"{directory} is not readable ({role})")
        if not is_rocksdb_dir(directory):
            raise BadInput(f"{directory} is not a RocksDB directory: no CURRENT or MANIFEST-* ({role})")
    return dirs


def is_locked(directory: Path) -> bool:
    """True when a process holds RocksDB's LOCK, i.e. the database is open for writing (Milvus runs on it).

    RocksDB takes a POSIX record lock on LOCK; probing it with a non-blocking lock changes nothing.
    """
    try:
        fd = os.open(directory / "LOCK", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EAGAIN):
            return True
        raise
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def directory_size(directory: Path) -> int:
    total = 0
    for entry in iter_tree(directory):
        try:
            if not entry.is_dir(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:  # a live RocksDB deletes obsolete files at any time
            continue
    return total
