"""Benchmark the RocksMQ inspector and backup on a generated RocksMQ of a given size.

    .venv/bin/python benchmarks/bench_rocksmq.py              # 0.2 GB
    .venv/bin/python benchmarks/bench_rocksmq.py --size-gb 2  # the issue's figure

Prints: inspect fast and --deep; backup copy throughput as a ratio to `cp -a` of the same two
directories in the same run (best of --rounds each, warm page cache for both, an untimed `sync`
before every round). The backup copy is durable (sha256 of every file, all copies fsynced before the
manifest), `cp -a` alone is not: its ratio is printed both to `cp -a` WITHOUT a sync and to `cp -a`
followed by `sync` (the fair baseline for a durable backup). Then the hard-link snapshot (Milvus
stopped, `--hard-links`) in total and its linking part alone. With --strategies, the two ways to copy and hash are
timed on the same files: one read/hash/write pass (what the backup does) against copy_file_range
plus a hash pass over the copy served from the page cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from concurrent.futures import ThreadPoolExecutor  # noqa: E402

from migrator.rocksmq import create_backup, inspect  # noqa: E402
from migrator.rocksmq.backup import COPY_THREADS  # noqa: E402
from migrator.rocksmq.files import (  # noqa: E402
    CHUNK,
    copy_and_hash,
    fsync_files,
    hash_file,
    start_writeback,
)
from tests.support.rocksmq import write_rocksmq  # noqa: E402

# A Milvus-like mix per channel: many tiny messages (time ticks, deletes) and insert batches.
MIX = [120] * 40 + [2_000] * 10 + [80_000] * 6 + [600_000] * 2 + [2_000_000]


def generate(path: Path, size_bytes: int, channels: int = 16) -> None:
    per_cycle = sum(MIX)
    cycles = max(1, size_bytes // (per_cycle * channels))
    topics = {f"by-dev-rootcoord-dml_{i}": MIX * cycles for i in range(channels)}
    write_rocksmq(path, topics)


def timed(action):
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def best(rounds: int, action) -> float:
    times = []
    for _ in range(rounds):
        os.sync()  # untimed: no round pays for the dirty pages of the one before
        times.append(timed(action)[0])
    return min(times)


def copy_in_kernel_then_hash(source: Path, target: Path) -> tuple[int, str]:
    """The alternative to a single pass: copy_file_range, then hash the copy from the page cache.
    (cfr cannot feed a hash: the bytes never reach user space, so they are read a second time.)"""
    with open(source, "rb", buffering=0) as reader, open(target, "xb", buffering=0) as writer:
        size = os.fstat(reader.fileno()).st_size
        copied = 0
        while copied < size:
            step = os.copy_file_range(reader.fileno(), writer.fileno(), size - copied)
            if not step:
                break
            copied += step
        start_writeback(writer.fileno(), 0, copied)  # as the single pass does, for a fair fsync pass
    return hash_file(target)


def compare_strategies(work: Path, sources: list[Path], rounds: int) -> None:
    files = sorted((f for d in sources for f in d.iterdir() if f.is_file()), key=lambda f: -f.stat().st_size)
    total = sum(f.stat().st_size for f in files)
    for name, copy in (("single read/hash/write pass", copy_and_hash), ("copy_file_range + hash pass", copy_in_kernel_then_hash)):
        for durable in (False, True):
            def run():
                target = work / "strategy"
                for d in sources:
                    (target / d.name).mkdir(parents=True)
                with ThreadPoolExecutor(COPY_THREADS) as pool:
                    list(pool.map(lambda f: copy(f, target / f.parent.name / f.name)[:2], files))
                if durable:
                    fsync_files([target / f.parent.name / f.name for f in files], COPY_THREADS)
                shutil.rmtree(target)

            seconds = best(rounds, run)
            print(f"  {name:30s} {'+ fsync pass' if durable else 'no fsync    '}  {seconds:.2f} s ({total / seconds / 1024**2:.0f} MB/s)")


def dir_bytes(*directories: Path) -> int:
    return sum(f.stat().st_size for d in directories for f in d.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=0.2)
    parser.add_argument("--workdir", type=Path, default=None, help="Where to build it (default: a temp dir).")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--strategies", action="store_true", help="Also time copy_file_range + hash against one pass.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-rocksmq-", dir=args.workdir))
    try:
        data = work / "rdb_data"
        meta = work / "rdb_data_meta_kv"
        seconds, _ = timed(lambda: generate(data, int(args.size_gb * 1024**3)))
        size = dir_bytes(data, meta)
        print(f"generated {size / 1024**3:.2f} GB RocksMQ in {seconds:.1f} s at {work}")

        fast, stats = timed(lambda: inspect(data))
        print(f"inspect (fast):  {fast:.3f} s  topics={len(stats.topics)} messages~{stats.messages}")
        deep, stats = timed(lambda: inspect(data, deep=True))
        print(f"inspect --deep:  {deep:.3f} s  messages={stats.messages} ({size / deep / 1024**2:.0f} MB/s)")

        def cp_a():
            target = work / "cp"
            target.mkdir()
            subprocess.run(["cp", "-a", str(data), str(meta), str(target)], check=True)
            shutil.rmtree(target)

        def cp_a_sync():
            target = work / "cp"
            target.mkdir()
            subprocess.run(["cp", "-a", str(data), str(meta), str(target)], check=True)
            os.sync()
            shutil.rmtree(target)

        def backup(milvus_running: bool, hard_links: bool = False):
            def run():
                target = work / "backup"
                create_backup(data, target, milvus_running=milvus_running, hard_links=hard_links)
                shutil.rmtree(target)

            return run

        cp_time = best(args.rounds, cp_a)
        cp_sync_time = best(args.rounds, cp_a_sync)
        copy_time = best(args.rounds, backup(milvus_running=True))
        print(
            f"backup copy (sha256 of every file, all fsynced before the manifest, {COPY_THREADS} threads, "
            f"{CHUNK // 1024} KiB chunks): {copy_time:.2f} s ({size / copy_time / 1024**2:.0f} MB/s)"
        )
        print(f"  cp -a, NOT followed by a sync (data may still be in the page cache): {cp_time:.2f} s")
        print(f"  cp -a followed by sync (durable, the fair baseline):               {cp_sync_time:.2f} s")
        print(
            f"  throughput ratio to cp -a + sync: {cp_sync_time / copy_time:.2f}   "
            f"to cp -a without sync: {cp_time / copy_time:.2f}   (target >= 0.9)"
        )
        if args.strategies:
            print(f"copy strategies on the same files ({COPY_THREADS} threads):")
            compare_strategies(work, [data, meta], args.rounds)

        snapshot = best(args.rounds, backup(milvus_running=False, hard_links=True))

        def link_only():
            target = work / "links"
            for source in (data, meta):
                (target / source.name).mkdir(parents=True)
                for sst in source.glob("*.sst"):
                    os.link(sst, target / source.name / sst.name)
            shutil.rmtree(target)

        linking = best(args.rounds, link_only)
        print(f"hard-link snapshot: {snapshot:.2f} s in total (links {linking * 1000:.1f} ms; the rest hashes the SSTs for the manifest)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
