"""Backup, verify, restore and clean-up of both RocksMQ databases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from migrator.errors import BadInput, Refused
from migrator.rocksmq import clean, create_backup, inspect, restore_backup, verify_backup
from migrator.rocksmq.backup import MANIFEST_NAME
from migrator.rocksmq.safety import refuse_unsafe_target
from tests.rocksmq_factory import milvus_topics, tree_snapshot, write_rocksmq
from tests.utils import run_cli


@pytest.fixture
def rocksmq(tmp_path):
    path = tmp_path / "volumes" / "rdb_data"
    path.parent.mkdir()
    write_rocksmq(path, milvus_topics(2, [100] * 20 + [70_000] * 5))
    return path


def _inodes(directory):
    return {p.name: p.stat().st_ino for p in directory.iterdir()}


def test_stopped_backup_hard_links_ssts_copies_the_rest_and_writes_a_manifest(rocksmq, tmp_path):
    dest = tmp_path / "backup"
    manifest = create_backup(rocksmq, dest, milvus_running=False)
    assert manifest.mode == "hardlink"
    paths = {entry.path for entry in manifest.files}
    assert any(p.startswith("meta_kv/") for p in paths), "the _meta_kv sibling must come along"
    assert "data/CURRENT" in paths and "data/LOCK" not in paths
    source, copy = _inodes(rocksmq), _inodes(dest / "data")
    for name, inode in copy.items():
        assert (inode == source[name]) == name.endswith(".sst"), name
    assert json.loads((dest / MANIFEST_NAME).read_text())["file_count"] == len(manifest.files)
    assert verify_backup(dest).files == manifest.files


def test_live_backup_copies_everything(rocksmq, tmp_path):
    manifest = create_backup(rocksmq, tmp_path / "backup", milvus_running=True)
    assert manifest.mode == "copy"
    source = _inodes(rocksmq)
    assert all(inode != source[name] for name, inode in _inodes(tmp_path / "backup" / "data").items())


def test_backup_refuses_a_database_held_open_unless_live(rocksmq, tmp_path):
    # Another process holding RocksDB's LOCK is what a running Milvus looks like.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl,sys,time; f=open(sys.argv[1],'r+'); fcntl.lockf(f, fcntl.LOCK_EX); print('x', flush=True); time.sleep(60)", str(rocksmq / "LOCK")],
        stdout=subprocess.PIPE,
    )
    try:
        holder.stdout.readline()
        with pytest.raises(Refused, match="LOCK is held"):
            create_backup(rocksmq, tmp_path / "backup", milvus_running=False)
        assert not (tmp_path / "backup").exists()
        with pytest.raises(Refused, match="Milvus using it"):
            clean(rocksmq, force_without_backup=True)
        assert create_backup(rocksmq, tmp_path / "live", milvus_running=True).mode == "copy"
    finally:
        holder.kill()
        holder.wait()


def test_interrupted_backup_leaves_no_manifest(rocksmq, tmp_path, monkeypatch):
    import migrator.rocksmq.backup as backup

    calls = []

    def failing_copy(source, target):
        calls.append(source)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(source, target)

    original = backup.copy_and_hash
    monkeypatch.setattr(backup, "copy_and_hash", failing_copy)
    monkeypatch.setattr(backup, "COPY_THREADS", 1)
    with pytest.raises(KeyboardInterrupt):
        create_backup(rocksmq, tmp_path / "backup", milvus_running=True)
    assert not (tmp_path / "backup" / MANIFEST_NAME).exists()


def test_verify_names_a_damaged_file(rocksmq, tmp_path):
    dest = tmp_path / "backup"
    create_backup(rocksmq, dest, milvus_running=True)
    victim = next((dest / "meta_kv").glob("MANIFEST-*"))
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x01")
    result = run_cli(["backup", "verify", str(dest)])
    assert result.exit_code == 2 and "meta_kv/MANIFEST-" in result.stderr and "sha256" in result.stderr
    (dest / MANIFEST_NAME).unlink()
    with pytest.raises(BadInput, match="interrupted"):
        verify_backup(dest)


def test_backup_checks_room_and_refuses_a_non_empty_dest(rocksmq, tmp_path, monkeypatch):
    import migrator.rocksmq.backup as backup

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(BadInput, match="not empty"):
        create_backup(rocksmq, tmp_path / "full", milvus_running=False)
    monkeypatch.setattr(backup, "free_bytes", lambda path: 1000)
    with pytest.raises(Refused, match="not enough room"):
        create_backup(rocksmq, tmp_path / "backup", milvus_running=True)
    assert not (tmp_path / "backup").exists()


def test_restore_brings_back_both_databases_and_refuses_to_overwrite_without_force(rocksmq, tmp_path):
    before = inspect(rocksmq, deep=True).to_dict()
    dest = tmp_path / "backup"
    run = run_cli(["backup", "create", str(rocksmq), "--to", str(dest)])
    assert run.exit_code == 0, run.stderr

    refused = run_cli(["backup", "restore", str(dest), "--to", str(rocksmq)])
    assert refused.exit_code == 3 and "not empty" in refused.stderr

    target = tmp_path / "restored" / "rdb_data"
    restore_backup(dest, target)
    after = inspect(target, deep=True).to_dict()
    for key in ("messages", "bytes", "histogram", "oldest_time", "newest_time"):
        assert after[key] == before[key]
    assert (tmp_path / "restored" / "rdb_data_meta_kv" / "CURRENT").exists()

    (rocksmq / "CURRENT").unlink()  # break the original, then restore over it
    forced = run_cli(["backup", "restore", str(dest), "--to", str(rocksmq), "--force"])
    assert forced.exit_code == 3 and "not a RocksDB directory" in forced.stderr
    (rocksmq / "CURRENT").write_text("MANIFEST-000005\n")
    assert run_cli(["backup", "restore", str(dest), "--to", str(rocksmq), "--force"]).exit_code == 0
    assert inspect(rocksmq, deep=True).messages == before["messages"]
    assert not list(rocksmq.parent.glob("*.restoring"))


def test_clean_needs_a_verified_backup_of_this_path_or_the_explicit_flag(rocksmq, tmp_path):
    meta = rocksmq.with_name("rdb_data_meta_kv")
    refused = run_cli(["backup", "clean", str(rocksmq)])
    assert refused.exit_code == 2 and "without a backup" in refused.stderr

    other = tmp_path / "other" / "rdb_data"
    write_rocksmq(other, {"t": [10]})
    other_backup = tmp_path / "other-backup"
    create_backup(other, other_backup, milvus_running=False)
    with pytest.raises(Refused, match="not of"):
        clean(rocksmq, backup_dir=other_backup)

    dest = tmp_path / "backup"
    create_backup(rocksmq, dest, milvus_running=False)
    report = clean(rocksmq, backup_dir=dest)
    assert not rocksmq.exists() and not meta.exists()
    assert report.bytes_freed > 0
    verify_backup(dest)  # hard links keep the SSTs alive after the originals are gone
    restore_backup(dest, rocksmq)
    assert inspect(rocksmq).messages == 50


def test_clean_refuses_unsafe_targets(rocksmq, tmp_path, monkeypatch):
    before = tree_snapshot(rocksmq.parent)
    with pytest.raises(Refused, match="config dir"):
        clean(rocksmq, force_without_backup=True, config_dir=rocksmq.parent)
    monkeypatch.setattr("migrator.rocksmq.safety._homes", lambda: {rocksmq.resolve()})
    with pytest.raises(Refused, match="home directory"):
        clean(rocksmq, force_without_backup=True)
    monkeypatch.setattr("os.path.ismount", lambda path: str(path).endswith("rdb_data_meta_kv"))
    monkeypatch.setattr("migrator.rocksmq.safety._homes", lambda: set())
    with pytest.raises(Refused, match="mount point"):
        clean(rocksmq, force_without_backup=True)
    assert tree_snapshot(rocksmq.parent) == before
    with pytest.raises(BadInput, match="not a RocksDB directory"):
        clean(tmp_path, force_without_backup=True)


def test_clean_refuses_root():
    with pytest.raises(Refused, match="it is /"):
        refuse_unsafe_target(Path("/"))
