"""Backup, verify, restore and clean-up of both RocksMQ databases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from migrator.errors import BadInput, Damaged, Refused
from migrator.rocksmq import (
    clean,
    create_backup,
    inspect,
    restore_backup,
    verify_backup,
)
from migrator.rocksmq.backup import MANIFEST_NAME
from migrator.rocksmq.safety import refuse_unsafe_target
from tests.support.cli import run_cli
from tests.support.rocksmq import tree_snapshot, write_rocksmq


def _inodes(directory):
    return {p.name: p.stat().st_ino for p in directory.iterdir()}


def test_stopped_backup_hard_links_ssts_on_request_copies_the_rest_and_writes_a_manifest(rocksmq, tmp_path):
    dest = tmp_path / "backup"
    manifest = create_backup(rocksmq, dest, milvus_running=False, hard_links=True)
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
    assert result.exit_code == 4 and "meta_kv/MANIFEST-" in result.stderr and "sha256" in result.stderr  # a failed check
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


def test_clean_refuses_when_a_live_file_is_not_in_the_backup(rocksmq, tmp_path):
    """A file that appeared after the backup (a new log or table: what a write to the meta kv
    leaves) is data the backup cannot give back: nothing is removed."""
    meta = rocksmq.with_name("rdb_data_meta_kv")
    dest = tmp_path / "backup"
    create_backup(rocksmq, dest, milvus_running=False)
    (meta / "000012.log").write_bytes((meta / "000008.log").read_bytes())
    before = tree_snapshot(rocksmq.parent)
    with pytest.raises(Refused, match="meta_kv/000012.log is not in the backup"):
        clean(rocksmq, backup_dir=dest)
    assert tree_snapshot(rocksmq.parent) == before


def test_clean_refuses_unsafe_targets(rocksmq, tmp_path, monkeypatch):
    before = tree_snapshot(rocksmq.parent)
    with pytest.raises(Refused, match="config dir"):
        clean(rocksmq, force_without_backup=True, config_dir=rocksmq.parent)
    monkeypatch.setattr("migrator.util.paths.homes", lambda: {rocksmq.resolve()})
    with pytest.raises(Refused, match="home directory"):
        clean(rocksmq, force_without_backup=True)
    monkeypatch.setattr("os.path.ismount", lambda path: str(path).endswith("rdb_data_meta_kv"))
    monkeypatch.setattr("migrator.util.paths.homes", lambda: set())
    with pytest.raises(Refused, match="mount point"):
        clean(rocksmq, force_without_backup=True)
    assert tree_snapshot(rocksmq.parent) == before
    with pytest.raises(BadInput, match="not a RocksDB directory"):
        clean(tmp_path, force_without_backup=True)


def test_clean_refuses_root():
    with pytest.raises(Refused, match="the system directory /,"):
        refuse_unsafe_target(Path("/"))


def test_single_pass_copy_hashes_what_it_writes_and_starts_writeback_for_all_of_it(tmp_path, monkeypatch):
    import hashlib

    import migrator.rocksmq.files as files

    started = []
    monkeypatch.setattr(files, "start_writeback", lambda fd, offset, length: started.append((offset, length)))
    source = tmp_path / "big.sst"
    payload = bytes(range(256)) * ((files.WRITEBACK_EVERY + 3 * files.CHUNK) // 256) + b"tail"
    source.write_bytes(payload)
    size, digest, how = files.copy_and_hash(source, tmp_path / "copy.sst")
    if how == "reflink":
        pytest.skip("this file system shares blocks: no bytes are copied, nothing to write back")
    assert (tmp_path / "copy.sst").read_bytes() == payload
    assert (size, digest) == (len(payload), hashlib.sha256(payload).hexdigest())
    covered = 0
    for offset, length in started:  # contiguous ranges that end at the end of the file
        assert offset == covered and length > 0
        covered += length
    assert covered == len(payload) and len(started) == 2

    (tmp_path / "empty").touch()
    assert files.copy_and_hash(tmp_path / "empty", tmp_path / "empty.copy")[:2] == (0, hashlib.sha256().hexdigest())


@pytest.mark.parametrize("syncfs", [True, False])
@pytest.mark.parametrize("milvus_running", [True, False])
def test_manifest_is_written_only_after_every_copy_and_directory_is_fsynced(rocksmq, tmp_path, monkeypatch,
                                                                            milvus_running, syncfs):
    """Copies made durable (an fsync each, or one syncfs per batch of small files), then their
    directories, then the manifest renamed into place."""
    import migrator.rocksmq.backup as backup

    events = []
    real_syncfs = backup.sync_file_system

    def sync_file_system(directory):
        done = syncfs and real_syncfs(directory)
        if done:
            events.append(("files", {p.relative_to(dest).as_posix() for part in ("data", "meta_kv")
                                     for p in (dest / part).iterdir()}))
        return done

    monkeypatch.setattr(backup, "sync_file_system", sync_file_system)
    real_fsync_files, real_fsync_dir = backup.fsync_files, backup.fsync_path

    def fsync_files(paths, threads):
        paths = list(paths)
        events.append(("files", {Path(p).relative_to(dest).as_posix() for p in paths}))
        real_fsync_files(paths, threads)

    monkeypatch.setattr(backup, "fsync_files", fsync_files)
    monkeypatch.setattr(backup, "fsync_path", lambda d: (events.append(("dir", d)), real_fsync_dir(d)))
    dest = tmp_path / "backup"
    manifest = create_backup(rocksmq, dest, milvus_running=milvus_running)
    kinds = [kind for kind, _ in events]
    last_copy = max(index for index, kind in enumerate(kinds) if kind == "files")
    part_dirs = [index for index, (kind, value) in enumerate(events) if kind == "dir" and value in (dest / "data", dest / "meta_kv")]
    manifest_renamed = next(index for index, (kind, value) in enumerate(events) if kind == "dir" and value == dest)
    assert last_copy < min(part_dirs) and max(part_dirs) < manifest_renamed  # copies, their dirs, then the manifest
    synced = set().union(*(value for kind, value in events if kind == "files"))
    assert synced == {e.path for e in manifest.files}  # every file is a copy, to be made durable
    assert not (dest / ".manifest.json.partial").exists() and (dest / MANIFEST_NAME).is_file()


def test_failed_fsync_pass_leaves_no_backup(rocksmq, tmp_path, monkeypatch):
    import errno

    import migrator.rocksmq.backup as backup

    def failing(paths, threads):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(backup, "fsync_files", failing)
    monkeypatch.setattr(backup, "sync_file_system", lambda directory: False)  # no syncfs here: an fsync each
    with pytest.raises(OSError):
        create_backup(rocksmq, tmp_path / "backup", milvus_running=True)
    assert not (tmp_path / "backup").exists()


def test_verify_detects_a_flipped_byte_inside_a_copied_sst(rocksmq, tmp_path):
    # The manifest hashes the bytes as they were written; verify re-reads them from the backup.
    dest = tmp_path / "backup"
    create_backup(rocksmq, dest, milvus_running=True)
    victim = max((dest / "data").glob("*.sst"), key=lambda p: p.stat().st_size)
    with open(victim, "r+b") as handle:
        handle.seek(victim.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(Damaged, match=rf"data/{victim.name}: sha256 differs"):
        verify_backup(dest)
