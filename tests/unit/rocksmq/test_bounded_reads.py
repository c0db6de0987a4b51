"""Issue 20, findings 5, 6 and 11: every file the tool reads is a regular file, read within bounds,
and whatever a directory holds cannot hang the tool, exhaust its memory or outlive a kill.

The tool runs in its own process here (`python -m migrator`) under a timeout, so a regression
shows as a failed test, not a hung suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from migrator.errors import BadInput
from migrator.rocksmq import create_backup, verify_backup
from tests.support.cli import run_cli
from tests.support.trees import nest, remove_tree

HANG_S = 20  # a command that takes this long on these inputs is hung



def tool(*args: str, timeout: float = HANG_S) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "migrator", *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`milvus-migrate {' '.join(args)}` hung for {timeout} s")


DEPTH = 600  # deeper than the recursion limit the walks run under here, shallow enough for shutil.rmtree


@pytest.fixture
def deep_tree():
    """Makes trees DEPTH directories deep, and removes them after the test without recursing
    (tests/support/trees.py): pytest removes old temp dirs with shutil.rmtree, shared by every
    session on the machine."""
    made: list[Path] = []

    def make(root: Path) -> Path:
        made.append(root / "d")
        return nest(root, DEPTH)

    yield make
    for top in made:
        if top.exists():
            remove_tree(top)


@contextmanager
def recursion_limit(limit: int):
    """A recursion limit below DEPTH: a walk that recurses once per level (os.walk before 3.12)
    fails under it, as it would on a tree deeper than Python's usual 1000."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def special(path: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        os.mknod(path, 0o600 | 0o020000, os.makedev(1, 5))  # a character device: /dev/zero's numbers
    else:
        os.symlink("/dev/zero", path)


# --- 5. env files ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "device", "link"])
def test_an_env_file_that_is_no_regular_file_is_refused_at_once(tmp_path, kind):
    (tmp_path / "milvus.yaml").write_text("mq:\n  type: rocksmq\n")
    env_file = tmp_path / "milvus.env"
    special(env_file, kind)
    result = tool("config", "show", "--config-dir", str(tmp_path), "--env-file", str(env_file))
    assert result.returncode == 2, result.stderr
    assert str(env_file) in result.stderr and "Traceback" not in result.stderr


def test_an_env_file_larger_than_its_cap_is_refused(tmp_path):
    (tmp_path / "milvus.yaml").write_text("mq:\n  type: rocksmq\n")
    env_file = tmp_path / "big.env"
    env_file.write_text("A=" + "x" * (2 * 1024 * 1024) + "\n")
    result = run_cli(["config", "show", "--config-dir", str(tmp_path), "--env-file", str(env_file)])
    assert result.exit_code == 2 and "more than" in result.stderr, result.stderr


def test_status_with_a_fifo_as_the_playbooks_env_file_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "env")
    (tmp_path / "pb.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        name: x
        milvus: {{uri: "http://127.0.0.1:1", metrics_url: "http://127.0.0.1:1"}}
        config: {{dir: {tmp_path}}}
        env_files: [{tmp_path / 'env'}]
        runtime: {{kind: command, stop: ["true"], start: ["true"], running: ["false"], logs: ["echo", "{{since}}"]}}
        migration: {{state_dir: {tmp_path / 'state'}}}
    """))
    (tmp_path / "milvus.yaml").write_text("mq:\n  type: rocksmq\n")
    result = tool("status", "-p", str(tmp_path / "pb.yaml"))
    assert result.returncode == 2 and "FIFO" in result.stderr, result.stderr


# --- 6. what a RocksMQ directory holds --------------------------------------------------------


@pytest.mark.parametrize("name", ["IDENTITY", "OPTIONS-000099", "000099.log", "CURRENT"])
@pytest.mark.parametrize("kind", ["fifo", "device", "link"])
def test_inspect_refuses_a_rocksdb_file_that_is_no_regular_file(rocksmq, name, kind):
    target = rocksmq / name
    if target.exists():
        target.unlink()
    special(target, kind)
    started = time.monotonic()
    if kind == "fifo":  # the one that hung: in a process of its own, under a timeout
        result = tool("inspect", "rocksmq", str(rocksmq))
        code, stderr = result.returncode, result.stderr
    else:
        result = run_cli(["inspect", "rocksmq", str(rocksmq)])
        code, stderr = result.exit_code, result.stderr
    assert code == 2, stderr
    assert name in stderr and "regular file" in stderr, stderr
    assert time.monotonic() - started < HANG_S


@pytest.mark.parametrize("name", ["IDENTITY", "000099.log"])
def test_backup_refuses_what_is_no_regular_file_and_leaves_no_backup(rocksmq, tmp_path, name):
    target = rocksmq / name
    target.unlink(missing_ok=True)
    os.mkfifo(target)
    with pytest.raises(BadInput, match="regular file"):
        create_backup(rocksmq, tmp_path / "backup", milvus_running=False)
    assert not (tmp_path / "backup").exists()


def test_a_nested_tree_in_rocksmq_path_is_refused_without_recursing(rocksmq, tmp_path, deep_tree):
    deep_tree(rocksmq)
    with recursion_limit(DEPTH // 2), pytest.raises(BadInput, match="subdirector"):
        create_backup(rocksmq, tmp_path / "backup", milvus_running=False)
    result = run_cli(["inspect", "rocksmq", str(rocksmq)])
    assert result.exit_code == 0, result.stderr  # RocksDB never looks into it: inspect is not bothered


def test_walks_are_iterative(tmp_path, deep_tree):
    from migrator.rocksmq.layout import directory_size
    from migrator.rocksmq.safety import mounts_below

    (tmp_path / "tree").mkdir()
    (deep_tree(tmp_path / "tree") / "f").write_bytes(b"1234")
    with recursion_limit(DEPTH // 2):
        with pytest.raises(RecursionError):  # the tree is deep enough to break a recursive walk
            list(os.walk(tmp_path / "tree"))
        assert directory_size(tmp_path / "tree") == 4
        assert mounts_below(tmp_path / "tree") == []


def test_a_view_left_by_a_killed_inspect_is_removed_by_the_next_one(rocksmq, tmp_path):
    import tempfile

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = Path(tempfile.gettempdir()) / f"milvus-migrate-view-{dead.stdout.strip()}-abcd1234"
    leftover.mkdir()
    os.symlink(rocksmq / "CURRENT", leftover / "CURRENT")
    result = run_cli(["inspect", "rocksmq", str(rocksmq)])
    assert result.exit_code == 0, result.stderr
    assert not leftover.exists()
    assert (rocksmq / "CURRENT").is_file()  # the link went, never what it pointed to


def test_sigkill_during_inspect_leaves_a_view_the_next_run_removes(rocksmq):
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("milvus-migrate-view-*"))
    process = subprocess.Popen([sys.executable, "-m", "migrator", "inspect", "rocksmq", str(rocksmq), "--deep"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline and not set(Path(tempfile.gettempdir()).glob("milvus-migrate-view-*")) - before:
        time.sleep(0.005)
    process.kill()
    process.wait()
    tool("inspect", "rocksmq", str(rocksmq))
    mine = set(Path(tempfile.gettempdir()).glob(f"milvus-migrate-view-{process.pid}-*"))
    assert not mine, mine


def test_a_read_stuck_in_rocksdb_still_answers_sigterm(rocksmq, tmp_path):
    """A file swapped for a FIFO after the tool checked it (a hostile writer): RocksDB blocks
    opening it and retries every interrupted call. The tool must still exit on SIGTERM (130)."""
    fifo = tmp_path / "swapped-in"
    os.mkfifo(fifo)
    # Top-level code of the script runs in the spawned reader too (as __mp_main__): the swap with it.
    script = tmp_path / "swap.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys
        import migrator.rocksmq.reader as reader
        original = reader._build_view
        def swapped(source, view):
            original(source, view)
            for name in os.listdir(view):
                if name.endswith(".sst"):
                    os.unlink(view / name)
                    os.symlink({str(fifo)!r}, view / name)
        reader._build_view = swapped
        if __name__ == "__main__":
            from migrator.cli import main
            sys.exit(main(["inspect", "rocksmq", {str(rocksmq)!r}, "--deep"]))
    """))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, cwd=Path(__file__).parents[3])
    time.sleep(4)
    assert process.poll() is None, process.stderr.read()  # blocked in RocksDB, as intended
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("deaf to SIGTERM while RocksDB blocks")
    assert code == 130, process.stderr.read()


# --- 11. a million small files: bounded memory -------------------------------------------------


def test_backup_memory_does_not_grow_with_the_number_of_files(rocksmq, tmp_path):
    """Peak Python memory of a backup hardly moves between 500 and 4500 more files: the files are
    listed, copied and written into the manifest a batch at a time, never held all at once (the
    entries of 4000 more files alone take over two megabytes; what is left is the copying threads'
    buffers meeting at a different moment). benchmarks/bench_backup_many_files.py measures a million."""
    import tracemalloc

    def peak_with(extra: int, name: str) -> int:
        for index in range(extra):
            (rocksmq / f"{1_000_000 + index:07d}.blob").write_bytes(b"x")
        tracemalloc.start()
        manifest = create_backup(rocksmq, tmp_path / name, milvus_running=False)
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert manifest.file_count > extra
        verify_backup(tmp_path / name)
        return peak

    small, large = peak_with(500, "small"), peak_with(4000, "large")  # 4500 then
    assert large - small < 1024 * 1024, f"peak {small / 1e6:.2f} MB with 500 files, {large / 1e6:.2f} MB with 4500"
