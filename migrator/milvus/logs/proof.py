"""The proof that a restarted Milvus runs on a given MQ, read from its log.

Only lines written after the restart may count, so a follower starts at a `Position`
recorded before it (`position.mark`).

Seen on Milvus 2.3.5: `try to init mq`, `initialize nmq finished` and
`init rocksmq msgstream success` are written before Milvus sets up its file logger, so they
reach stdout only (in text format, even with `log.format: json`), never
`<log.file.rootPath>/standalone-<nodeID>.log`. Follow what captures stdout: journald,
`docker logs`, or the file a runtime redirects stdout to.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from migrator.errors import NotRolledBack
from migrator.milvus.logs.followers import FileFollower, Follower
from migrator.milvus.logs.parse import parse_line
from migrator.milvus.logs.position import Position
from migrator.mq import Mq


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


MSG_INIT_MQ = "try to init mq"
MSG_NMQ_FINISHED = "initialize nmq finished"
MSG_NMQ_FAILED = "initialize nmq failed"
MSG_ROCKSMQ_OK = "init rocksmq msgstream success"
# Cheap substring test first: most lines of a busy log are never parsed.
_INTERESTING = (MSG_INIT_MQ, MSG_NMQ_FINISHED, MSG_NMQ_FAILED, MSG_ROCKSMQ_OK, "FATAL", "PANIC")
_CONFIRMATION: dict[str, str] = {Mq.NATSMQ: MSG_NMQ_FINISHED, Mq.ROCKSMQ: MSG_ROCKSMQ_OK}
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
            if self.target == Mq.NATSMQ:
                self.confirm_line = self.confirm_line or line
        elif message == MSG_ROCKSMQ_OK:
            self.evidence.append(line)
            self.rocksmq_path = fields.get("path")
            if self.target == Mq.ROCKSMQ:
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
    follower = FileFollower(since.path, since) if isinstance(since, Position) else FileFollower(since)
    with follower:
        return [m["reason"] for line in follower.lines(deadline=0.0) if (m := _NATS_FATAL.search(line))]
