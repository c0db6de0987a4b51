"""Atomic write: mode kept, symlink target edited, read-only dir fails with the file untouched."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from migrator.config import keep_original, write_atomic
from migrator.errors import Refused


def test_write_replaces_and_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "milvus.yaml"
    path.write_text("mq:\n  type: rocksmq\n")
    path.chmod(0o640)
    assert write_atomic(path, "mq:\n  type: natsmq\n") == path
    assert path.read_text() == "mq:\n  type: natsmq\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["milvus.yaml"]


def test_a_reader_of_the_old_file_reads_all_of_it_and_the_path_gets_a_new_inode(tmp_path: Path) -> None:
    """A rename, not a rewrite: Milvus re-reading its config while the tool writes it sees the old file
    whole or the new one whole, never a truncated or half-written one."""
    path = tmp_path / "milvus.yaml"
    old = "mq:\n  type: rocksmq\n" + "# padding\n" * 10_000
    path.write_text(old)
    before = path.stat().st_ino
    with path.open() as reader:  # opened before the write, read after it
        write_atomic(path, "mq:\n  type: natsmq\n")
        assert reader.read() == old
    assert path.stat().st_ino != before and path.read_text() == "mq:\n  type: natsmq\n"


def test_symlink_edits_its_target(tmp_path: Path) -> None:
    real = tmp_path / "real" / "milvus.yaml"
    real.parent.mkdir()
    real.write_text("a: 1\n")
    link = tmp_path / "milvus.yaml"
    link.symlink_to(real)
    write_atomic(link, "a: 2\n")
    assert link.is_symlink() and real.read_text() == "a: 2\n"


@contextmanager
def _unwritable(directory: Path) -> Iterator[None]:
    """A directory no one may write into, root included: the immutable attribute as root (the tool
    runs as root), mode 0555 otherwise."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("chattr (e2fsprogs) is not installed: cannot make a directory unwritable for root")
        made = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"this filesystem has no immutable attribute: {made.stderr.strip()}")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
    else:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)


def test_read_only_dir_fails_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "milvus.yaml"
    path.write_text("a: 1\n")
    with _unwritable(tmp_path), pytest.raises(Refused, match="cannot write"):
        write_atomic(path, "a: 2\n")
    assert path.read_text() == "a: 1\n" and [p.name for p in tmp_path.iterdir()] == ["milvus.yaml"]


def test_failed_rename_leaves_file_and_no_temp(tmp_path: Path) -> None:
    # A directory where the file should be: the rename fails, as on a read-only or full disk.
    path = tmp_path / "milvus.yaml"
    path.mkdir()
    (path / "keep").write_text("x")
    with pytest.raises(Refused, match="the file is unchanged"):
        write_atomic(path, "a: 2\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["milvus.yaml"]


def test_keep_original_with_sha256(tmp_path: Path) -> None:
    path = tmp_path / "milvus.yaml"
    path.write_bytes(b"a: 1\r\n")
    copy, digest = keep_original(path, tmp_path / "journal")
    assert copy.read_bytes() == b"a: 1\r\n" and digest == hashlib.sha256(b"a: 1\r\n").hexdigest()
    assert Path(f"{copy}.sha256").read_text() == f"{digest}  {copy.name}\n"
    assert keep_original(path, tmp_path / "journal") == (copy, digest)  # a resumed run reuses it
    path.write_bytes(b"a: 2\n")
    other, _ = keep_original(path, tmp_path / "journal")
    assert other != copy and copy.read_bytes() == b"a: 1\r\n"
