"""Open a RocksDB directory read-only without writing a byte into it, and without hanging on it.

rocksdict 0.3.x writes `rocksdict-config.json` into the directory it opens, even with
AccessType.read_only() or secondary(), and fails where it cannot write. So the database is opened
through a private "view": a temporary directory of symlinks to its files. A live writer can add a
file between listing and opening; the view is then rebuilt (see docs/decisions/0003).

What RocksDB would open must be a regular file: a FIFO, a device or a link (CURRENT -> /dev/zero)
among its names is refused before RocksDB sees it, and the small files it reads whole (CURRENT,
IDENTITY, OPTIONS-*) are copied into the view with a bounded read. RocksDB blocks holding the GIL
when a file it opens hangs anyway (one swapped in after the check), deaf to every signal: so the
reads run in a child process (`in_a_child`) that the tool kills on SIGINT/SIGTERM. Views are named
after their process; one left by a killed process is removed by the next read.

A damaged database must not read as a small one: every iterator's status is checked when it
stops (`check_status`: a flipped byte in an SST fails its block checksum), and a database no
process writes must not hold SST files newer than every file its MANIFEST lists (a truncated
MANIFEST opens as an empty or older database).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
    except Exception as error:  # noqa: BLE001 - rocksdict raises plain Exception for every RocksDB status
        directory = _OPENED.get(db.path(), db.path())
        raise BadInput(f"RocksDB at {directory} is damaged: {_short(error)}",
                       hint="restore it from a backup; its messages cannot all be read") from None


def _short(error: Exception) -> str:
    return re.sub(rf"{re.escape(tempfile.gettempdir())}/{VIEW_PREFIX}[^/ ]*/", "", str(error)).splitlines()[0][:300]


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


VIEW_PREFIX = "milvus-migrate-view-"
_COPIED = re.compile(r"^(CURRENT|IDENTITY|OPTIONS-\d+)$")  # read whole by RocksDB: copied, bounded
_COPIED_LIMIT = 1024 * 1024
# Read-only RocksDB never takes the lock, and writes its info LOG into the view itself.
_LEFT_OUT = re.compile(r"^(LOCK|LOG|LOG\.old\.\d+)$")


def _build_view(source: Path, view: Path) -> None:
    """Fill the empty `view` with what RocksDB reads of `source`: links to its files, copies of the
    small ones. BadInput naming a RocksDB file that is no regular file."""
    from migrator.rocksmq.layout import ROCKSDB_FILE
    from migrator.util.files import file_kind, read_bounded

    with os.scandir(source) as entries:
        for entry in entries:
            name = entry.name
            if _LEFT_OUT.match(name):
                continue
            mode = entry.stat(follow_symlinks=False).st_mode
            if not stat.S_ISREG(mode):
                if ROCKSDB_FILE.match(name):
                    raise BadInput(f"{source / name} is {file_kind(mode)}, not a regular file: not RocksDB's",
                                   hint="RocksDB keeps only regular files here; move it out")
                continue  # RocksDB opens only its own names
            if _COPIED.match(name):
                (view / name).write_bytes(read_bounded(source / name, _COPIED_LIMIT, what="RocksDB file",
                                                       no_follow=True))
            else:
                os.symlink(source / name, view / name)


def remove_views(*, of_pid: int | None = None) -> None:
    """Views left by processes that are gone (or, `of_pid`, by that one): they hold links and
    small copies only. Only directories of this user, never through a link."""
    for view in Path(tempfile.gettempdir()).glob(f"{VIEW_PREFIX}*-*"):
        try:
            pid = int(view.name[len(VIEW_PREFIX):].split("-", 1)[0])
            status = os.lstat(view)
        except (ValueError, OSError):
            continue
        if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.geteuid() or pid == os.getpid():
            continue
        if pid == of_pid or not _alive(pid):
            shutil.rmtree(view, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def in_a_child(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` run in a child process, its result (or its BadInput/Refused) returned
    here. Waiting, this process answers SIGINT and SIGTERM (KeyboardInterrupt): the child is
    killed and its view removed. Spawned, not forked: the tool may hold gRPC's threads."""
    import multiprocessing

    remove_views()
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, function, args), daemon=True,
                            name="milvus-migrate-rocksdb-reader")
    child.start()
    sender.close()
    try:
        while not receiver.poll(0.1):
            if not child.is_alive() and not receiver.poll(0):
                break
        try:
            kind, value = receiver.recv()
        except EOFError:  # it died without a word (killed, out of memory)
            child.join()
            raise BadInput(f"the RocksDB reader stopped without an answer (exit {child.exitcode})") from None
    except BaseException:
        child.kill()
        child.join()
        remove_views(of_pid=child.pid)
        raise
    finally:
        receiver.close()
    child.join()
    if kind == "ok":
        return value
    error_type, message, hint = value
    raise error_type(message, hint=hint)


def _child(sender: Any, function: Callable[..., Any], args: tuple) -> None:
    from migrator.errors import MigrateError

    try:
        answer: tuple[str, Any] = ("ok", function(*args))
    except MigrateError as error:
        answer = ("error", (type(error), error.message, error.hint))
    except Exception as error:  # noqa: BLE001 - whatever RocksDB raised, said once by the parent
        answer = ("error", (BadInput, f"cannot read RocksDB: {type(error).__name__}: {error}", None))
    sender.send(answer)
    sender.close()


@contextmanager
def open_read_only(directory: Path, *, check_unlisted: bool = True) -> Iterator[Any]:
    """Yield an open rocksdict.Rdict in raw mode; BadInput naming the path if it cannot be read.
    `check_unlisted` False: SSTs its MANIFEST does not list are expected (a copy of a live one)."""
    from rocksdict import AccessType, Options, Rdict

    last_error = ""
    for _attempt in range(OPEN_ATTEMPTS):
        with tempfile.TemporaryDirectory(prefix=f"{VIEW_PREFIX}{os.getpid()}-") as view_dir:
            view = Path(view_dir)
            try:
                _build_view(directory, view)
            except OSError as error:
                raise BadInput(f"cannot read {directory}: {error.strerror}") from error
            try:
                db = Rdict(str(view), Options(raw_mode=True), access_type=AccessType.read_only())
            except Exception as error:
                last_error = str(error).replace(str(view), str(directory))
                if "No such file" in last_error:  # a live writer moved on: rebuild the view
                    continue
                raise BadInput(f"cannot open RocksDB at {directory}: {last_error}") from error
            try:
                from migrator.rocksmq.layout import is_locked

                if check_unlisted and not is_locked(directory):  # a live writer adds SSTs before it lists them
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


def prefixed(db: Any, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) pairs of `db` whose key starts with `prefix`, from `start` (default: the prefix)
    on; BadInput if the scan stops on damage."""
    iterator = db.iter()
    iterator.seek(start if start is not None else prefix)
    while iterator.valid():
        key = iterator.key()
        if not key.startswith(prefix):
            return
        yield key, iterator.value()
        iterator.next()
    check_status(iterator, db)
