"""File plumbing for backups: streamed copy with hashing, re-hashing, durable writes, free space."""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

from migrator.util.files import fsync_path

# 1 MiB chunks stay in the CPU cache between the read, the hash and the write; 4-8 MiB measured no
# faster (benchmarks/bench_rocksmq.py --strategies), and hashing is what bounds the copy.
CHUNK = 1024 * 1024
# Start the disk write of every WRITEBACK_EVERY bytes while the copy goes on, so the fsync pass at
# the end finds little left to write (measured: the durable copy then costs ~the copy alone).
WRITEBACK_EVERY = 8 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h: start writeback, do not wait


def _load_sync_file_range():
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # not Linux/glibc: writeback starts by itself, fsync still waits
        return lambda fd, offset, length: None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    # Only a hint: failures are ignored here, the fsync pass reports any write error.
    return lambda fd, offset, length: function(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


start_writeback = _load_sync_file_range()


def copy_and_hash(source: Path, target: Path) -> tuple[int, str]:
    """Copy `source` to a new file `target` in one pass and return (size, sha256) of what was written.

    Each chunk is read once, hashed and written from the same buffer (hashing releases the GIL,
    so several files copy in parallel on threads). The disk write is started as the copy goes but
    NOT waited for: the caller makes the copies durable with `fsync_files` before relying on them.
    """
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    size = flushed = 0
    with open(source, "rb", buffering=0) as reader, open(target, "xb", buffering=0) as writer:
        fd = writer.fileno()
        while True:
            read = reader.readinto(buffer)
            if not read:
                break
            chunk = view[:read]
            digest.update(chunk)
            while chunk:
                chunk = chunk[writer.write(chunk) :]
            size += read
            if size - flushed >= WRITEBACK_EVERY:
                start_writeback(fd, flushed, size - flushed)
                flushed = size
        if size > flushed:
            start_writeback(fd, flushed, size - flushed)
    shutil.copystat(source, target)
    return size, digest.hexdigest()


def fsync_files(paths: Iterable[Path], threads: int = 2) -> None:
    """fsync every file (on `threads` threads); raises the first write error. Call it before writing
    whatever declares the files complete."""

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fsync_path, paths))


def hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as reader:
        while True:
            read = reader.readinto(buffer)
            if not read:
                break
            digest.update(view[:read])  # releases the GIL: files are hashed on several threads
            size += read
    return size, digest.hexdigest()


def existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def free_bytes(path: Path) -> int:
    stats = os.statvfs(existing_ancestor(path))
    return stats.f_bavail * stats.f_frsize


def regular_files(directory: Path) -> list[Path]:
    """Every regular file under `directory`, relative to it, sorted."""
    found = []
    for root, _dirs, names in os.walk(directory):
        for name in names:
            full = Path(root, name)
            if full.is_file() and not full.is_symlink():
                found.append(full.relative_to(directory))
    return sorted(found)
