"""Milvus's log: positions (mark before a restart), followers (file, command), the line parser,
and the proof of which MQ a restarted Milvus runs on."""

from migrator.milvus.logs.followers import (
    MAX_LINE_BYTES,
    CommandFollower,
    FileFollower,
    Follower,
)
from migrator.milvus.logs.parse import LogLine, parse_line
from migrator.milvus.logs.position import Position, mark
from migrator.milvus.logs.proof import (
    MSG_INIT_MQ,
    MSG_NMQ_FAILED,
    MSG_NMQ_FINISHED,
    MSG_ROCKSMQ_OK,
    MqConfirmTimeout,
    MqEvidence,
    MqMismatch,
    MqNotConfirmed,
    MqStartFailed,
    read_nats_fatal,
    wait_for_mq,
)

__all__ = [
    "MAX_LINE_BYTES",
    "MSG_INIT_MQ",
    "MSG_NMQ_FAILED",
    "MSG_NMQ_FINISHED",
    "MSG_ROCKSMQ_OK",
    "CommandFollower",
    "FileFollower",
    "Follower",
    "LogLine",
    "MqConfirmTimeout",
    "MqEvidence",
    "MqMismatch",
    "MqNotConfirmed",
    "MqStartFailed",
    "Position",
    "mark",
    "parse_line",
    "read_nats_fatal",
    "wait_for_mq",
]
