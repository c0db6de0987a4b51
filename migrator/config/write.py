"""Writing a config file safely: atomic replace, same mode and owner, the original kept aside."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

from migrator.errors import Refused
from migrator.util.files import fsync_path, write_bytes_atomic


def write_atomic(path: Path, text: str) -> Path:
    """Replace the file at `path` with `text` (UTF-8) atomically; returns the file really written.

    A temp file in the same directory is written, fsynced, given the old file's mode and owner,
    then renamed over the old one, and the directory is fsynced: a reader sees the old file or the
    new one, never half of one. A symlink is followed, so its target is edited and the link stays.
    On any failure (read-only dir, full disk, owner that cannot be kept) the temp file is removed,
    the file is untouched, and Refused says why.
    """
    target = Path(os.path.realpath(path))
    try:
        status = target.stat()
    except OSError as error:
        raise Refused(f"cannot write {target}: {error.strerror or error}") from None
    handle, temp_name = _temp_beside(target)
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(text.encode("utf-8"))
            temp.flush()
            os.fchmod(temp.fileno(), status.st_mode & 0o7777)
            if (status.st_uid, status.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(temp.fileno(), status.st_uid, status.st_gid)
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
        write_bytes_atomic(Path(f"{copy}.sha256"), f"{digest}  {copy.name}\n".encode("utf-8"), mode=0o644)
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


def _temp_beside(target: Path) -> tuple[int, str]:
    try:
        return tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as error:
        raise Refused(f"cannot write {target}: {error.strerror or error} in {target.parent}; the file is unchanged") from None


def _remove_quietly(name: str) -> None:
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass
