"""Writing a config file safely: atomic replace, or in place where a mount holds the file's inode;
mode, owner, extended attributes (POSIX ACLs, SELinux labels) and hard links kept; the original
kept aside.

When to write in place (docs/decisions/0010-write-in-place-where-a-mount-holds-the-inode.md): a
rename gives the path a new inode, and whatever holds the old one keeps reading it. A container
whose config file is a single-file bind mount (`./milvus.yaml:/milvus/configs/milvus.yaml`) holds
it by inode, so a running Milvus there would never see a renamed file; other hard links would keep
the old content; a file that is itself a mount point here cannot be renamed over at all. Those
files are rewritten in place instead, safely (write-ahead copy, checks before and after).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path

from migrator.errors import NotRolledBack, Refused
from migrator.util.files import fsync_path, write_bytes_atomic


def write_atomic(path: Path, text: str) -> Path:
    """Replace the content of the file at `path` with `text` (UTF-8); returns the file really written.

    A symlink is followed, so its target is edited and the link stays. Usually: a temp file in the
    same directory is written, given the old file's mode, owner and extended attributes, fsynced,
    renamed over the old one, and the directory is fsynced: a reader sees the old file or the new
    one, never half of one. Where a mount holds the file's inode, or it has other hard links, it is
    written in place (`write_in_place`). On any failure before the file changes (read-only dir, full
    disk, owner or attribute that cannot be kept) the file is untouched and Refused says why.
    """
    target = Path(os.path.realpath(path))
    try:
        status = target.stat()
    except OSError as error:
        raise Refused(f"cannot write {target}: {error.strerror or error}") from None
    data = text.encode("utf-8")
    views = mount_views(target)
    if views or status.st_nlink > 1 or is_mount_point(target):
        write_in_place(target, data, views)
        return target
    handle, temp_name = _temp_beside(target)
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fchmod(temp.fileno(), status.st_mode & 0o7777)
            if (status.st_uid, status.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(temp.fileno(), status.st_uid, status.st_gid)
            _copy_xattrs(target, temp.fileno())  # after fchmod: an ACL sets the mode bits it implies
            os.fsync(temp.fileno())
        os.replace(temp_name, target)
    except OSError as error:
        _remove_quietly(temp_name)
        raise Refused(f"cannot write {target}: {error.strerror or error}; the file is unchanged") from None
    except BaseException:
        _remove_quietly(temp_name)
        raise
    fsync_path(target.parent)
    return target


def write_in_place(target: Path, data: bytes, views: list[Path] | None = None) -> None:
    """Rewrite `target` through its own inode (mode, owner, xattrs and every link kept).

    1. A write-ahead copy of the new content beside it, fsynced (a crash mid-write leaves it, named
       in the error, next to the original kept by `keep_original`).
    2. The file opened without following a symlink and checked to be the inode we looked at.
    3. Truncated and written in one call, fsynced, read back and compared; also through every
       mount `views` names (another mount namespace's view of the same inode: what the container
       reads), so the edit is proven to be what Milvus there will read.
    Milvus re-reads its config every 5 s; the truncate-and-write window is one system call long.
    """
    status = target.stat()
    handle, ahead = _temp_beside(target, suffix=".write-ahead")
    try:
        with os.fdopen(handle, "wb") as copy:
            copy.write(data)
            copy.flush()
            os.fsync(copy.fileno())
        fsync_path(target.parent)
        descriptor = os.open(target, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        _remove_quietly(ahead)
        raise Refused(f"cannot write {target} in place: {error.strerror or error}; the file is unchanged") from None
    try:
        opened = os.fstat(descriptor)
        if (opened.st_dev, opened.st_ino) != (status.st_dev, status.st_ino):
            _remove_quietly(ahead)
            raise Refused(f"{target} was replaced while being written; the file is unchanged")
        original = _read_all(descriptor)
        try:
            os.ftruncate(descriptor, 0)
            if os.pwrite(descriptor, data, 0) != len(data):
                raise OSError(errno.ENOSPC, "short write")
            os.fsync(descriptor)
        except OSError as error:
            _put_back(descriptor, target, original, ahead, error)
        written = _read_all(descriptor)
    finally:
        os.close(descriptor)
    if written != data:
        raise NotRolledBack(f"{target}: the bytes read back differ from those written",
                            hint=f"the intended content is in {ahead}")
    for view in views or []:
        with contextlib.suppress(OSError):  # the container may have stopped meanwhile: nothing to check
            if Path(view).read_bytes() != data:
                raise NotRolledBack(f"{target}: the container's view {view} does not show the new content",
                                    hint=f"the intended content is in {ahead}")
    _remove_quietly(ahead)
    fsync_path(target.parent)


def _read_all(descriptor: int) -> bytes:
    chunks, offset = [], 0
    while chunk := os.pread(descriptor, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _put_back(descriptor: int, target: Path, original: bytes, ahead: str, error: OSError) -> None:
    """The in-place write failed half-way: write the original back, and say which state it is in."""
    why = error.strerror or str(error)
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, original, 0)
        os.fsync(descriptor)
    except OSError:
        raise NotRolledBack(f"cannot write {target} in place ({why}) nor put its original back: it may be cut short",
                            hint=f"restore it from the kept original; the intended content is in {ahead}") from None
    _remove_quietly(ahead)
    raise Refused(f"cannot write {target} in place: {why}; the original content was put back") from None


def _copy_xattrs(source: Path, descriptor: int) -> None:
    """Every extended attribute of `source` onto the open file: POSIX ACLs (system.posix_acl_*),
    SELinux labels (security.selinux), user.* attributes. A rename would drop them otherwise."""
    try:
        names = os.listxattr(source, follow_symlinks=False)
    except OSError as error:
        if error.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return  # no extended attributes on this file system: nothing to keep
        raise
    for name in names:
        os.setxattr(descriptor, name, os.getxattr(source, name, follow_symlinks=False))


# --- who holds a file by its inode ----------------------------------------------------------


_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes (\\040 ...)."""
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def _mountinfo(pid: str) -> list[tuple[str, str]]:
    """(root within its file system, mount point) of each mount that process `pid` sees."""
    try:
        with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    mounts = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 5:
            mounts.append((_unescape(fields[3]), _unescape(fields[4])))
    return mounts


def mount_views(target: Path) -> list[Path]:
    """Paths (`/proc/<pid>/root/<mount point>`) through which another mount namespace on this host
    sees `target`'s inode mounted on its own: a container's single-file bind mount of it. Found by
    reading each namespace's mountinfo once (one process per namespace), then proven by inode."""
    try:
        status = target.stat()
        own = os.readlink("/proc/self/ns/mnt")
        pids = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return []  # no /proc: nothing can be found, and nothing of ours mounts it
    seen, views = {own}, []
    for pid in pids:
        try:
            namespace = os.readlink(f"/proc/{pid}/ns/mnt")
        except OSError:
            continue  # gone, or a kernel thread
        if namespace in seen:
            continue
        seen.add(namespace)
        for root, mount_point in _mountinfo(pid):
            if os.path.basename(root) != target.name:
                continue
            view = Path(f"/proc/{pid}/root{mount_point}")
            with contextlib.suppress(OSError):
                shown = view.stat()
                if (shown.st_dev, shown.st_ino) == (status.st_dev, status.st_ino):
                    views.append(view)
    return views


def is_mount_point(target: Path) -> bool:
    """Is the file itself mounted here (this tool runs in a container with the file bind-mounted)?
    A rename onto it fails (EBUSY); it must be written in place."""
    return any(mount_point == str(target) for _, mount_point in _mountinfo("self"))


def keep_original(path: Path, dest_dir: Path) -> tuple[Path, str]:
    """Copy the file at `path` (its symlink target) into `dest_dir` before it is edited.

    Returns (copy, sha256 hex) and writes `<copy>.sha256` in `sha256sum -c` format. A copy with
    the same content already there is reused (a resumed run), a different one is not overwritten.
    Neither the copy nor its `.sha256` is written through a symlink planted in `dest_dir` (each is
    replaced atomically), and a symlink or non-regular file there is never taken for a kept copy.
    """
    from migrator.config.yamldoc import CONFIG_LIMIT
    from migrator.errors import BadInput
    from migrator.util.files import read_bounded

    source = Path(os.path.realpath(path))
    try:
        data = read_bounded(source, CONFIG_LIMIT, what="config file")
    except BadInput as error:
        raise Refused(f"cannot keep a copy of {source}: {error.message}") from None
    digest = hashlib.sha256(data).hexdigest()
    dest_dir = Path(dest_dir)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        copy = _free_name(dest_dir, f"{source.name}.original", data)
        if not os.path.lexists(copy):
            write_bytes_atomic(copy, data, mode=source.stat().st_mode & 0o777)
        write_bytes_atomic(Path(f"{copy}.sha256"), f"{digest}  {copy.name}\n".encode(), mode=0o644)
        fsync_path(dest_dir)
    except OSError as error:
        raise Refused(f"cannot keep a copy of {source} in {dest_dir}: {error.strerror or error}") from None
    return copy, digest


def _free_name(directory: Path, name: str, data: bytes) -> Path:
    """`name`, or `name.2`, ...: the first that is free or a regular file holding `data` already."""
    candidate, number = directory / name, 1
    while os.path.lexists(candidate) and not _holds(candidate, data):
        number += 1
        candidate = directory / f"{name}.{number}"
    return candidate


def _holds(candidate: Path, data: bytes) -> bool:
    status = os.lstat(candidate)
    if not stat.S_ISREG(status.st_mode) or status.st_size != len(data):
        return False
    return candidate.read_bytes() == data


def _temp_beside(target: Path, suffix: str = ".tmp") -> tuple[int, str]:
    try:
        return tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    except OSError as error:
        raise Refused(f"cannot write {target}: {error.strerror or error} in {target.parent}; "
                      "the file is unchanged") from None


def _remove_quietly(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)
