"""Milvus's sources and their precedence: files by version, env names, etcd, `default` mq.type."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from migrator.config import EtcdSource, load_layers, read_env_file
from migrator.config.keys import format_key
from migrator.errors import BadInput, Refused

BASE = "etcd:\n  rootPath: by-dev\n  use:\n    embed: false\nmq:\n  type: default\nrocksmq:\n  path: /var/lib/milvus/rdb_data\n"


def _dir(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / name.replace("_test", "_test.yaml").replace("_yaml", ".yaml")).write_text(text)
    return tmp_path


def test_file_precedence_by_version(tmp_path: Path) -> None:
    _dir(tmp_path, milvus_yaml=BASE, default_yaml="mq:\n  type: kafka\n", user_yaml="mq:\n  type: rocksmq\n", _test="mq:\n  type: pulsar\n")
    assert load_layers(tmp_path, "2.5.4", {}, None).get("mq.type").raw == "rocksmq"
    assert load_layers(tmp_path, "2.4.13", {}, None).get("mq.type").raw == "rocksmq"
    assert load_layers(tmp_path, "v2.3.5-lite", {}, None).get("mq.type").raw == "default"
    (tmp_path / "user.yaml").unlink()
    # 2.5: milvus < _test < default < user (base_table.go); 2.4 has no _test.yaml.
    assert load_layers(tmp_path, "2.5", {}, None).get("mq.type").raw == "kafka"
    (tmp_path / "default.yaml").unlink()
    assert load_layers(tmp_path, "2.5", {}, None).get("mq.type").raw == "pulsar"
    assert load_layers(tmp_path, "2.4", {}, None).get("mq.type").raw == "default"


def test_source_names_file_line_and_column(tmp_path: Path) -> None:
    _dir(tmp_path, milvus_yaml=BASE)
    resolved = load_layers(tmp_path, None, {}, None).get("mq.type")
    assert str(resolved.source) == f"{tmp_path / 'milvus.yaml'}:6:3"
    assert load_layers(tmp_path, None, {}, None).get("natsmq.server.port").source.kind == "default"


@pytest.mark.parametrize(
    "name, key",
    [("MQ_TYPE", "mq.type"), ("MQTYPE", "mq.type"), ("mq.type", "mq.type"), ("NATSMQ_SERVER_PORT", "natsmq.server.port"),
     ("milvus.mq.type", "mq.type"), ("QUOTAANDLIMITS_LIMITWRITING_FORCEDENY", "quotaAndLimits.limitWriting.forceDeny")],
)
def test_env_names_that_override(tmp_path: Path, name: str, key: str) -> None:
    _dir(tmp_path, milvus_yaml=BASE)
    value = "4333" if "PORT" in name else "true" if "DENY" in name else "natsmq"
    resolved = load_layers(tmp_path, None, {name: value}, None).get(key)
    assert (resolved.raw, resolved.source.kind, resolved.source.name) == (value, "env", name)


def test_milvus_underscore_prefix_sets_nothing(tmp_path: Path) -> None:
    _dir(tmp_path, milvus_yaml=BASE)
    assert format_key("MILVUS_MQ_TYPE") == "milvusmqtype"
    assert load_layers(tmp_path, None, {"MILVUS_MQ_TYPE": "natsmq"}, None).get("mq.type").raw == "default"


def test_mq_type_default_resolves_like_milvus(tmp_path: Path) -> None:
    _dir(tmp_path, milvus_yaml=BASE)
    assert load_layers(tmp_path, None, {}, None).mq_type() == "rocksmq"
    assert load_layers(tmp_path, None, {"MQ_TYPE": "natsmq"}, None).mq_type() == "natsmq"
    assert load_layers(tmp_path, None, {"ROCKSMQ_PATH": "", "PULSAR_ADDRESS": "pulsar"}, None).mq_type() == "pulsar"


class _Etcd(BaseHTTPRequestHandler):
    data: ClassVar[dict[str, str]] = {}

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        start, end = (base64.b64decode(body[k]).decode() for k in ("key", "range_end"))
        kvs = [{"key": base64.b64encode(k.encode()).decode(), "value": base64.b64encode(v.encode()).decode()}
               for k, v in sorted(self.data.items()) if start <= k < end] if self.path == "/v3/kv/range" else []
        reply = json.dumps({"kvs": kvs} if kvs else {}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def etcd_gateway() -> Iterator[str]:
    """A stand-in for etcd's v3 JSON gateway, speaking its /v3/kv/range protocol."""
    server = HTTPServer(("127.0.0.1", 0), _Etcd)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_etcd_beats_env_and_files_when_active(tmp_path: Path, etcd_gateway: str) -> None:
    _dir(tmp_path, milvus_yaml=BASE)
    _Etcd.data = {"by-dev/config/mq/type": "natsmq", "by-dev/config/natsmq/server/port": "4555", "other/config/mq/type": "kafka"}
    effective = load_layers(tmp_path, None, {"MQ_TYPE": "rocksmq"}, EtcdSource(etcd_gateway))
    resolved = effective.get("mq.type")
    assert (resolved.raw, str(resolved.source)) == ("natsmq", "etcd key by-dev/config/mq/type")
    assert effective.get("natsmq.server.port").value == 4555


def test_etcd_is_not_a_source_with_embedded_etcd(tmp_path: Path, etcd_gateway: str) -> None:
    _dir(tmp_path, milvus_yaml=BASE.replace("embed: false", "embed: true"))
    _Etcd.data = {"by-dev/config/mq/type": "natsmq"}
    effective = load_layers(tmp_path, None, {}, EtcdSource(etcd_gateway))
    assert effective.get("mq.type").raw == "default" and "embed is true" in effective.etcd_state


def test_unreachable_etcd_is_refused_clearly(tmp_path: Path) -> None:
    _dir(tmp_path, milvus_yaml=BASE)
    with pytest.raises(Refused, match=r"cannot read Milvus config overrides from etcd at http://127.0.0.1:9/v3/kv/range"):
        load_layers(tmp_path, None, {}, EtcdSource("127.0.0.1:9", timeout=1))


def test_env_file(tmp_path: Path) -> None:
    path = tmp_path / "milvus.env"
    path.write_text("# compose env\nexport MQ_TYPE=natsmq\nNATSMQ_SERVER_PORT='4333'\n\nETCD_USE_EMBED=true\n")
    assert read_env_file(path) == {"MQ_TYPE": "natsmq", "NATSMQ_SERVER_PORT": "4333", "ETCD_USE_EMBED": "true"}
    path.write_text("MQ_TYPE natsmq\n")
    with pytest.raises(BadInput, match=r"milvus.env:1: expected NAME=VALUE"):
        read_env_file(path)


@pytest.mark.parametrize(
    "text, where, message",
    [
        ("mq:\n  type: [a\n", ":3:1", "invalid YAML"),
        ("mq:\n\ttype: natsmq\n", ":2:1", "tab"),
        ("mq:\n  type: natsmq\n  type: rocksmq\n", ":3:3", "duplicate key mq.type"),
        ("- mq\n", ":1:1", "must be a mapping"),
        ("mq:\n  type: nats\n", ":2:3", "unknown mq.type 'nats'"),
        ("mq:\n  type: rocksmq\nnatsmq:\n  server:\n    port: fourtytwo\n", ":5:5", "must be an integer"),
    ],
)
def test_bad_files_name_file_line_and_column(tmp_path: Path, text: str, where: str, message: str) -> None:
    (tmp_path / "milvus.yaml").write_text(text)
    with pytest.raises(BadInput) as raised:
        load_layers(tmp_path, None, {}, None)
    assert f"milvus.yaml{where}" in raised.value.message and message in raised.value.message


def test_missing_dir_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="config dir not found"):
        load_layers(tmp_path / "nope", None, {}, None)
    with pytest.raises(BadInput, match="none of milvus.yaml"):
        load_layers(tmp_path, None, {}, None)
    (tmp_path / "milvus.yaml").write_bytes(b"mq:\n  type: \xff\n")
    with pytest.raises(BadInput, match="not UTF-8"):
        load_layers(tmp_path, None, {}, None)
