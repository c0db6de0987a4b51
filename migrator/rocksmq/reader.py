"""Open a RocksDB directory read-only without writing a byte into it.

rocksdict 0.3.x writes `rocksdict-config.json` into the directory it opens, even with
AccessType.read_only() or secondary(), and fails where it cannot write. So the database is opened
through a private "view": a temporary directory of symlinks to its files. A live writer can add a
file between listing and opening; the view is then rebuilt (see docs/decisions/0003).

A damaged database must not read as a small one: every iterator's status is checked when it
stops (`check_status`: a flipped byte in an SST fails its block checksum), and a database no
process writes must not hold SST files newer than every file its MANIFEST lists (a truncated
MANIFEST opens as an empty or older database).
"""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from migrator.errors import BadInput

OPEN_ATTEMPTS = 8
_SST = re.compile(r"^(\d+)\.sst$")


# The view a database was opened through -> the directory it shows (for messages).
_OPENED: dict[str, Path] = {}


def check_status(iterator: Any, db: Any) -> None:
    """BadInput when `iterator` (of `db`, opened here) stopped on an error (corruption, I/O)
    rather than at the end of its keys."""
    try:
        iterator.status()
    except Exception as error:  # rocksdict raises plain Exception for every RocksDB status
        directory = _OPENED.get(db.path(), db.path())
        raise BadInput(f"RocksDB at {directory} is damaged: {_short(error)}",
                       hint="restore it from a backup; its messages cannot all be read") from None


def _short(error: Exception) -> str:
    return re.sub(r"/tmp/milvus-migrate-view-[^/ ]*/", "", str(error)).splitlines()[0][:300]


def _check_manifest_lists_every_sst(db: Any, directory: Path) -> None:
    live = {int(m.group(1)) for f in db.live_files() if (m := _SST.match(f["name"].lstrip("/")))}
    on_disk = {int(m.group(1)) for name in os.listdir(directory) if (m := _SST.match(name))}
    newest = max(live, default=-1)
    unknown = sorted(number for number in on_disk - live if number > newest)
    if unknown:
        raise BadInput(
            f"RocksDB at {directory} is damaged: {len(unknown)} SST file(s) ({unknown[0]:06d}.sst...) are newer than "
            "every file its MANIFEST lists (a truncated or replaced MANIFEST?)",
            hint="restore it from a backup; if Milvus crashed while flushing, start and stop it once first")


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
                from migrator.rocksmq.layout import is_locked

                if not is_locked(directory):  # a live writer adds SSTs before it lists them
                    _check_manifest_lists_every_sst(db, directory)
                _OPENED[db.path()] = directory
                yield db
            finally:
                _OPENED.pop(db.path(), None)
                db.close()
            return
    raise BadInput(
        f"cannot open RocksDB at {directory}: it changed under every attempt ({last_error})",
        hint="retry, or stop Milvus first",
    )
