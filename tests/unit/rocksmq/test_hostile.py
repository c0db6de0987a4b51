"""Issue 14's reported cases for clean-up, restore and inspect, reproduced as root (as the tool runs).

Each test gives the input that once deleted data or lied, and checks the refusal, the exit code,
the message and that nothing on disk changed (file bytes, not the tool's own report).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from migrator.errors import BadInput, Refused
from migrator.rocksmq import clean, create_backup, inspect, restore_backup
from migrator.rocksmq.backup import MANIFEST_NAME, restore_journal_path
from tests.support.cli import ctrl_c_as_at_a_terminal, run_cli
from tests.support.rocksmq import (
    append_messages,
    write_rocksmq,
)

ROOT = os.geteuid() == 0



def _meta(path: Path) -> Path:
    return path.with_name(path.name + "_meta_kv")


def _contents(*directories: Path) -> dict[str, bytes]:
    """Every file's bytes, by path: equal before and after proves nothing was changed or lost."""
    found = {}
    for directory in directories:
        for root, _dirs, names in os.walk(directory):
            for name in names:
                found[os.path.join(root, name)] = Path(root, name).read_bytes()
    return found


# --- 1. clean ------------------------------------------------------------------------------


def test_clean_refuses_a_backup_whose_manifest_lists_no_file(rocksmq, tmp_path):
    empty = tmp_path / "empty-backup"
    empty.mkdir()
    manifest = {"format": 2, "source_data": str(rocksmq), "source_meta_kv": str(_meta(rocksmq)), "mode": "copy",
                "milvus_running": False, "created_at": "2026-11-30T00:00:00+00:00", "files": [],
                "started_unix": time.time(), "newest_msg_ids": {}}
    (empty / MANIFEST_NAME).write_text(json.dumps(manifest))
    before = _contents(rocksmq, _meta(rocksmq))
    result = run_cli(["backup", "clean", str(rocksmq), "--backup", str(empty)])
    assert result.exit_code == 3, result.stderr
    assert "incomplete" in result.stderr and "Traceback" not in result.stderr
    assert _contents(rocksmq, _meta(rocksmq)) == before


def test_clean_refuses_a_backup_taken_before_more_messages_arrived(rocksmq, tmp_path):
    backup = tmp_path / "backup"
    create_backup(rocksmq, backup, milvus_running=False)
    append_messages(rocksmq, "by-dev-rootcoord-dml_0", 1010)
    before = _contents(rocksmq, _meta(rocksmq))
    result = run_cli(["backup", "clean", str(rocksmq), "--backup", str(backup)])
    assert result.exit_code == 3, result.stderr
    assert "does not cover" in result.stderr
    assert _contents(rocksmq, _meta(rocksmq)) == before
    assert inspect(rocksmq, deep=True).messages == 50 + 1010


def test_clean_compares_the_newest_message_ids_on_their_own(rocksmq, tmp_path):
    # Same files and sizes, another newest id: the id check alone must refuse.
    backup = tmp_path / "backup"
    create_backup(rocksmq, backup, milvus_running=False)
    manifest = json.loads((backup / MANIFEST_NAME).read_text())
    manifest["newest_msg_ids"]["by-dev-rootcoord-dml_1"] += 1
    (backup / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(Refused, match="newest message differs .*dml_1"):
        clean(rocksmq, backup_dir=backup)
    assert rocksmq.exists() and _meta(rocksmq).exists()


def test_clean_refuses_a_backup_started_before_the_write_deny(rocksmq, tmp_path):
    backup = tmp_path / "backup"
    create_backup(rocksmq, backup, milvus_running=False)
    with pytest.raises(Refused, match="before writes were denied"):
        clean(rocksmq, backup_dir=backup, not_before=time.time() + 60)
    report = clean(rocksmq, backup_dir=backup, not_before=time.time() - 60)
    assert report.removed == [str(rocksmq), str(_meta(rocksmq))] and not rocksmq.exists()


@pytest.mark.parametrize("foreign", ["nats", "data"])
def test_clean_refuses_a_directory_that_is_not_only_rocksdb(rocksmq, foreign):
    keep = rocksmq / foreign / "keep.me"
    keep.parent.mkdir()
    keep.write_text("someone's data")
    before = _contents(rocksmq, _meta(rocksmq))
    result = run_cli(["backup", "clean", str(rocksmq), "--i-have-no-backup"])
    assert result.exit_code == 3 and f"{foreign}/" in result.stderr and "not RocksDB's" in result.stderr
    assert _contents(rocksmq, _meta(rocksmq)) == before


@pytest.fixture
def nested_tmpfs(rocksmq):
    """A tmpfs mounted inside rocksmq.path (needs root and mount(2), as the tool's hosts have)."""
    point = rocksmq / "mnt"
    point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    (point / "other-fs-file").write_text("on another filesystem")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_clean_refuses_a_mount_point_anywhere_below(rocksmq, nested_tmpfs):
    before = _contents(rocksmq, _meta(rocksmq))
    result = run_cli(["backup", "clean", str(rocksmq), "--i-have-no-backup"])
    assert result.exit_code == 3 and "mount point" in result.stderr and str(nested_tmpfs) in result.stderr
    assert _contents(rocksmq, _meta(rocksmq)) == before


def test_clean_on_a_symlink_is_refused_without_a_traceback(rocksmq, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(rocksmq)
    (tmp_path / "link_meta_kv").symlink_to(_meta(rocksmq))
    result = run_cli(["backup", "clean", str(link), "--i-have-no-backup"])
    assert result.exit_code == 2 and "symbolic link" in result.stderr and "Traceback" not in result.stderr
    assert rocksmq.exists() and (rocksmq / "CURRENT").exists()


def test_clean_that_cannot_move_the_second_dir_puts_the_first_back(rocksmq, monkeypatch):
    import migrator.rocksmq.cleanup as cleanup

    real_rename, calls = os.rename, []

    def rename(source, destination):
        calls.append(source)
        if len(calls) == 2:
            raise OSError(16, "Device or resource busy")
        real_rename(source, destination)

    monkeypatch.setattr(cleanup.os, "rename", rename)
    before = _contents(rocksmq, _meta(rocksmq))
    with pytest.raises(Refused, match="nothing was removed"):
        clean(rocksmq, force_without_backup=True)
    monkeypatch.undo()
    assert _contents(rocksmq, _meta(rocksmq)) == before
    assert not list(rocksmq.parent.glob(".rdb_data.removing-*"))


def test_cleanup_without_backup_is_a_plan_finding():
    from migrator.migration.preflight import cleanup_findings
    from migrator.playbook import MigrationSpec

    [finding] = cleanup_findings(MigrationSpec(state_dir=Path("/s"), cleanup=True, backup=False))
    assert finding.level == "error" and finding.key == "migration.cleanup"
    assert cleanup_findings(MigrationSpec(state_dir=Path("/s"), cleanup=True, backup=True, backup_dir=Path("/b"))) == []


# --- 2. restore ----------------------------------------------------------------------------


@pytest.fixture
def replaced(rocksmq, tmp_path):
    """(backup of rocksmq, the live pair's bytes after 1010 more messages): a restore target."""
    backup = tmp_path / "backup"
    create_backup(rocksmq, backup, milvus_running=False)
    append_messages(rocksmq, "by-dev-rootcoord-dml_0", 1010)
    return backup, _contents(rocksmq, _meta(rocksmq))


def _renamed(relative_to: Path, contents: dict[str, bytes], old: Path, new: Path) -> dict[str, bytes]:
    return {path.replace(str(old), str(new), 1): data for path, data in contents.items()}


def test_restore_interrupted_between_the_two_renames_puts_the_originals_back(rocksmq, replaced, monkeypatch):
    import migrator.rocksmq.backup as backup_module

    backup, live = replaced
    real_rename, calls = os.rename, []

    def rename(source, destination):
        real_rename(source, destination)
        calls.append(source)
        if len(calls) == 1:  # after the data dir moved, before its _meta_kv
            raise KeyboardInterrupt

    monkeypatch.setattr(backup_module.os, "rename", rename)
    result = run_cli(["backup", "restore", str(backup), "--to", str(rocksmq), "--force"])
    monkeypatch.undo()
    assert result.exit_code == 130 and "interrupted" in result.stderr and "Traceback" not in result.stderr
    assert _contents(rocksmq, _meta(rocksmq)) == live  # both originals, byte for byte
    leftovers = [p.name for p in rocksmq.parent.iterdir() if p.name not in ("rdb_data", "rdb_data_meta_kv")]
    assert leftovers == []  # no staging dir, no replaced dir, no journal


def test_restore_keeps_what_it_replaces_and_switches_both(rocksmq, replaced):
    backup, live = replaced
    report = restore_backup(backup, rocksmq, force=True)
    assert inspect(rocksmq, deep=True).messages == 50
    kept = Path(report.replaced_dir)
    assert _contents(kept / "rdb_data", kept / "rdb_data_meta_kv") == {
        **_renamed(kept, {k: v for k, v in live.items() if "_meta_kv" not in k}, rocksmq, kept / "rdb_data"),
        **_renamed(kept, {k: v for k, v in live.items() if "_meta_kv" in k}, _meta(rocksmq), kept / "rdb_data_meta_kv"),
    }
    assert not restore_journal_path(rocksmq).exists()


_KILLED_RESTORE = textwrap.dedent("""
    import os, signal, sys
    import migrator.rocksmq.backup as backup
    real, calls = os.rename, []
    def rename(source, destination):
        real(source, destination)
        calls.append(source)
        if len(calls) == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
    backup.os.rename = rename
    backup.restore_backup(sys.argv[1], sys.argv[2], force=True)
""")


@pytest.mark.parametrize("killed_after", [1, 2, 3])
def test_a_killed_restore_is_finished_by_running_it_again(rocksmq, replaced, killed_after):
    backup, _live = replaced
    killed = subprocess.run([sys.executable, "-c", _KILLED_RESTORE, str(backup), str(rocksmq), str(killed_after)],
                            capture_output=True, cwd=Path(__file__).parents[3])
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert restore_journal_path(rocksmq).exists()
    result = run_cli(["backup", "restore", str(backup), "--to", str(rocksmq), "--force"])
    assert result.exit_code == 0, result.stderr
    assert inspect(rocksmq, deep=True).messages == 50
    kept = next(rocksmq.parent.glob("rdb_data.replaced-*"))
    assert inspect(kept / "rdb_data", deep=True).messages == 50 + 1010  # the originals, whole
    assert not restore_journal_path(rocksmq).exists() and not list(rocksmq.parent.glob("*.restoring-*"))


_SIGNALLED_RESTORE = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import migrator.rocksmq.backup as backup
    from migrator.cli import main
    real = os.rename
    def rename(source, destination):
        Path(sys.argv[3]).touch()  # the switch has begun
        time.sleep(0.4)
        real(source, destination)
    backup.os.rename = rename
    sys.exit(main(["backup", "restore", sys.argv[1], "--to", sys.argv[2], "--force"]))
""")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_during_the_switch_waits_for_it(rocksmq, replaced, tmp_path, signum):
    backup, _live = replaced
    marker = tmp_path / "switching"
    process = subprocess.Popen([sys.executable, "-c", _SIGNALLED_RESTORE, str(backup), str(rocksmq), str(marker)],
                               stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[3],
                               preexec_fn=ctrl_c_as_at_a_terminal)
    deadline = time.monotonic() + 60
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signum)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err
    # The switch completed as one: both databases are the backup's.
    assert inspect(rocksmq, deep=True).messages == 50
    kept = next(rocksmq.parent.glob("rdb_data.replaced-*"))
    assert inspect(kept / "rdb_data", deep=True).messages == 50 + 1010


def test_restore_refuses_a_meta_kv_that_is_a_symlink(rocksmq, tmp_path):
    backup = tmp_path / "backup"
    create_backup(rocksmq, backup, milvus_running=False)
    elsewhere = tmp_path / "elsewhere_meta_kv"
    _meta(rocksmq).rename(elsewhere)
    _meta(rocksmq).symlink_to(elsewhere)
    before = _contents(rocksmq, elsewhere)
    result = run_cli(["backup", "restore", str(backup), "--to", str(rocksmq), "--force"])
    assert result.exit_code == 2 and "symbolic link" in result.stderr and "Traceback" not in result.stderr
    assert _contents(rocksmq, elsewhere) == before and _meta(rocksmq).is_symlink()


def test_restore_never_deletes_restoring_dirs_it_did_not_create(rocksmq, tmp_path):
    backup = tmp_path / "backup"
    create_backup(rocksmq, backup, milvus_running=False)
    theirs = rocksmq.with_name("rdb_data.restoring")
    theirs.mkdir()
    (theirs / "precious").write_text("not the tool's")
    restore_backup(backup, tmp_path / "volumes" / "rdb_data", force=True)
    assert (theirs / "precious").read_text() == "not the tool's"


def test_restore_refuses_the_backups_own_data_dir(rocksmq, tmp_path):
    backup = tmp_path / "backup"
    create_backup(rocksmq, backup, milvus_running=False)
    before = _contents(backup)
    result = run_cli(["backup", "restore", str(backup), "--to", str(backup / "data"), "--force"])
    assert result.exit_code == 2 and "overlaps the backup" in result.stderr
    assert _contents(backup) == before


def test_restore_refuses_to_finish_another_targets_unfinished_restore(rocksmq, tmp_path):
    backup = tmp_path / "backup"
    create_backup(rocksmq, backup, milvus_running=False)
    restore_journal_path(rocksmq).write_text(json.dumps({"phase": "switching"}))
    with pytest.raises(BadInput, match="not a restore journal"):
        restore_backup(backup, rocksmq, force=True)
    record = {"backup": "/elsewhere", "targets": {"data": str(rocksmq), "meta_kv": str(_meta(rocksmq))},
              "staging": {"data": "/etc", "meta_kv": "/usr"}, "replaced_dir": "/", "phase": "copying"}
    restore_journal_path(rocksmq).write_text(json.dumps(record))
    with pytest.raises(Refused, match="unfinished"):
        restore_backup(backup, rocksmq, force=True)
    record["backup"] = str(backup)
    restore_journal_path(rocksmq).write_text(json.dumps(record))
    with pytest.raises(BadInput, match="is not a name a restore"):  # never rmtree /etc
        restore_backup(backup, rocksmq, force=True)
    assert Path("/etc/passwd").exists()


# --- 8. inspect on a damaged database --------------------------------------------------------


def test_inspect_refuses_a_flipped_sst_byte(tmp_path):
    path = tmp_path / "rdb_data"
    write_rocksmq(path, {"t0": [1000] * 300, "t1": [1000] * 300})
    sst = next(path.glob("*.sst"))
    data = bytearray(sst.read_bytes())
    data[len(data) // 3] ^= 0xFF
    sst.write_bytes(bytes(data))
    for deep in ([], ["--deep"]):
        result = run_cli(["inspect", "rocksmq", str(path), *deep])
        assert result.exit_code == 2 and "damaged" in result.stderr and "checksum" in result.stderr, result.stderr


@pytest.mark.parametrize("which", ["rdb_data", "rdb_data_meta_kv"])
@pytest.mark.parametrize("fraction", [0.5, 0.8])
def test_inspect_refuses_a_truncated_manifest(tmp_path, which, fraction):
    path = tmp_path / "rdb_data"
    write_rocksmq(path, {"t0": [1000] * 300, "t1": [1000] * 300})
    manifest = next((tmp_path / which).glob("MANIFEST-*"))
    manifest.write_bytes(manifest.read_bytes()[: int(manifest.stat().st_size * fraction)])
    for deep in ([], ["--deep"]):
        result = run_cli(["inspect", "rocksmq", str(path), *deep])
        assert result.exit_code == 2, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr


def test_backup_of_a_damaged_database_is_refused_and_leaves_nothing(tmp_path):
    path = tmp_path / "rdb_data"
    write_rocksmq(path, {"t0": [1000] * 300})
    manifest = next(path.glob("MANIFEST-*"))
    manifest.write_bytes(manifest.read_bytes()[: int(manifest.stat().st_size * 0.8)])
    with pytest.raises(BadInput, match="damaged"):
        create_backup(path, tmp_path / "backup", milvus_running=False)
    assert not (tmp_path / "backup").exists()


def test_support_helper_really_writes_what_it_says(rocksmq):
    ids = append_messages(rocksmq, "by-dev-rootcoord-dml_1", 3)
    stats = {t.name: t for t in inspect(rocksmq, deep=True).topics}
    assert stats["by-dev-rootcoord-dml_1"].newest_msg_id == ids[-1]
    shutil.rmtree(rocksmq)


def test_a_clean_up_that_failed_while_deleting_names_what_it_left(rocksmq, monkeypatch):
    import migrator.rocksmq.cleanup as cleanup

    def failing_rmtree(path):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(cleanup.shutil, "rmtree", failing_rmtree)
    with pytest.raises(Refused, match="deleting .*removing-.* failed"):
        clean(rocksmq, force_without_backup=True)
    monkeypatch.undo()
    [left] = rocksmq.parent.glob(".rdb_data.removing-*")
    assert sorted(p.name for p in left.iterdir()) == ["rdb_data", "rdb_data_meta_kv"]  # both, whole
    result = run_cli(["backup", "clean", str(rocksmq), "--i-have-no-backup"])
    assert result.exit_code == 2 and str(left) in result.stderr and "Traceback" not in result.stderr
