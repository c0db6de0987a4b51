"""Milvus log followers and the matcher that proves which MQ a restarted Milvus runs on.

Only lines written after the restart may count, so a follower starts at a `Position`
recorded before it (`mark`). Followers hold at most one partial line (capped), so memory
stays flat whatever the size of the log.

Seen on Milvus 2.3.5: `try to init mq`, `initialize nmq finished` and
`init rocksmq msgstream success` are written before Milvus sets up its file logger, so they
reach stdout only (in text format, even with `log.format: json`), never
`<log.file.rootPath>/standalone-<nodeID>.log`. Follow what captures stdout: journald,
`docker logs`, or the file a runtime redirects stdout to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

from migrator.errors import NotRolledBack

MAX_LINE_BYTES = 1 << 20  # a longer line is cut here; the rest of it is skipped
_CHUNK_BYTES = 64 * 1024
_FINGERPRINT_BYTES = 64  # bytes before a mark that must still be there to trust its offset


# --- errors -------------------------------------------------------------------------------


class MqNotConfirmed(NotRolledBack):
    """Milvus did not prove it runs on the target MQ. `evidence` holds the lines that say why."""

    def __init__(self, message: str, *, hint: str | None = None, evidence: Sequence[str] = ()) -> None:
        super().__init__(message, hint=hint)
        self.evidence = list(evidence)


class MqMismatch(MqNotConfirmed):
    """Milvus started on another MQ than the target (the config edit did not win)."""


class MqStartFailed(MqNotConfirmed):
    """Milvus failed while starting its MQ (a FATAL line, `initialize nmq failed`, or it exited)."""


class MqConfirmTimeout(MqNotConfirmed):
    """The deadline passed, or the log source ended, before the proof appeared."""


# --- positions ----------------------------------------------------------------------------


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
            return Position(path, st.st_dev, st.st_ino, st.st_size, _fingerprint(f, st.st_size))
    except FileNotFoundError:
        return Position(path, None, None, 0, "")


def _fingerprint(f: Any, offset: int) -> str:
    start = max(0, offset - _FINGERPRINT_BYTES)
    f.seek(start)
    return hashlib.sha256(f.read(offset - start)).hexdigest()


# --- followers ----------------------------------------------------------------------------


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
        try:
            f = open(path, "rb")  # noqa: SIM115 - kept open across calls, closed in close()
        except FileNotFoundError:
            return False
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
        if os.fstat(f.fileno()).st_size < since.offset or _fingerprint(f, since.offset) != since.fingerprint:
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

    def __init__(self, argv: Sequence[str], *, max_line_bytes: int = MAX_LINE_BYTES, env: dict[str, str] | None = None) -> None:
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
        assert self._proc.stdout is not None
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


# --- matching -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LogLine:
    level: str
    message: str
    fields: dict[str, Any] = field(default_factory=dict)


_QUOTED = r'"(?:[^"\\]|\\.)*"'
# The head of a text line: `[time] [LEVEL] [caller] [message]`. Searched, not matched at 0,
# so prefixes like `milvus-standalone  | ` (compose) or a journald header are skipped.
_TEXT_HEAD = re.compile(
    r"\[(?P<time>\d{4}/\d\d/\d\d [^\]]*)\] \[(?P<level>[A-Z]+)\]"
    r"(?: \[(?P<caller>[^\]\s\"]*:\d+)\])?"
    rf" \[(?P<message>{_QUOTED}|[^\]]*)\]"
)
_TEXT_FIELD = re.compile(rf" ?\[(?P<key>{_QUOTED}|[^=\]]*)(?:=(?P<value>{_QUOTED}|[^\]]*))?\]")


def parse_line(line: str) -> LogLine | None:
    """A Milvus log line in text or JSON format, or None if it is neither."""
    brace = line.find("{")
    bracket = line.find("[")
    if brace >= 0 and (bracket < 0 or brace < bracket):
        return _parse_json(line[brace:])
    return _parse_text(line)


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        try:
            return json.loads(token)  # zap escapes like JSON: \" \\ \n \t \uXXXX
        except ValueError:
            return token[1:-1]
    return token


def _parse_text(line: str) -> LogLine | None:
    head = _TEXT_HEAD.search(line)
    if head is None:
        return None
    fields: dict[str, Any] = {}
    pos = head.end()
    while (m := _TEXT_FIELD.match(line, pos)) is not None:
        pos = m.end()
        key = _unquote(m["key"])
        if key or m["value"] is not None:  # `[]` is an empty field: skip it
            fields[key] = _unquote(m["value"]) if m["value"] is not None else ""
    return LogLine(head["level"], _unquote(head["message"]), fields)


def _parse_json(text: str) -> LogLine | None:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or "level" not in record:
        return None
    message = record.get("message", record.get("msg", ""))
    fields = {k: v for k, v in record.items() if k not in ("level", "time", "caller", "message", "msg")}
    return LogLine(str(record["level"]).upper(), str(message), fields)


# --- the proof of the switch --------------------------------------------------------------

MSG_INIT_MQ = "try to init mq"
MSG_NMQ_FINISHED = "initialize nmq finished"
MSG_NMQ_FAILED = "initialize nmq failed"
MSG_ROCKSMQ_OK = "init rocksmq msgstream success"
# Cheap substring test first: most lines of a busy log are never parsed.
_INTERESTING = (MSG_INIT_MQ, MSG_NMQ_FINISHED, MSG_NMQ_FAILED, MSG_ROCKSMQ_OK, "FATAL", "PANIC")
_CONFIRMATION = {"natsmq": MSG_NMQ_FINISHED, "rocksmq": MSG_ROCKSMQ_OK}
_NATS_PORT = re.compile(r"nats://[^:/\s]+:(\d+)")


@dataclass
class MqEvidence:
    """What the log proved. `nats_port` is the real port, needed when natsmq.server.port is -1."""

    mq_type: str
    init_line: str
    confirm_line: str
    nats_client_url: str | None = None
    nats_port: int | None = None
    rocksmq_path: str | None = None


def wait_for_mq(
    follower: Follower,
    target: str,
    deadline: float,
    *,
    still_running: Callable[[], bool] | None = None,
    nats_log: Position | None = None,
    logger: Any = None,
) -> MqEvidence:
    """Wait until the log proves Milvus runs on `target` ("natsmq" or "rocksmq").

    Proof is `try to init mq` with `mqType=<target>` AND the target's own success line
    (`initialize nmq finished` / `init rocksmq msgstream success`): on 2.3.5 a start whose
    NATS port is taken logs `try to init mq [mqType=natsmq]` and then exits.
    Fails fast on another mqType, on `initialize nmq failed` or any FATAL line, and (if
    `still_running` is given) once the process is gone. `nats_log` (a mark of
    natsmq.server.monitor.logFile) lets the error quote NATS's own `[FTL]` reason.
    `deadline` is a `time.monotonic()` value.
    """
    if target not in _CONFIRMATION:
        raise ValueError(f"unknown MQ type {target!r}")
    proof = _MqProof(target)

    def failed(cls: type[MqNotConfirmed], message: str, hint: str | None = None) -> MqNotConfirmed:
        reasons = read_nats_fatal(nats_log) if nats_log is not None else []
        if reasons:
            message = f"{message}; NATS says: {reasons[-1]}"
        if logger is not None:
            logger.warning("mq.confirm.failed", target=target, reason=message, source=follower.source)
        return cls(message, hint=hint, evidence=proof.evidence + reasons)

    def consume(until: float) -> MqEvidence | None:
        for line in follower.lines(until):
            try:
                result = proof.feed(line)
            except MqNotConfirmed as exc:
                raise failed(type(exc), exc.message, exc.hint) from None
            if result is not None:
                if logger is not None:
                    logger.info("mq.confirmed", target=target, nats_port=result.nats_port, source=follower.source)
                return result
        return None

    while True:
        # With a process to watch, look at it twice a second; otherwise just read to the deadline.
        until = deadline if still_running is None else min(deadline, time.monotonic() + 0.5)
        if (result := consume(until)) is not None:
            return result
        if follower.ended:
            raise failed(MqConfirmTimeout, f"the log source ended before Milvus confirmed {target}: {follower.source}")
        if still_running is not None and not still_running():
            if (result := consume(0.0)) is not None:  # its last lines may still be unread
                return result
            raise failed(MqStartFailed, f"Milvus exited before confirming {target}")
        if time.monotonic() >= deadline:
            missing = f" (saw '{MSG_INIT_MQ}' but not '{_CONFIRMATION[target]}')" if proof.init_line else ""
            raise failed(MqConfirmTimeout, f"no proof that Milvus runs on {target} before the deadline{missing}")


class _MqProof:
    """Accumulates the lines of one start; `feed` returns the evidence once it is complete."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.evidence: list[str] = []
        self.init_line: str | None = None
        self.confirm_line: str | None = None
        self.nats_client_url: str | None = None
        self.nats_port: int | None = None
        self.rocksmq_path: str | None = None

    def feed(self, line: str) -> MqEvidence | None:
        if not any(s in line for s in _INTERESTING):
            return None
        parsed = parse_line(line)
        if parsed is None:
            return None
        message, fields = parsed.message, parsed.fields
        if message == MSG_INIT_MQ:
            self.evidence.append(line)
            seen = str(fields.get("mqType", ""))
            if seen != self.target:
                raise MqMismatch(
                    f"Milvus started on {seen or 'an unknown MQ'}, not {self.target}",
                    hint="an environment variable (MQ_TYPE) or an etcd key may override the config file",
                )
            self.init_line = self.init_line or line
        elif message == MSG_NMQ_FAILED or parsed.level in ("FATAL", "PANIC", "DPANIC"):
            self.evidence.append(line)
            detail = fields.get("error") or fields.get("err")
            raise MqStartFailed(f"Milvus failed to start: {message}" + (f" ({detail})" if detail else ""))
        elif message == MSG_NMQ_FINISHED:
            self.evidence.append(line)
            self.nats_client_url = str(fields.get("client-url", "")) or None
            port = _NATS_PORT.search(self.nats_client_url or "")
            self.nats_port = int(port.group(1)) if port else None
            if self.target == "natsmq":
                self.confirm_line = self.confirm_line or line
        elif message == MSG_ROCKSMQ_OK:
            self.evidence.append(line)
            self.rocksmq_path = fields.get("path")
            if self.target == "rocksmq":
                self.confirm_line = self.confirm_line or line
        if self.init_line is None or self.confirm_line is None:
            return None
        return MqEvidence(
            mq_type=self.target,
            init_line=self.init_line,
            confirm_line=self.confirm_line,
            nats_client_url=self.nats_client_url,
            nats_port=self.nats_port,
            rocksmq_path=self.rocksmq_path,
        )


_NATS_FATAL = re.compile(r"\[FTL\]\s*(?P<reason>.*)$")


def read_nats_fatal(since: Position | str | os.PathLike[str]) -> list[str]:
    """The `[FTL]` reasons NATS wrote to its log (natsmq.server.monitor.logFile) after a mark,
    e.g. `Error listening on port: 127.0.0.1:4222, "listen tcp ...: bind: address already in use"`.
    A path instead of a mark reads the whole file (it is shared by every start on the host)."""
    if isinstance(since, Position):
        follower = FileFollower(since.path, since)
    else:
        follower = FileFollower(since)
    with follower:
        return [m["reason"] for line in follower.lines(deadline=0.0) if (m := _NATS_FATAL.search(line))]
