"""File plumbing for backups: streamed copy with hashing, re-hashing, durable writes, free space."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path

CHUNK = 8 * 1024 * 1024


def _copy_in_kernel(reader: int, writer: int, size: int) -> bool:
    """copy_file_range: the kernel moves the bytes (what `cp` does); False where it is not supported."""
    copied = 0
    try:
        while copied < size:
            step = os.copy_file_range(reader, writer, size - copied)
            if step == 0:
                break
            copied += step
    except OSError as error:
        if error.errno in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL) and copied == 0:
            return False
        raise
    return True


def copy_and_hash(source: Path, target: Path) -> tuple[int, str]:
    """Copy `source` to a new file `target` (fsynced) and hash what was written: (size, sha256)."""
    with open(source, "rb", buffering=0) as reader, open(target, "xb", buffering=0) as writer:
        size = os.fstat(reader.fileno()).st_size
        if not _copy_in_kernel(reader.fileno(), writer.fileno(), size):
            shutil.copyfileobj(reader, writer, CHUNK)
        os.fsync(writer.fileno())
    shutil.copystat(source, target)
    # Hashing the copy (hot in the page cache) makes the manifest describe what the backup holds.
    return hash_file(target)


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


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """temp file, fsync, rename, fsync the directory: readers see the old file or the whole new one."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_dir(path.parent)


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
