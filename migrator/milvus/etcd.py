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

from migrator.errors import BadInput, Refused
from migrator.milvus.protowire import WireError
from migrator.milvus.protowire import fields as wire_fields

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
        with urllib.request.urlopen(request, timeout=timeout) as response:
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


@dataclass(frozen=True)
class EtcdItem:
    key: bytes
    value: bytes
    lease: int  # 0: no lease; else the key goes with its lease (a session)


class RevisionCompacted(Exception):
    """The revision a consistent read started at was compacted away meanwhile: read again."""


READ_PAGE = 500  # keys per range call: a page of Milvus's metadata stays well under etcd's reply limit


def read_all_at(endpoint: str, prefix: str, *, revision: int | None = None, timeout: float = 30.0,
                max_bytes: int = 4 << 30) -> tuple[int, list[EtcdItem]]:
    """(revision, every key under `prefix` as it was at that revision; "" for every key). Without
    `revision`, the first page's revision is used for every later page: one consistent view.
    RevisionCompacted when etcd compacted that revision meanwhile; BadInput past `max_bytes`."""
    raw = prefix.encode()
    # An empty prefix: every key ("\0" to "\0" is etcd's whole key space).
    end = _b64(prefix_end(raw) if raw else b"\0")
    start = raw or b"\0"
    items: list[EtcdItem] = []
    total = 0
    while True:
        body: dict = {"key": _b64(start), "range_end": end, "limit": READ_PAGE}
        if revision is not None:
            body["revision"] = revision
        try:
            reply = _call(endpoint, "/v3/kv/range", body, timeout)
        except EtcdUnreachable as error:
            if "compacted" in error.reason or "HTTP 400" in error.reason:
                raise RevisionCompacted(error.reason) from None
            raise
        if "error" in reply or "code" in reply:
            raise RevisionCompacted(str(reply.get("error") or reply.get("message")))
        if revision is None:
            revision = int(reply.get("header", {}).get("revision", 0))
        kvs = reply.get("kvs", [])
        for item in kvs:
            entry = EtcdItem(base64.b64decode(item.get("key", "")), base64.b64decode(item.get("value", "")),
                             int(item.get("lease", 0) or 0))
            total += len(entry.key) + len(entry.value)
            if total > max_bytes:
                raise BadInput(f"etcd at {base_url(endpoint)}: more than {max_bytes} bytes under {prefix}")
            items.append(entry)
        if not reply.get("more") or not kvs:
            return revision, items
        start = items[-1].key + b"\0"  # the next key after the last one read


def current_revision(endpoint: str, timeout: float = 10.0) -> int:
    """etcd's revision now: a read at it sees every write acknowledged before this call."""
    reply = _call(endpoint, "/v3/kv/range", {"key": _b64(b"\0"), "limit": 1, "keys_only": True}, timeout)
    return int(reply.get("header", {}).get("revision", 0))


TXN_OPS = 100  # etcd refuses a transaction of more than --max-txn-ops (128 by default)
TXN_BYTES = 1 << 20  # and a request over --max-request-bytes (1.5 MiB by default)


def put_all(endpoint: str, items: list[tuple[bytes, bytes]], timeout: float = 30.0) -> int:
    """Write every (key, value) without a lease, in transactions of bounded size; returns how many."""
    batch: list[dict] = []
    size = 0

    def flush() -> None:
        if batch:
            _call(endpoint, "/v3/kv/txn", {"success": list(batch)}, timeout)
            batch.clear()

    for key, value in items:
        op = {"request_put": {"key": _b64(key), "value": _b64(value)}}
        if batch and (len(batch) >= TXN_OPS or size + len(key) + len(value) > TXN_BYTES):
            flush()
            size = 0
        batch.append(op)
        size += len(key) + len(value)
    flush()
    return len(items)


def delete_key(endpoint: str, key: str, timeout: float = 5.0) -> int:
    """Delete one key; returns how many were deleted (0 or 1)."""
    reply = _call(endpoint, "/v3/kv/deleterange", {"key": _b64(key.encode())}, timeout)
    return int(reply.get("deleted", 0))


def embed_config_text(data_dir: str, client_url: str, peer_url: str) -> str:
    """An etcd embed config for Milvus's embedded etcd (`etcd.config.path`): without one it listens
    on 2379/2380 whatever etcd.endpoints says."""
    return (
        "# etcd embed config for this Milvus (etcd.config.path): its own ports and data dir.\n"
        "name: default\n"
        f"data-dir: {data_dir}\n"
        f"listen-client-urls: {client_url}\n"
        f"advertise-client-urls: {client_url}\n"
        f"listen-peer-urls: {peer_url}\n"
        f"initial-advertise-peer-urls: {peer_url}\n"
        f"initial-cluster: default={peer_url}\n"
        "initial-cluster-state: new\n"
    )


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
    roles = {key: _role(key) for key in sessions}
    newest: dict[str, int] = {}
    for key, server_id in sessions.items():
        newest[roles[key]] = max(newest.get(roles[key], server_id), server_id)
    return [key for key, server_id in sessions.items() if server_id < newest[roles[key]]]


def _role(session_key: str) -> str:
    match = _NODE_KEY.search(session_key)
    if match is None:  # pragma: no cover - node_sessions keeps only the keys it matches
        raise ValueError(f"{session_key} is not a node session")
    return match["role"]


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


def pchannel_of(vchannel: str) -> str:
    """`by-dev-rootcoord-dml_3_4471v0` -> `by-dev-rootcoord-dml_3`: the MQ topic the vchannel rides on."""
    match = _VCHANNEL.match(vchannel)
    return match.group("pchannel") if match else vchannel


def parse_checkpoint(key: str, value: bytes) -> ChannelCheckpoint:
    try:
        fields = wire_fields(value)
    except WireError as error:
        raise ValueError(str(error)) from None
    raw_vchannel = fields.get(1, key.rsplit("/", 1)[-1].encode())
    vchannel = raw_vchannel.decode() if isinstance(raw_vchannel, bytes) else str(raw_vchannel)
    raw_id = fields.get(2, b"")
    if not isinstance(raw_id, bytes) or len(raw_id) != 8:
        raise ValueError(f"msgID of {key} is not 8 bytes")
    timestamp = fields.get(4, 0)
    return ChannelCheckpoint(
        vchannel=vchannel,
        pchannel=pchannel_of(vchannel),
        msg_id=struct.unpack("<q", raw_id)[0],
        timestamp=timestamp if isinstance(timestamp, int) else 0,
    )


def read_checkpoints(etcd_url: str, root_path: str = "by-dev", timeout: float = 10.0) -> list[ChannelCheckpoint]:
    """Every channel checkpoint under `<root_path>/meta/datacoord-meta/channel-cp/`."""
    prefix = CHECKPOINT_PREFIX.format(root=root_path.strip("/"))
    try:
        items = read_prefix(etcd_url, prefix, timeout=timeout)
    except EtcdUnreachable as error:  # nothing to read there now: a refusal (3), the input was fine
        raise Refused(f"cannot read checkpoints from etcd at {etcd_url}: {error.reason}",
                      hint="check config.etcd.endpoint (etcd's client URL) and that etcd is up") from error
    checkpoints = []
    for key, value in items:
        try:
            checkpoints.append(parse_checkpoint(key, value))
        except ValueError as error:
            raise BadInput(f"etcd key {key} is not a MsgPosition: {error}") from error
    return checkpoints
