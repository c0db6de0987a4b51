"""Durable, bounded, symlink-safe file access shared by the journal, plans, reports, manifests and config.

The tool runs as root in directories others may write to: no write here follows a symlink at the
final path component (a planted link would make root overwrite another file), every file it
creates holding run data is 0600, and every read is of a regular file of bounded size (a FIFO
would hang it, /dev/zero exhaust its memory).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from migrator.errors import BadInput, Refused

KIB = 1024
MIB = 1024 * KIB
RUN_FILE_MODE = 0o600  # journal, plan, report, lock, manifest: they may name hosts, paths, collections


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory's fsync makes a rename in it durable)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _why(error: OSError) -> str:
    return error.strerror or str(error)


def child_path(directory: Path, *parts: str, what: str) -> Path:
    """`directory/parts...` for names read from a journal or a plan (a run id, a recorded copy):
    BadInput naming `what` unless each part is a plain name and everything above the last part
    resolves, symlinks followed, inside `directory`. The last part may be a planted link: files
    there are replaced atomically, never written through (write_bytes_atomic)."""
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\0" in part:
            raise BadInput(f"{what}: {part!r} is not a plain file name")
    path = Path(directory).joinpath(*parts)
    base, parent = Path(directory).resolve(), path.parent.resolve()
    if parent != base and base not in parent.parents:
        raise BadInput(f"{what}: {'/'.join(parts)!r} leads outside {directory}")
    return path


def write_bytes_atomic(path: Path, data: bytes, *, mode: int = RUN_FILE_MODE) -> None:
    """Temp file beside `path`, fsync, rename, fsync the directory: a reader (or a kill -9 at any
    instant) sees the old file or the whole new one, never half of one.

    The temp file is created exclusively (O_EXCL never follows a link) with `mode`, and the rename
    replaces whatever is at `path` (a symlink included) instead of writing through it. Refused,
    naming the path, when the directory cannot be written (read-only, immutable, full).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise Refused(f"cannot write {path}: {_why(error)}") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        fsync_path(path.parent)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise Refused(f"cannot write {path}: {_why(error)}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def open_no_follow(path: Path, flags: int, mode: int = RUN_FILE_MODE) -> int:
    """os.open that refuses a symlink or a non-regular file at `path` (Refused, naming it).

    For files the tool keeps open or appends to (the lock, the log), where an atomic replace does
    not fit. O_NOFOLLOW makes the kernel refuse the link; the fstat refuses FIFOs and devices.
    """
    try:
        descriptor = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as error:
        if os.path.islink(path):
            raise Refused(f"refusing to open {path}: it is a symbolic link", hint="remove it; the tool creates this file itself") from None
        raise Refused(f"cannot open {path}: {_why(error)}") from None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode):
        os.close(descriptor)
        raise Refused(f"refusing to open {path}: it is not a regular file")
    os.set_blocking(descriptor, True)
    return descriptor


def read_bounded(path: Path, limit: int, *, what: str = "file") -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them; BadInput naming the path
    for a missing/unreadable file, a FIFO, a device, a directory or a file larger than `limit`.

    Opened non-blocking, so a FIFO without a writer is refused instead of hanging the tool; the
    size is checked before and while reading (a file growing under us, /proc files report 0).
    """
    path = Path(path)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such {what}") from None
    except OSError as error:
        raise BadInput(f"{path}: cannot read the {what}: {_why(error)}") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            kind = ("a directory" if stat.S_ISDIR(status.st_mode) else "a FIFO" if stat.S_ISFIFO(status.st_mode)
                    else "a device" if stat.S_ISCHR(status.st_mode) or stat.S_ISBLK(status.st_mode)
                    else "a socket" if stat.S_ISSOCK(status.st_mode) else "not a regular file")
            raise BadInput(f"{path}: the {what} is {kind}, not a regular file")
        if status.st_size > limit:
            raise BadInput(f"{path}: the {what} is {status.st_size} bytes, more than the {limit} allowed")
        os.set_blocking(descriptor, True)
        chunks, size = [], 0
        while True:
            chunk = os.read(descriptor, min(MIB, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise BadInput(f"{path}: the {what} is more than the {limit} bytes allowed")
        return b"".join(chunks)
    except OSError as error:
        raise BadInput(f"{path}: cannot read the {what}: {_why(error)}") from None
    finally:
        os.close(descriptor)
