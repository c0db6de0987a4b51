"""Where each MQ keeps its messages on disk, and how a store is moved aside (never deleted).

A Milvus that starts on an MQ whose store holds an older run's messages reads the channel
checkpoints as positions in that store: NATS skips what is before them, RocksMQ replays from its
oldest message (slowly, and able to panic). So the tool starts an MQ on an empty store: a
non-empty one is renamed aside, beside itself (same filesystem: an instant rename, no copy), and
the rename is journaled. Everything in it was flushed into segments before (FlushAll), so Milvus
needs none of it; it is kept for the operator, never deleted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from migrator.config.keys import ROCKSMQ_PATH
from migrator.config.layers import EffectiveConfig
from migrator.errors import Refused
from migrator.mq import Mq
from migrator.util.files import fsync_path
from migrator.util.paths import system_path_problem

NATS_STORE_DIR = "natsmq.server.storeDir"
META_KV_SUFFIX = "_meta_kv"


@dataclass(frozen=True)
class Store:
    mq: str
    paths: tuple[Path, ...]  # host paths: rocksmq.path and its _meta_kv sibling, or the natsmq storeDir

    @property
    def empty(self) -> bool:
        return not any(_has_content(path) for path in self.paths)


def store_of(mq: str, effective: EffectiveConfig, host_path: Callable[[str], Path]) -> Store:
    """The store of `mq` as the config (`effective`) names it, mapped to this host."""
    if mq == Mq.ROCKSMQ:
        data = host_path(str(effective.get(ROCKSMQ_PATH).value).rstrip("/"))
        return Store(mq, (data, data.with_name(data.name + META_KV_SUFFIX)))
    if mq == Mq.NATSMQ:
        return Store(mq, (host_path(str(effective.get(NATS_STORE_DIR).value)),))
    raise Refused(f"mq {mq}: this tool moves between rocksmq and natsmq")


def _has_content(path: Path) -> bool:
    try:
        return path.is_dir() and any(os.scandir(path))
    except OSError:
        return True  # unreadable: treat as holding something, so it is moved aside, not trusted


def aside_name(path: Path, run_id: str) -> Path:
    return path.with_name(f"{path.name}.moved-aside-{run_id}")


def move_aside(store: Store, run_id: str) -> list[tuple[str, str]]:
    """Rename each non-empty path of `store` to `<path>.moved-aside-<run>`; (from, to) of each rename.

    Refuses a system directory (util/paths.py: whatever a config or a plan says the store is), a
    path that is a symlink or a mount point (a rename would not move the data, or would fail
    across filesystems) and a destination that already exists. Idempotent for a resumed run:
    a path already renamed by this run is reported again, not renamed twice.
    """
    for path in store.paths:
        problem = system_path_problem(path)
        if problem:
            raise Refused(f"refusing to move the {store.mq} store aside: {problem}",
                          hint="point the store at a directory of its own, e.g. /var/lib/milvus/nats")
    moved = []
    for path in store.paths:
        destination = aside_name(path, run_id)
        if not path.exists() and destination.exists():
            moved.append((str(path), str(destination)))  # this run moved it already
            continue
        if not _has_content(path):
            continue
        if path.is_symlink():
            raise Refused(f"{path} is a symlink: the tool will not move a store it does not own the place of",
                          hint=f"move {path} aside by hand (Milvus stopped), then resume")
        if os.path.ismount(path):
            raise Refused(f"{path} is a mount point: it cannot be renamed aside",
                          hint="empty it by hand (Milvus stopped), keeping its content elsewhere, then resume")
        if destination.exists():
            raise Refused(f"{destination} exists already; the tool will not overwrite it")
        os.rename(path, destination)
        fsync_path(path.parent)
        moved.append((str(path), str(destination)))
    return moved
