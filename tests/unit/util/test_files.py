"""Writes that follow no planted symlink, run files 0600, bounded reads (issue 14, cases 3, 4, 9), as root."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from migrator.errors import BadInput, Refused
from migrator.util.files import open_no_follow, read_bounded, write_bytes_atomic


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file root must never overwrite: what a planted link points at (think /etc/shadow)."""
    path = tmp_path / "victim"
    path.write_text("precious\n")
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_atomic_write_replaces_a_planted_link_instead_of_writing_through_it(tmp_path, victim):
    target = tmp_path / "state" / "journal.json"
    target.parent.mkdir()
    target.symlink_to(victim)
    write_bytes_atomic(target, b"{}")
    assert victim.read_text() == "precious\n"
    assert not target.is_symlink() and target.read_bytes() == b"{}" and _mode(target) == 0o600


def test_lock_file_is_never_opened_through_a_link(tmp_path, victim):
    from migrator.migration.journal import DeploymentLock

    (tmp_path / "lock").symlink_to(victim)
    with pytest.raises(Refused, match="symbolic link"):
        DeploymentLock(tmp_path / "lock").acquire()
    with pytest.raises(Refused, match="symbolic link"):
        DeploymentLock(tmp_path / "lock").held_by_other()
    assert victim.read_text() == "precious\n"
    lock = DeploymentLock(tmp_path / "fresh" / "lock")
    with lock:
        assert _mode(tmp_path / "fresh" / "lock") == 0o600


def test_report_files_are_0600_and_never_written_through_a_link(tmp_path, victim):
    from migrator.migration.report import write_report

    report = {"run_id": "r1", "dry_run": False, "source_mq": "rocksmq", "target_mq": "natsmq", "milvus_version": "v2.3.5",
              "playbook": "pb", "status": "done", "write_downtime_s": 1.0, "read_downtime_s": 2.0,
              "restart_to_all_loaded_strong_s": None, "gate": {"kind": "firewall", "why": "nft"},
              "steps": [], "counts": [], "findings": []}
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "r1.md").symlink_to(victim)
    (tmp_path / "reports" / "r1.json").symlink_to(victim)
    json_path, md_path = write_report(report, tmp_path)
    assert victim.read_text() == "precious\n"
    assert _mode(json_path) == 0o600 and _mode(md_path) == 0o600 and not md_path.is_symlink()


def test_log_file_is_0600_and_never_opened_through_a_link(tmp_path, victim):
    import io

    from migrator.util.logging import make_logger

    (tmp_path / "planted.log").symlink_to(victim)
    with pytest.raises(Refused, match="symbolic link"):
        make_logger(io.StringIO(), log_format="json", log_file=tmp_path / "planted.log", verbose=False)
    make_logger(io.StringIO(), log_format="json", log_file=tmp_path / "run.log", verbose=False).info("x")
    assert victim.read_text() == "precious\n" and _mode(tmp_path / "run.log") == 0o600


def test_keep_original_never_writes_its_checksum_through_a_link(tmp_path, victim):
    from migrator.config.write import keep_original

    config = tmp_path / "milvus.yaml"
    config.write_text("mq:\n  type: rocksmq\n")
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "milvus.yaml.original.sha256").symlink_to(victim)
    copy, digest = keep_original(config, kept)
    assert victim.read_text() == "precious\n"
    sums = kept / "milvus.yaml.original.sha256"
    assert not sums.is_symlink() and sums.read_text() == f"{digest}  {copy.name}\n"


def test_keep_original_never_takes_a_planted_link_for_the_kept_copy(tmp_path):
    from migrator.config.write import keep_original

    config = tmp_path / "milvus.yaml"
    config.write_text("mq:\n  type: rocksmq\n")
    kept = tmp_path / "kept"
    kept.mkdir()
    # A link to the live file has the same content now, and the edited content later.
    (kept / "milvus.yaml.original").symlink_to(config)
    copy, _digest = keep_original(config, kept)
    assert copy.name == "milvus.yaml.original.2" and not copy.is_symlink()


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "too big"])
def test_bounded_read_refuses_what_is_no_small_regular_file(tmp_path, kind):
    path = {"fifo": tmp_path / "fifo", "device": Path("/dev/zero"), "directory": tmp_path,
            "too big": tmp_path / "big"}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    if kind == "too big":
        path.write_bytes(b"x" * 2048)
    started = time.monotonic()
    with pytest.raises(BadInput, match=str(path)):
        read_bounded(path, 1024, what="playbook")
    assert time.monotonic() - started < 5  # a FIFO never hangs it


def test_bounded_read_stops_at_the_limit_when_the_size_lies():
    # /proc files report size 0 and can be longer: the read itself is bounded.
    with pytest.raises(BadInput, match="more than"):
        read_bounded(Path("/proc/self/maps"), 16)


def test_open_no_follow_refuses_a_fifo_without_hanging(tmp_path):
    os.mkfifo(tmp_path / "lock")
    with pytest.raises(Refused, match="not a regular file"):
        open_no_follow(tmp_path / "lock", os.O_RDWR | os.O_CREAT)


@pytest.fixture
def immutable_dir(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    done = subprocess.run(["chattr", "+i", str(state)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not possible here: {done.stderr.decode().strip()}")
    try:
        yield state
    finally:
        subprocess.run(["chattr", "-i", str(state)], check=False)


def test_an_immutable_state_dir_is_refused_with_a_message(immutable_dir):
    from migrator.migration.journal import DeploymentLock, Journal

    with pytest.raises(Refused, match=f"cannot write {immutable_dir}/journal.json"):
        Journal.create(immutable_dir / "journal.json", run_id="20261130T000000Z", plan={})
    with pytest.raises(Refused, match="cannot open"):
        DeploymentLock(immutable_dir / "lock").acquire()
    assert list(immutable_dir.iterdir()) == []


def test_a_fifo_playbook_is_refused_by_the_cli_without_hanging(tmp_path):
    from tests.support.cli import run_cli

    os.mkfifo(tmp_path / "pb.yaml")
    result: list = []
    thread = threading.Thread(target=lambda: result.append(run_cli(["playbook", "check", str(tmp_path / "pb.yaml")])),
                              daemon=True)
    thread.start()
    thread.join(10)
    assert result, "playbook check hung on a FIFO"
    assert result[0].exit_code == 2 and "FIFO" in result[0].stderr
