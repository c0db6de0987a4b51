"""Positions in a log file: where it ended when marked, so only lines written later count."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_FINGERPRINT_BYTES = 64  # bytes before a mark that must still be there to trust its offset


@dataclass(frozen=True)
class Position:
    """Where a file ended when it was marked. Plain data: `dataclasses.asdict` / `Position(**d)`.

    `inode` is None when the file did not exist: then everything it will hold counts.
    `fingerprint` is a hash of the bytes just before `offset`, to notice a file that was
    truncated and rewritten past the offset between the mark and the follow.
    """

    path: str
    device: int | None
    inode: int | None
    offset: int
    fingerprint: str


def mark(path: str | os.PathLike[str]) -> Position:
    """The current end of `path`: a follower started from here sees only lines written later."""
    path = os.fspath(path)
    descriptor = open_log(path)
    if descriptor is None:
        return Position(path, None, None, 0, "")
    with os.fdopen(descriptor, "rb") as f:
        st = os.fstat(f.fileno())
        return Position(path, st.st_dev, st.st_ino, st.st_size, fingerprint(f, st.st_size))


def open_log(path: str) -> int | None:
    """A read-only descriptor of the log file at `path`, None when there is none yet; BadInput when
    it is no regular file (a FIFO would hang the follower, /dev/zero never end)."""
    from migrator.errors import BadInput
    from migrator.util.files import open_regular

    try:
        return open_regular(Path(path), what="Milvus log file")
    except BadInput:
        if not os.path.lexists(path):
            return None
        raise


def fingerprint(f: Any, offset: int) -> str:
    start = max(0, offset - _FINGERPRINT_BYTES)
    f.seek(start)
    return hashlib.sha256(f.read(offset - start)).hexdigest()
