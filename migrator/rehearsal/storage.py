"""The copy's segment files (localStorage.path): hard-linked where no one writes them again, copied
otherwise, and only those written before production's etcd was read.

A file is hard-linked only when its name is an ID from Milvus's allocator (binlogs, deltalogs,
statslogs: `<...>/<segmentID>/<fieldID>/<logID>`): such a path is written once, and the copy,
whose allocator resumes above everything allocated before the read, never writes it again. Every
other file (a segment's compound stats log `1`, index files named after their index) is copied: the
copy could write that path again, and a write through a link would reach production's file.
Files modified after the etcd read are left out: the copy's etcd cannot reference them, and
leaving them out keeps the copy away from every path production writes from then on.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from migrator.rocksmq.checkpoint import LinkedFile
from migrator.util.files import copy_new_file, link_or_copy

_ALLOCATED_ID = 1 << 40  # IDs from Milvus's allocator are TSO-like (~4.7e17); small names are not IDs


@dataclass
class StorageCopy:
    linked: list[LinkedFile] = field(default_factory=list)
    linked_bytes: int = 0
    copied_files: int = 0
    copied_bytes: int = 0
    newer_skipped: int = 0  # written after the etcd read
    not_regular: int = 0  # symlinks, sockets...: never followed


def write_once(name: str) -> bool:
    return name.isdigit() and int(name) >= _ALLOCATED_ID


def _walk(source: Path) -> Iterator[tuple[Path, os.stat_result]]:
    for root, dirs, names in os.walk(source):  # os.walk does not follow symlinked directories
        dirs.sort()
        for name in sorted(names):
            path = Path(root, name)
            try:
                yield path, os.lstat(path)
            except FileNotFoundError:
                continue  # removed by production's garbage collection meanwhile


def bytes_to_copy(source: Path, written_before: float) -> int:
    """What a copy of `source` writes anew (files it cannot link), for the disk check."""
    cutoff_ns = int(written_before * 1e9)
    return sum(status.st_size for path, status in _walk(source)
               if stat.S_ISREG(status.st_mode) and status.st_mtime_ns <= cutoff_ns and not write_once(path.name))


def copy_storage(source: Path, target: Path, *, written_before: float) -> StorageCopy:
    result = StorageCopy()
    cutoff_ns = int(written_before * 1e9)
    target.mkdir(parents=True, exist_ok=True)
    if not source.is_dir():
        return result  # nothing flushed yet
    for path, status in _walk(source):
        if not stat.S_ISREG(status.st_mode):
            result.not_regular += 1
            continue
        if status.st_mtime_ns > cutoff_ns:
            result.newer_skipped += 1
            continue
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            if write_once(path.name) and link_or_copy(path, destination):
                result.linked.append(LinkedFile(str(path), status.st_ino, status.st_size, status.st_mtime_ns))
                result.linked_bytes += status.st_size
                continue
            if not destination.exists():
                copy_new_file(path, destination)
        except FileNotFoundError:
            continue  # removed by production's garbage collection meanwhile
        result.copied_files += 1
        result.copied_bytes += status.st_size
    return result


def changed_links(linked: list[LinkedFile]) -> list[str]:
    """Production files the copy shared by a link whose size or mtime is no longer what it was:
    a write through the copy would show here (a file production deleted meanwhile is fine)."""
    changed = []
    for entry in linked:
        try:
            status = os.lstat(entry.path)
        except FileNotFoundError:
            continue
        if status.st_ino == entry.inode and (status.st_size, status.st_mtime_ns) != (entry.size, entry.mtime_ns):
            changed.append(entry.path)
    return changed
