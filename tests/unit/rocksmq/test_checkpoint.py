"""A checkpoint of a RocksDB database another process keeps writing and flushing: a real writer
process (rocksdict), real files. The copy must be one moment of the source: every key the writer
had written before the copy started, and no hole after it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from migrator.errors import BadInput
from migrator.rocksmq.checkpoint import checkpoint_live
from migrator.rocksmq.reader import open_read_only

WRITER = textwrap.dedent("""
    import os, sys, time
    from rocksdict import Options, Rdict, WriteOptions
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(64 * 1024)   # small memtables: a flush every few hundred keys
    db = Rdict(sys.argv[1], options)
    number = 0
    while True:
        db[b"k%012d" % number] = b"v" * 200
        number += 1
        if number % 50 == 0:
            open(sys.argv[2] + ".tmp", "w").write(str(number))
            os.replace(sys.argv[2] + ".tmp", sys.argv[2])
        if number % 400 == 0:
            db.flush()
        time.sleep(0.0005)
""")


@pytest.fixture
def live_db(tmp_path: Path):
    source, progress = tmp_path / "source", tmp_path / "written"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(source), str(progress)])
    try:
        until = time.monotonic() + 30
        while not (progress.exists() and progress.read_text() and int(progress.read_text()) > 3000):
            assert time.monotonic() < until and process.poll() is None, "the writer did not get going"
            time.sleep(0.05)
        yield source, progress, process
    finally:
        process.kill()
        process.wait()


def keys_of(directory: Path) -> list[bytes]:
    with open_read_only(directory) as db:
        return list(db.keys())


def test_a_checkpoint_of_a_live_database_is_one_moment_of_it(live_db, tmp_path: Path) -> None:
    source, progress, _ = live_db
    written_before = int(progress.read_text())
    result = checkpoint_live(source, tmp_path / "copy")
    keys = keys_of(tmp_path / "copy")
    numbers = [int(key[1:]) for key in keys]
    assert numbers == list(range(len(numbers))), "the copy has a hole: not one moment of the source"
    assert len(numbers) >= written_before
    assert result.linked, "no SST was hard-linked"
    for linked in result.linked:  # shared with the source, not copied
        assert os.stat(tmp_path / "copy" / Path(linked.path).name).st_ino == linked.inode
    assert not (tmp_path / "copy" / "LOCK").exists()
    with open_read_only(tmp_path / "copy") as db:  # every SST left in the copy is one its MANIFEST lists
        listed = {entry["name"].lstrip("/") for entry in db.live_files()}
    assert {name for name in os.listdir(tmp_path / "copy") if name.endswith(".sst")} <= listed


def test_a_checkpoint_goes_to_a_new_directory(tmp_path: Path) -> None:
    (tmp_path / "copy").mkdir()
    with pytest.raises(BadInput, match="new directory"):
        checkpoint_live(tmp_path, tmp_path / "copy")
