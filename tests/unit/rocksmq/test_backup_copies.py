"""Issue 20, finding 12: a backup is a copy by default; hard links only when asked, with a warning.

A hard-linked SST is one file in two directories: appending to the one in the backup corrupted the
live store ("Sst file size mismatch"). And a clean-up never counts as freed the bytes a hard-linked
backup still holds.
"""

from __future__ import annotations

from pathlib import Path

from migrator.rocksmq import clean, create_backup, inspect, verify_backup
from tests.support.cli import run_cli


def test_a_backup_of_a_stopped_milvus_copies_by_default_and_cannot_touch_the_live_store(rocksmq, tmp_path):
    dest = tmp_path / "backup"
    manifest = create_backup(rocksmq, dest, milvus_running=False)
    assert manifest.mode in ("copy", "reflink"), manifest.mode
    live = {p.name: p.stat().st_ino for p in rocksmq.iterdir()}
    for copy in (dest / "data").iterdir():
        assert copy.stat().st_ino != live[copy.name] and copy.stat().st_nlink == 1, copy.name
    before = inspect(rocksmq).messages
    sst = next((dest / "data").glob("*.sst"))
    with open(sst, "ab") as handle:  # what someone "repairing" the backup might do
        handle.write(b"garbage")
    assert inspect(rocksmq).messages == before  # the live store does not see it


def test_hard_links_are_made_only_on_request_and_the_cli_warns(rocksmq, tmp_path):
    manifest = create_backup(rocksmq, tmp_path / "linked", milvus_running=False, hard_links=True)
    assert manifest.mode == "hardlink"
    result = run_cli(["backup", "create", str(rocksmq), "--to", str(tmp_path / "cli"), "--hard-links"])
    assert result.exit_code == 0, result.stderr
    assert "warning" in result.stderr.lower() and "hard link" in result.stderr, result.stderr
    default = run_cli(["backup", "create", str(rocksmq), "--to", str(tmp_path / "plain")])
    assert default.exit_code == 0 and "hard link" not in default.stderr, default.stderr


def test_clean_counts_as_freed_only_what_no_backup_still_holds(rocksmq, tmp_path):
    dest = tmp_path / "linked"
    create_backup(rocksmq, dest, milvus_running=False, hard_links=True)
    held = sum(p.stat().st_size for p in (dest / "data").glob("*.sst"))
    everything = sum(p.stat().st_size for d in (rocksmq, Path(f"{rocksmq}_meta_kv")) for p in d.iterdir())
    assert held > 0
    report = clean(rocksmq, backup_dir=dest)
    assert report.bytes_freed == everything - held - _sizes_of_ssts_in(dest / "meta_kv")
    assert report.to_dict()["bytes_still_held"] == held + _sizes_of_ssts_in(dest / "meta_kv")
    verify_backup(dest)


def _sizes_of_ssts_in(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.sst"))


def test_a_sparse_file_stays_sparse_in_the_backup(rocksmq, tmp_path):
    """RocksDB preallocates its WAL; a file that is mostly a hole must not become all bytes."""
    log = rocksmq / "000999.log"
    with open(log, "wb") as handle:
        handle.write(b"head")
        handle.seek(64 * 1024 * 1024)
        handle.write(b"tail")
    assert log.stat().st_blocks * 512 < 1024 * 1024  # the file system keeps the hole
    dest = tmp_path / "backup"
    create_backup(rocksmq, dest, milvus_running=False)
    copy = dest / "data" / "000999.log"
    assert copy.stat().st_size == log.stat().st_size
    assert copy.stat().st_blocks <= log.stat().st_blocks, (copy.stat().st_blocks, log.stat().st_blocks)
    assert copy.read_bytes() == log.read_bytes()
    verify_backup(dest)
