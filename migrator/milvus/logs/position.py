"""Positions in a log file: where it ended when marked, so only lines written later count."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
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
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            return Position(path, st.st_dev, st.st_ino, st.st_size, fingerprint(f, st.st_size))
    except FileNotFoundError:
        return Position(path, None, None, 0, "")


def fingerprint(f: Any, offset: int) -> str:
    start = max(0, offset - _FINGERPRINT_BYTES)
    f.seek(start)
    return hashlib.sha256(f.read(offset - start)).hexdigest()
