"""Protobuf wire format, decoded by hand for the few Milvus messages the tool reads.

Milvus stores protobufs where only a few fields matter to the tool: a channel checkpoint
(msgpb.MsgPosition, in etcd) and the head of every message on a DML channel (its MsgBase and the
vchannel it belongs to, in the MQ's store on disk). Decoding by field number keeps the tool off
Milvus's generated code, which differs between versions while these field numbers do not.
"""

from __future__ import annotations

from dataclasses import dataclass

# commonpb.MsgType values of the messages that carry rows (common.proto, the same from 2.3 to 2.5).
INSERT = 400
DELETE = 401
UPSERT = 404
TIME_TICK = 1200
DATA_MESSAGES = frozenset({INSERT, DELETE, UPSERT})
_MAX_VARINT_BYTES = 10


class WireError(ValueError):
    """The bytes are not the protobuf message they should be."""


def varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it."""
    value = shift = 0
    for _ in range(_MAX_VARINT_BYTES):
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise WireError("varint longer than 10 bytes")


def fields(data: bytes) -> dict[int, int | bytes]:
    """Field number -> value (int for varints, bytes for length-delimited); the last one wins,
    as in protobuf. Fixed-width fields are skipped: none of the fields read here is one."""
    found: dict[int, int | bytes] = {}
    pos = 0
    while pos < len(data):
        tag, pos = varint(data, pos)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            found[number], pos = varint(data, pos)
        elif wire_type == 2:
            length, pos = varint(data, pos)
            if pos + length > len(data):
                raise WireError("truncated field")
            found[number], pos = data[pos:pos + length], pos + length
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wire_type}")
    if pos != len(data):
        raise WireError("truncated fixed-width field")
    return found


@dataclass(frozen=True)
class MessageHead:
    """What the tool reads of a message on a DML channel: its type and timestamp (its MsgBase,
    field 1) and, for inserts and deletes, the vchannel it belongs to (field 2, shardName)."""

    msg_type: int
    timestamp: int
    vchannel: str | None

    @property
    def carries_rows(self) -> bool:
        return self.msg_type in DATA_MESSAGES


def message_head(payload: bytes) -> MessageHead:
    """The head of a msgstream payload (msgpb.InsertRequest, DeleteRequest, TimeTickMsg, ...: every
    one starts with `common.MsgBase base = 1`; inserts and deletes follow with `shardName = 2`)."""
    top = fields(payload)
    base = top.get(1)
    if not isinstance(base, bytes):
        raise WireError("no MsgBase")
    head = fields(base)
    msg_type, timestamp = head.get(1, 0), head.get(3, 0)
    if not isinstance(msg_type, int) or not isinstance(timestamp, int):
        raise WireError("MsgBase without a type and a timestamp")
    shard = top.get(2)
    vchannel = shard.decode("utf-8", "replace") if isinstance(shard, bytes) and msg_type in DATA_MESSAGES else None
    return MessageHead(msg_type, timestamp, vchannel)
