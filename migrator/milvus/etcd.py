"""What Milvus keeps in etcd, read (and, for dead sessions, deleted) through etcd's v3 JSON gateway.

One home for every etcd key layout the tool relies on:
- config overrides `<rootPath>/config/<a>/<b>` (they beat files and environment, external etcd only),
  among them Milvus 2.6's MQ pin `<rootPath>/config/mqtype`;
- node sessions `<rootPath>/<metaSubPath>/session/<role>-<ServerID>`;
- datacoord channel checkpoints `<rootPath>/meta/datacoord-meta/channel-cp/<vchannel>`
  (msgpb.MsgPosition protobufs, decoded by hand: four fields are all we need).

Plain HTTP (urllib), no etcd client library. Keys and values travel base64-encoded; a prefix is
read as the range [prefix, prefix+1).
"""

from __future__ import annotations

import base64
import json
import re
import struct
import urllib.error
import urllib.request
from dataclasses import dataclass

from migrator.errors import BadInput

# --- the gateway --------------------------------------------------------------------------


class EtcdUnreachable(Exception):
    """The gateway did not answer, or not with JSON; `reason` says how. Callers translate it."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


def base_url(endpoint: str) -> str:
    """`host:port` or `http://host:port` -> `http://host:port`."""
    return (endpoint if "://" in endpoint else f"http://{endpoint}").rstrip("/")


def prefix_end(prefix: bytes) -> bytes:
    """etcd's range end for a prefix: the prefix with its last byte incremented."""
    end = bytearray(prefix)
    while end and end[-1] == 0xFF:
        end.pop()
    end[-1] += 1
    return bytes(end)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _call(endpoint: str, path: str, body: dict, timeout: float) -> dict:
    url = f"{base_url(endpoint)}{path}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - operator's etcd
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        raise EtcdUnreachable(url, f"HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise EtcdUnreachable(url, str(getattr(error, "reason", error))) from None
    except ValueError as error:
        raise EtcdUnreachable(url, f"not a JSON reply ({error})") from None


def read_prefix(endpoint: str, prefix: str, timeout: float = 5.0) -> list[tuple[str, bytes]]:
    """(key, value) of every key under `prefix`."""
    raw = prefix.encode()
    reply = _call(endpoint, "/v3/kv/range", {"key": _b64(raw), "range_end": _b64(prefix_end(raw))}, timeout)
    return [(base64.b64decode(item.get("key", "")).decode("utf-8", "replace"),
             base64.b64decode(item.get("value", ""))) for item in reply.get("kvs", [])]


def delete_key(endpoint: str, key: str, timeout: float = 5.0) -> int:
    """Delete one key; returns how many were deleted (0 or 1)."""
    reply = _call(endpoint, "/v3/kv/deleterange", {"key": _b64(key.encode())}, timeout)
    return int(reply.get("deleted", 0))


# --- node sessions ------------------------------------------------------------------------

NODE_ROLES = ("querynode", "datanode", "indexnode", "proxy")
_NODE_KEY = re.compile(r"/session/(?P<role>[a-z]+)-(?P<id>\d+)$")


def session_prefix(root_path: str, meta_sub_path: str = "meta") -> str:
    return f"{root_path.strip('/')}/{meta_sub_path.strip('/')}/session/"


def node_sessions(keys: list[str]) -> dict[str, int]:
    """Node-session key -> ServerID, for the roles a standalone registers per process."""
    found = {}
    for key in keys:
        match = _NODE_KEY.search(key)
        if match and match["role"] in NODE_ROLES:
            found[key] = int(match["id"])
    return found


def dead_session_keys(keys: list[str], stopped_up_to: int | None = None) -> list[str]:
    """Sessions of stopped processes, once a newer process has registered.

    With `stopped_up_to` (the highest ServerID seen before the stop): every node session at or
    below it, as soon as one above it exists. Without: the sessions whose ServerID is below the
    newest registration of the same role.
    """
    sessions = node_sessions(keys)
    if stopped_up_to is not None:
        if not any(server_id > stopped_up_to for server_id in sessions.values()):
            return []  # the new process has not registered yet
        return [key for key, server_id in sessions.items() if server_id <= stopped_up_to]
    newest: dict[str, int] = {}
    for key, server_id in sessions.items():
        role = _NODE_KEY.search(key)["role"]  # type: ignore[index]
        newest[role] = max(newest.get(role, server_id), server_id)
    return [key for key, server_id in sessions.items() if server_id < newest[_NODE_KEY.search(key)["role"]]]


COORDINATOR_ROLES = ("rootcoord", "datacoord", "querycoord", "indexcoord")


def dead_coordinator_keys(items: list[tuple[str, bytes]], stopped_up_to: int | None) -> list[str]:
    """Coordinator sessions (`.../session/rootcoord`, one key per role) still held by a stopped
    process: the ServerID in their value is at or below `stopped_up_to`. A new process waits for
    such a key to go before its coordinator takes over; a container restarted with a new address
    waits out the whole lease (seen: 45 s)."""
    if stopped_up_to is None:
        return []
    dead = []
    for key, value in items:
        role = key.rsplit("/session/", 1)[-1] if "/session/" in key else ""
        if role not in COORDINATOR_ROLES:
            continue
        try:
            server_id = int(json.loads(value.decode("utf-8", "replace")).get("ServerID", -1))
        except (ValueError, AttributeError, TypeError):
            continue
        if 0 <= server_id <= stopped_up_to:
            dead.append(key)
    return dead


# --- config overrides ---------------------------------------------------------------------


# Milvus 2.6+ writes its MQ here at the first coordinator start (create-if-absent) and goes by it
# ever after; as a key under config/ it formats to `mqtype`, i.e. it is an override of mq.type.
MQ_PIN_NAME = "mqtype"


def config_prefix(root_path: str) -> str:
    root = root_path.strip("/")
    return f"{root}/config/" if root else "config/"


def mq_pin_key(root_path: str) -> str:
    """`by-dev` -> `by-dev/config/mqtype`: where Milvus 2.6+ pins its MQ."""
    return config_prefix(root_path) + MQ_PIN_NAME


def read_config_keys(endpoint: str, root_path: str, timeout: float = 3.0) -> dict[str, tuple[str, str]]:
    """Every config override: the part after `config/` -> (full etcd key, value). EtcdUnreachable."""
    prefix = config_prefix(root_path)
    return {key[len(prefix):]: (key, value.decode("utf-8", "replace"))
            for key, value in read_prefix(endpoint, prefix, timeout=timeout)}


# --- channel checkpoints ------------------------------------------------------------------

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
