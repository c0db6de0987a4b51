"""Log followers: a file followed like `tail -F`, or a command's output (journalctl, docker logs).

Followers hold at most one partial line (capped), so memory stays flat whatever the size of the log.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from migrator.milvus.logs.position import Position, fingerprint, open_log

MAX_LINE_BYTES = 1 << 20  # a longer line is cut here; the rest of it is skipped
_CHUNK_BYTES = 64 * 1024


class Follower(Protocol):
    source: str  # for messages: the path or the command
    ended: bool  # the source can give no more lines (a command that exited)

    def lines(self, deadline: float) -> Iterator[str]:
        """Lines as they come, until `deadline` (a `time.monotonic()` value) or the source ends."""
        ...

    def close(self) -> None: ...


class _LineSplitter:
    """Bytes in, whole lines out; keeps one partial line, at most `max_line_bytes` of it."""

    def __init__(self, max_line_bytes: int) -> None:
        self._max = max_line_bytes
        self._partial = bytearray()
        self._skipping = False  # inside the cut-off rest of an over-long line

    def feed(self, data: bytes) -> list[str]:
        if self._skipping:
            nl = data.find(b"\n")
            if nl < 0:
                return []
            self._skipping = False
            data = data[nl + 1 :]
        last_nl = data.rfind(b"\n")
        if last_nl < 0:
            return self._keep(data)
        # One decode and one split per chunk: per-line work in Python is what costs here.
        complete = bytes(self._partial) + data[:last_nl] if self._partial else data[:last_nl]
        self._partial.clear()
        lines = [line[: self._max].rstrip("\r") for line in complete.decode("utf-8", errors="replace").split("\n")]
        return lines + self._keep(data[last_nl + 1 :])

    def _keep(self, rest: bytes) -> list[str]:
        """Hold the start of an unfinished line; emit it (cut) once it reaches the cap."""
        self._partial += rest[: self._max - len(self._partial)]
        if len(self._partial) < self._max:
            return []
        line = _decode(self._partial)
        self._partial.clear()
        self._skipping = True
        return [line]

    def flush(self) -> list[str]:
        """The pending partial line, as a line (its writer moved on to another file)."""
        out = [_decode(self._partial)] if self._partial and not self._skipping else []
        self.reset()
        return out

    def reset(self) -> None:
        self._partial.clear()
        self._skipping = False


def _decode(raw: bytes | bytearray) -> str:
    return bytes(raw).decode("utf-8", errors="replace").rstrip("\r\n")


class FileFollower:
    """Follows one log file by path, like `tail -F`, from a `Position`.

    Rotation (the path now names another inode, or nothing): the old file is read to its end,
    then the new one from its start. Truncation (size below the offset): restart at 0. A
    marked file rotated away before following starts is found again by its inode in the
    same directory, so the lines written to it after the mark still count.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        since: Position | None = None,
        *,
        poll_interval: float = 0.05,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        """`since=None` reads the file from its start."""
        self.path = os.fspath(path)
        self.source = self.path
        self._since = since
        self._poll = poll_interval
        self._splitter = _LineSplitter(max_line_bytes)
        self._file: Any = None  # the open binary file we are reading, or None
        self._ino: tuple[int, int] | None = None
        self._started = False
        self.ended = False  # a file can always grow

    def __enter__(self) -> FileFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def lines(self, deadline: float) -> Iterator[str]:
        """The deadline is looked at each time the reader catches up with the writer, so
        `deadline=0` reads what is there now and returns."""
        if not self._started:
            self._started = True
            yield from self._open_at_mark()
        while True:
            yield from self._read_available()
            if self._path_names_another_file():
                yield from self._drain_and_flush()  # what the writer added before it moved on
                self._open(self.path, 0)
                continue
            if self._truncated():
                self._file.seek(0)
                self._splitter.reset()
                continue
            if time.monotonic() >= deadline:
                return
            time.sleep(min(self._poll, max(0.0, deadline - time.monotonic())))

    def _open(self, path: str, offset: int) -> bool:
        descriptor = open_log(path)  # a regular file only
        if descriptor is None:
            return False
        f = os.fdopen(descriptor, "rb")  # kept open across calls, closed in close()
        st = os.fstat(f.fileno())
        self.close()
        self._file, self._ino = f, (st.st_dev, st.st_ino)
        f.seek(offset)
        self._splitter.reset()
        return True

    def _open_at_mark(self) -> Iterator[str]:
        since = self._since
        if since is None or since.inode is None:
            self._open(self.path, 0)
            return
        try:
            st = os.stat(self.path)
            same = (st.st_dev, st.st_ino) == (since.device, since.inode)
        except FileNotFoundError:
            same = False
        if not same:
            old = _find_by_inode(Path(self.path).parent, since.device, since.inode)
            if old is not None and self._open(str(old), since.offset):
                yield from self._drain_and_flush()
            self._open(self.path, 0)
            return
        self._open(self.path, since.offset)
        f = self._file
        if f is None:
            return
        if os.fstat(f.fileno()).st_size < since.offset or fingerprint(f, since.offset) != since.fingerprint:
            f.seek(0)  # rewritten since the mark: all of it is new
        else:
            f.seek(since.offset)

    def _read_available(self) -> Iterator[str]:
        if self._file is None:
            self._open(self.path, 0)
            if self._file is None:
                return
        while True:
            chunk = self._file.read(_CHUNK_BYTES)
            if not chunk:
                return
            yield from self._splitter.feed(chunk)

    def _drain_and_flush(self) -> Iterator[str]:
        yield from self._read_available()
        yield from self._splitter.flush()

    def _path_names_another_file(self) -> bool:
        """Rotated. A path naming nothing yet keeps the old file open until the new one appears."""
        if self._file is None:
            return False
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) != self._ino

    def _truncated(self) -> bool:
        return self._file is not None and os.fstat(self._file.fileno()).st_size < self._file.tell()


def _find_by_inode(directory: Path, device: int | None, inode: int) -> Path | None:
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return None
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if st.st_ino == inode and st.st_dev == device:
            return Path(entry.path)
    return None


class CommandFollower:
    """Yields the output lines (stdout and stderr) of a command such as
    `journalctl -u milvus -f -o cat --since "2026-11-28 05:15:00"` or
    `docker logs -f --since 2026-11-28T05:15:00Z milvus-standalone`. The command is started
    by the constructor and killed (its whole process group) by `close`."""

    def __init__(self, argv: Sequence[str], *, max_line_bytes: int = MAX_LINE_BYTES,
                 env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.source = " ".join(self.argv)
        self.returncode: int | None = None
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # so close() can kill what the command started too
        )
        # Bounded: a reader far behind blocks the command instead of growing memory.
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=1024)
        self._splitter = _LineSplitter(max_line_bytes)
        self.ended = False
        self._reader = threading.Thread(target=self._read, name=f"log-command:{self.argv[0]}", daemon=True)
        self._reader.start()

    def __enter__(self) -> CommandFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> None:
        assert isinstance(self._proc.stdout, io.BufferedReader)  # stdout=PIPE, buffered
        try:
            while chunk := self._proc.stdout.read1(_CHUNK_BYTES):
                for line in self._splitter.feed(chunk):
                    self._queue.put(line)
            for line in self._splitter.flush():
                self._queue.put(line)
        except (OSError, ValueError):
            pass  # the pipe was closed by close()
        finally:
            self._queue.put(None)

    def lines(self, deadline: float) -> Iterator[str]:
        while not self.ended:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(0.0, remaining)) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                return
            if line is None:
                self.ended = True
                self.returncode = self._proc.wait()
                return
            yield line

    def close(self) -> None:
        # Even if the command itself exited: a child it left may still hold the pipe open.
        _kill_group(self._proc)
        self.returncode = self._proc.wait()
        # Unblock the reader if it waits on a full queue, then let it finish.
        while self._reader.is_alive():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._reader.join(timeout=0.05)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the command's process group, give it 2 s, then SIGKILL whatever is left."""
    for sig, wait_s in ((signal.SIGTERM, 2.0), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait_s)
