"""Open a RocksDB directory read-only without writing a byte into it.

rocksdict 0.3.x writes `rocksdict-config.json` into the directory it opens, even with
AccessType.read_only() or secondary(), and fails where it cannot write. So the database is opened
through a private "view": a temporary directory of symlinks to its files. A live writer can add a
file between listing and opening; the view is then rebuilt (see docs/decisions/0003).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from migrator.errors import BadInput

OPEN_ATTEMPTS = 8


def _link_view(source: Path, view: Path) -> None:
    for name in os.listdir(source):
        if name != "LOCK":  # read-only RocksDB never takes the lock
            os.symlink(source / name, view / name)


@contextmanager
def open_read_only(directory: Path) -> Iterator[Any]:
    """Yield an open rocksdict.Rdict in raw mode; BadInput naming the path if it cannot be read."""
    from rocksdict import AccessType, Options, Rdict

    last_error = ""
    for _attempt in range(OPEN_ATTEMPTS):
        with tempfile.TemporaryDirectory(prefix="milvus-migrate-view-") as view_dir:
            view = Path(view_dir)
            try:
                _link_view(directory, view)
            except OSError as error:
                raise BadInput(f"cannot read {directory}: {error.strerror}") from error
            try:
                db = Rdict(str(view), Options(raw_mode=True), access_type=AccessType.read_only())
            except Exception as error:  # rocksdict raises plain Exception for every RocksDB status
                last_error = str(error).replace(str(view), str(directory))
                if "No such file" in last_error:  # a live writer moved on: rebuild the view
                    continue
                raise BadInput(f"cannot open RocksDB at {directory}: {last_error}") from error
            try:
                yield db
            finally:
                db.close()
            return
    raise BadInput(
        f"cannot open RocksDB at {directory}: it changed under every attempt ({last_error})",
        hint="retry, or stop Milvus first",
    )
