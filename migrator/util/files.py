"""Durable, bounded, symlink-safe file access shared by the journal, plans, reports, manifests and config.

The tool runs as root in directories others may write to: no write here follows a symlink at the
final path component (a planted link would make root overwrite another file), every file it
creates holding run data is 0600, and every read is of a regular file of bounded size (a FIFO
would hang it, /dev/zero exhaust its memory).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from migrator.errors import BadInput, CannotWrite, Refused

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


_FULL = (errno.ENOSPC, errno.EDQUOT)
RESERVE_NAME = ".room-reserve"
# Reserves set aside by `reserved_room`, by the device they are on.
_reserves: dict[Path, int] = {}


def write_bytes_atomic(path: Path, data: bytes, *, mode: int = RUN_FILE_MODE) -> None:
    """Temp file beside `path`, fsync, rename, fsync the directory: a reader (or a kill -9 at any
    instant) sees the old file or the whole new one, never half of one.

    The temp file is created exclusively (O_EXCL never follows a link) with `mode`, and the rename
    replaces whatever is at `path` (a symlink included) instead of writing through it. On a full
    disk the room a run set aside on it (`reserved_room`) is given back and the write tried once
    more. CannotWrite, naming the path, when the directory cannot be written (read-only,
    immutable, full).
    """
    path = Path(path)
    try:
        _write_atomic(path, data, mode)
    except OSError as error:
        if error.errno not in _FULL or not _give_back_room(path.parent):
            raise CannotWrite(f"cannot write {path}: {_why(error)}") from None
        try:
            _write_atomic(path, data, mode)
        except OSError as again:
            raise CannotWrite(f"cannot write {path}: {_why(again)}") from None


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        fsync_path(path.parent)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def reserved_room(directory: Path, size: int) -> Iterator[None]:
    """`size` bytes set aside in `directory` for the block: a file of that many allocated bytes,
    which `write_bytes_atomic` gives back when the disk fills, so a run can always record how it
    ended (a rollback that succeeded must not be left journaled as running). Refused (nothing
    changed) when the room is not there; removed at the end."""
    path = Path(directory) / RESERVE_NAME
    descriptor = open_no_follow(path, os.O_WRONLY | os.O_CREAT)
    try:
        try:
            os.posix_fallocate(descriptor, 0, size)
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            os.ftruncate(descriptor, 0)  # no fallocate here: write the bytes
            for offset in range(0, size, MIB):
                os.pwrite(descriptor, bytes(min(MIB, size - offset)), offset)
        os.fsync(descriptor)
    except OSError as error:
        os.close(descriptor)
        path.unlink(missing_ok=True)
        raise Refused(f"no room in {directory} for a run's journal and reports ({size} bytes set aside): "
                      f"{_why(error)}",
                      hint="free room there (or move migration.state_dir); nothing was changed") from None
    os.close(descriptor)
    _reserves[path] = os.stat(path).st_dev
    try:
        yield
    finally:
        _reserves.pop(path, None)
        path.unlink(missing_ok=True)


def _give_back_room(directory: Path) -> bool:
    """Delete a reserve on the device of `directory`; whether there was one."""
    try:
        device = os.stat(directory).st_dev
    except OSError:
        return False
    for path, reserve_device in list(_reserves.items()):
        if reserve_device == device:
            del _reserves[path]
            path.unlink(missing_ok=True)
            fsync_path(path.parent)
            return True
    return False


def open_no_follow(path: Path, flags: int, mode: int = RUN_FILE_MODE) -> int:
    """os.open that refuses a symlink or a non-regular file at `path` (Refused, naming it).

    For files the tool keeps open or appends to (the lock, the log), where an atomic replace does
    not fit. O_NOFOLLOW makes the kernel refuse the link; the fstat refuses FIFOs and devices.
    """
    try:
        descriptor = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as error:
        if os.path.islink(path):
            raise Refused(f"refusing to open {path}: it is a symbolic link", hint="remove it; the tool "
                                                                                  "creates this file itself") from None
        raise Refused(f"cannot open {path}: {_why(error)}") from None
    return _regular(descriptor, lambda kind: Refused(f"refusing to open {path}: it is {kind}, not a regular file"))


def _regular(descriptor: int, refusal: Callable[[str], Exception]) -> int:
    """`descriptor`, made blocking, when it is of a regular file; else closed and `refusal(kind)` raised."""
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise refusal(file_kind(mode))
    os.set_blocking(descriptor, True)
    return descriptor


def file_kind(mode: int) -> str:
    """What a file of `mode` (st_mode) is, for messages."""
    return ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a symbolic link" if stat.S_ISLNK(mode)
            else "a socket" if stat.S_ISSOCK(mode)
            else "a regular file" if stat.S_ISREG(mode) else "not a regular file")


def open_regular(path: str | Path, *, what: str = "file", no_follow: bool = False) -> int:
    """A read-only descriptor of the regular file at `path`; BadInput naming it when it is missing,
    unreadable, a FIFO, a device, a socket or a directory (or, with `no_follow`, a symbolic link).
    Opened non-blocking, so a FIFO without a writer is refused instead of hanging the tool. A str
    stays a str: pathlib interns every part of every Path for good, which a million backed-up
    files would pay for in memory."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_NOFOLLOW if no_follow else 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such {what}") from None
    except OSError as error:
        if no_follow and os.path.islink(path):
            raise BadInput(f"{path}: the {what} is a symbolic link, not a regular file") from None
        raise BadInput(f"{path}: cannot read the {what}: {_why(error)}") from None
    return _regular(descriptor, lambda kind: BadInput(f"{path}: the {what} is {kind}, not a regular file"))


def read_bounded(path: Path, limit: int, *, what: str = "file", no_follow: bool = False) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them; BadInput naming the path
    for a missing/unreadable file, a FIFO, a device, a directory or a file larger than `limit`.

    Opened non-blocking, so a FIFO without a writer is refused instead of hanging the tool; the
    size is checked before and while reading (a file growing under us, /proc files report 0).
    """
    path = Path(path)
    descriptor = open_regular(path, what=what, no_follow=no_follow)
    try:
        status = os.fstat(descriptor)
        if status.st_size > limit:
            raise BadInput(f"{path}: the {what} is {status.st_size} bytes, more than the {limit} allowed")
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


def link_or_copy(source: Path, target: Path) -> bool:
    """A hard link of the regular file `source` at the new path `target`, or a copy where the two
    are on different file systems (or links are not allowed there); True when linked. Only for
    files nobody writes in place again: a link shares every later write."""
    try:
        os.link(source, target, follow_symlinks=False)
        return True
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
    copy_new_file(source, target)
    return False


def copy_new_file(source: Path, target: Path) -> int:
    """Copy `source` to `target`, which must not exist yet; the bytes copied."""
    with open(source, "rb") as reader, open(target, "xb") as writer:
        shutil.copyfileobj(reader, writer, MIB)
        return writer.tell()


def iter_tree(root: Path) -> Iterator[os.DirEntry]:
    """Every entry below `root`, symbolic links not followed, depth-first with a stack of its own:
    a tree nested thousands deep cannot exhaust Python's recursion (os.walk recurses before 3.12).
    Directories that vanish or cannot be read meanwhile are skipped."""
    pending = [os.fspath(root)]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    yield entry
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
