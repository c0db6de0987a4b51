"""Datacoord channel checkpoints from etcd: how far Milvus has consumed each channel.

Read through etcd's v3 JSON gateway (`POST /v3/kv/range`) with urllib: no etcd client dependency.
Values are msgpb.MsgPosition protobufs, decoded by hand (four fields are all we need).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from migrator.errors import BadInput
from migrator.etcd_gateway import EtcdUnreachable, read_prefix

CHECKPOINT_PREFIX = "{root}/meta/datacoord-meta/channel-cp/"
# A vchannel is `<pchannel>_<collectionID>v<shard>`, e.g. by-dev-rootcoord-dml_0_4471234v0.
_VCHANNEL = re.compile(r"^(?P<pchannel>.+)_\d+v\d+$")


@dataclass(frozen=True)
class ChannelCheckpoint:
    vchannel: str
    pchannel: str
    msg_id: int
    timestamp: int


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def decode_msg_position(data: bytes) -> dict[int, int | bytes]:
    """Decode a msgpb.MsgPosition: 1 channel_name, 2 msgID, 3 msgGroup, 4 timestamp (by field number)."""
    fields: dict[int, int | bytes] = {}
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            fields[number], pos = _varint(data, pos)
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            fields[number], pos = data[pos : pos + length], pos + length
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
    return fields


def parse_checkpoint(key: str, value: bytes) -> ChannelCheckpoint:
    fields = decode_msg_position(value)
    vchannel = fields.get(1, key.rsplit("/", 1)[-1].encode())
    vchannel = vchannel.decode() if isinstance(vchannel, bytes) else str(vchannel)
    raw_id = fields.get(2, b"")
    if not isinstance(raw_id, bytes) or len(raw_id) != 8:
        raise ValueError(f"msgID of {key} is not 8 bytes")
    match = _VCHANNEL.match(vchannel)
    timestamp = fields.get(4, 0)
    return ChannelCheckpoint(
        vchannel=vchannel,
        pchannel=match.group("pchannel") if match else vchannel,
        msg_id=struct.unpack("<q", raw_id)[0],
        timestamp=timestamp if isinstance(timestamp, int) else 0,
    )


def read_checkpoints(etcd_url: str, root_path: str = "by-dev", timeout: float = 10.0) -> list[ChannelCheckpoint]:
    """Every channel checkpoint under `<root_path>/meta/datacoord-meta/channel-cp/`."""
    prefix = CHECKPOINT_PREFIX.format(root=root_path.strip("/"))
    try:
        items = read_prefix(etcd_url, prefix, timeout=timeout)
    except EtcdUnreachable as error:
        raise BadInput(f"cannot read checkpoints from etcd at {etcd_url}: {error.reason}") from error
    checkpoints = []
    for key, value in items:
        try:
            checkpoints.append(parse_checkpoint(key, value))
        except ValueError as error:
            raise BadInput(f"etcd key {key} is not a MsgPosition: {error}") from error
    return checkpoints
