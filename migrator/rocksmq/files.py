"""File plumbing for backups: streamed copy with hashing, re-hashing, durable writes, free space."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import os
import stat
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from migrator.util.files import fsync_path, iter_tree, open_regular

FICLONE = 0x40049409  # linux/fs.h _IOW(0x94, 9, int): share the source's blocks copy-on-write

# 1 MiB chunks stay in the CPU cache between the read, the hash and the write; 4-8 MiB measured no
# faster (benchmarks/bench_rocksmq.py --strategies), and hashing is what bounds the copy.
CHUNK = 1024 * 1024
# Start the disk write of every WRITEBACK_EVERY bytes while the copy goes on, so the fsync pass at
# the end finds little left to write (measured: the durable copy then costs ~the copy alone).
WRITEBACK_EVERY = 8 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h: start writeback, do not wait


def _load_sync_file_range() -> Callable[[int, int, int], object]:
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # not Linux/glibc: writeback starts by itself, fsync still waits
        return lambda fd, offset, length: None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    # Only a hint: failures are ignored here, the fsync pass reports any write error.
    return lambda fd, offset, length: function(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


start_writeback = _load_sync_file_range()


def copy_and_hash(source: str | Path, target: str | Path) -> tuple[int, str, str]:
    """Copy the regular file `source` to a new file `target`; (size, sha256 of what was written, how).

    How: "reflink" when the file system shares the blocks copy-on-write (FICLONE: btrfs, XFS, ...),
    a copy that changes later never reaches the source, and the source is read once to hash it;
    else "copy", in one pass: each chunk read once, hashed and written from the same buffer
    (hashing releases the GIL, so several files copy in parallel on threads). Holes are kept
    (SEEK_DATA/SEEK_HOLE): a sparse file takes no more room in the copy than in the source. The
    disk write is started as the copy goes but NOT waited for: the caller makes the copies durable
    with `fsync_files` before relying on them. A source that is a link, FIFO or device: BadInput.
    """
    reader = open_regular(source, what="file", no_follow=True)
    try:
        writer = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            if _reflink(reader, writer):
                size, digest = _hash_descriptor(reader)
                how = "reflink"
            else:
                size, digest = _sparse_copy(reader, writer)
                how = "copy"
            status = os.fstat(reader)
            os.fchmod(writer, stat.S_IMODE(status.st_mode))
            os.utime(writer, ns=(status.st_atime_ns, status.st_mtime_ns))
        finally:
            os.close(writer)
    finally:
        os.close(reader)
    return size, digest, how


_NO_REFLINK: set[tuple[int, int]] = set()  # (source device, target device) that refused FICLONE


def _reflink(reader: int, writer: int) -> bool:
    """Share `reader`'s blocks with the empty `writer` (FICLONE); False where the file system cannot
    (asked once per pair of devices)."""
    devices = (os.fstat(reader).st_dev, os.fstat(writer).st_dev)
    if devices in _NO_REFLINK:
        return False
    try:
        fcntl.ioctl(writer, FICLONE, reader)
    except OSError:
        _NO_REFLINK.add(devices)
        return False
    return True


def _sparse_copy(reader: int, writer: int) -> tuple[int, str]:
    """Copy the data regions, leave the holes holes; hash every byte (zeros of the holes too)."""
    digest = hashlib.sha256()
    end = os.fstat(reader).st_size
    chunk_size = _chunk_for(end)
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    offset = flushed = 0
    while offset < end:
        data = _seek(reader, offset, os.SEEK_DATA, end)
        _hash_zeros(digest, data - offset)
        if data >= end:
            offset = end
            break
        hole = min(_seek(reader, data, os.SEEK_HOLE, end), end)
        position = data
        while position < hole:
            read = os.preadv(reader, [view[: min(chunk_size, hole - position)]], position)
            if not read:  # the file shrank under us: the caller's fingerprint notices
                hole = position
                break
            chunk = view[:read]
            digest.update(chunk)
            written = 0
            while written < read:
                written += os.pwrite(writer, chunk[written:], position + written)
            position += read
            if position - flushed >= WRITEBACK_EVERY:
                start_writeback(writer, flushed, position - flushed)
                flushed = position
        offset = hole
    os.ftruncate(writer, offset)  # a hole at the end is a length, not blocks
    if offset - flushed >= CHUNK:  # a small rest goes with the fsync (or syncfs) pass
        start_writeback(writer, flushed, offset - flushed)
    return offset, digest.hexdigest()


def _seek(descriptor: int, offset: int, whence: int, end: int) -> int:
    """lseek SEEK_DATA/SEEK_HOLE; past the last data (ENXIO) is `end`; a file system without them
    has one data region, the whole file."""
    try:
        return os.lseek(descriptor, offset, whence)
    except OSError as error:
        if error.errno == errno.ENXIO:
            return end
        if error.errno == errno.EINVAL:
            return offset if whence == os.SEEK_DATA else end
        raise


_ZEROS = bytes(CHUNK)


def _hash_zeros(digest: Any, count: int) -> None:
    while count > 0:
        digest.update(_ZEROS[: min(count, CHUNK)])
        count -= CHUNK


def _chunk_for(size: int) -> int:
    """A buffer as large as the file, up to CHUNK: a million small files need no MiB each."""
    return max(4096, min(CHUNK, size + 1))


def _hash_descriptor(descriptor: int) -> tuple[int, str]:
    digest = hashlib.sha256()
    buffer = bytearray(_chunk_for(os.fstat(descriptor).st_size))
    view = memoryview(buffer)
    size = 0
    while True:
        read = os.preadv(descriptor, [buffer], size)
        if not read:
            break
        digest.update(view[:read])  # releases the GIL: files are hashed on several threads
        size += read
    return size, digest.hexdigest()


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # not Linux/glibc: callers fsync each file
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_syncfs = _load_syncfs()


def sync_file_system(directory: Path) -> bool:
    """Write every dirty page of the file system holding `directory` to disk and wait (syncfs):
    one call instead of an fsync (and a journal commit) per file, for many small copies. False
    where there is no syncfs or it failed: fsync each file then."""
    if _syncfs is None:
        return False
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _syncfs(descriptor) == 0
    finally:
        os.close(descriptor)


def fsync_files(paths: Iterable[Path], threads: int = 2) -> None:
    """fsync every file (on `threads` threads); raises the first write error. Call it before writing
    whatever declares the files complete."""

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fsync_path, paths))


def hash_file(path: str | Path) -> tuple[int, str]:
    """(size, sha256) of the regular file at `path` (a link, FIFO or device: BadInput)."""
    descriptor = open_regular(path, what="file", no_follow=True)
    try:
        return _hash_descriptor(descriptor)
    finally:
        os.close(descriptor)


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
    for entry in iter_tree(directory):
        try:
            if entry.is_file(follow_symlinks=False):
                found.append(Path(entry.path).relative_to(directory))
        except OSError:
            continue
    return sorted(found)
