"""Writing a config file safely: atomic replace, same mode and owner, the original kept aside."""

from __future__ import annotations

import hashlib
import os
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
    """
    source = Path(os.path.realpath(path))
    try:
        data = source.read_bytes()
    except OSError as error:
        raise Refused(f"cannot read {source} to keep a copy: {error.strerror or error}") from None
    digest = hashlib.sha256(data).hexdigest()
    dest_dir = Path(dest_dir)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        copy = _free_name(dest_dir, f"{source.name}.original", data)
        if not copy.exists():
            write_bytes_atomic(copy, data)
            os.chmod(copy, source.stat().st_mode & 0o777)
        Path(f"{copy}.sha256").write_text(f"{digest}  {copy.name}\n", encoding="utf-8")
        fsync_path(dest_dir)
    except OSError as error:
        raise Refused(f"cannot keep a copy of {source} in {dest_dir}: {error.strerror or error}") from None
    return copy, digest


def _free_name(directory: Path, name: str, data: bytes) -> Path:
    candidate, number = directory / name, 1
    while candidate.exists() and candidate.read_bytes() != data:
        number += 1
        candidate = directory / f"{name}.{number}"
    return candidate


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
