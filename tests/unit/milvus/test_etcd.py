"""etcd channel checkpoints: MsgPosition decoding and the v3 JSON gateway, served by a tiny local HTTP server."""

from __future__ import annotations

import base64
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from migrator.milvus.etcd import parse_checkpoint, read_checkpoints
from migrator.rocksmq import inspect
from tests.support.rocksmq import write_rocksmq


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def msg_position(channel: str, msg_id: int, group: str = "datanode-1", timestamp: int = 449_000_000_000_000_000) -> bytes:
    def length_delimited(number: int, payload: bytes) -> bytes:
        return _varint(number << 3 | 2) + _varint(len(payload)) + payload

    return (
        length_delimited(1, channel.encode())
        + length_delimited(2, struct.pack("<q", msg_id))
        + length_delimited(3, group.encode())
        + _varint(4 << 3) + _varint(timestamp)
    )


def test_parse_checkpoint_maps_vchannel_to_its_physical_channel():
    checkpoint = parse_checkpoint("k", msg_position("by-dev-rootcoord-dml_3_449123456789v1", 470_000_000_000_000_001))
    assert checkpoint.pchannel == "by-dev-rootcoord-dml_3"
    assert checkpoint.msg_id == 470_000_000_000_000_001
    assert checkpoint.timestamp == 449_000_000_000_000_000


@pytest.fixture
def fake_etcd():
    store: dict[bytes, bytes] = {}

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self):
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            start, end = base64.b64decode(request["key"]), base64.b64decode(request["range_end"])
            kvs = [
                {"key": base64.b64encode(k).decode(), "value": base64.b64encode(v).decode()}
                for k, v in sorted(store.items())
                if start <= k < end
            ]
            body = json.dumps({"header": {}, "kvs": kvs} if kvs else {"header": {}}).encode()
            self.send_response(200 if self.path == "/v3/kv/range" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", store
    server.shutdown()
    server.server_close()


def test_unconsumed_messages_are_counted_after_the_lowest_checkpoint(tmp_path, fake_etcd):
    url, store = fake_etcd
    path = tmp_path / "rdb_data"
    written = write_rocksmq(path, {"by-dev-rootcoord-dml_0": [100] * 10, "by-dev-rootcoord-dml_1": [100] * 4})
    ids = written["by-dev-rootcoord-dml_0"].msg_ids
    prefix = b"by-dev/meta/datacoord-meta/channel-cp/"
    store[prefix + b"by-dev-rootcoord-dml_0_1v0"] = msg_position("by-dev-rootcoord-dml_0_1v0", ids[7])
    store[prefix + b"by-dev-rootcoord-dml_0_2v0"] = msg_position("by-dev-rootcoord-dml_0_2v0", ids[5])
    store[b"by-dev/meta/other"] = b"not a checkpoint"

    assert len(read_checkpoints(url)) == 2
    topics = {t.name: t for t in inspect(path, etcd_url=url).topics}
    assert topics["by-dev-rootcoord-dml_0"].checkpoint_msg_id == ids[5]
    assert topics["by-dev-rootcoord-dml_0"].unconsumed == 4
    assert topics["by-dev-rootcoord-dml_1"].unconsumed is None  # no checkpoint: unknown, not zero


def test_unreachable_etcd_is_a_refusal(tmp_path):
    from migrator.errors import Refused

    with pytest.raises(Refused, match="cannot read checkpoints from etcd at http://127.0.0.1:9"):
        read_checkpoints("http://127.0.0.1:9", timeout=2)


def test_dead_coordinator_keys_are_those_a_stopped_process_holds() -> None:
    from migrator.milvus.etcd import dead_coordinator_keys

    prefix = "by-dev/meta/session/"
    items = [(prefix + "rootcoord", b'{"ServerID": 6, "Address": "10.88.0.5:53100"}'),
             (prefix + "datacoord", b'{"ServerID": 7, "Address": "10.88.0.9:13333"}'),
             (prefix + "querycoord", b"not json"),
             (prefix + "id", b"8"),
             (prefix + "querynode-6", b'{"ServerID": 6}')]
    assert dead_coordinator_keys(items, 6) == [prefix + "rootcoord"]
    assert dead_coordinator_keys(items, 7) == [prefix + "rootcoord", prefix + "datacoord"]
    assert dead_coordinator_keys(items, None) == []
