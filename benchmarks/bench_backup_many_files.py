"""Backup of a RocksMQ directory holding very many small files: time and peak memory (issue 20).

    .venv/bin/python benchmarks/bench_backup_many_files.py --files 1000000 --dir /var/tmp/bench

Makes a small real RocksMQ, adds --files one-byte `NNNNNNN.blob` files beside its data, backs it
up (Milvus stopped: a copy of every file), and prints the wall time and the peak RSS of the
process (ru_maxrss) before and after the backup. The memory must not grow with --files: the
files are listed, copied and written into the manifest a batch at a time.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from migrator.rocksmq import create_backup  # noqa: E402
from tests.support.rocksmq import milvus_topics, write_rocksmq  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to work (default: a temp dir)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-backup-", dir=args.dir))
    try:
        rocksmq = work / "rdb_data"
        write_rocksmq(rocksmq, milvus_topics(2, [100] * 50))
        started = time.monotonic()
        for index in range(args.files):
            (rocksmq / f"{1_000_000 + index:07d}.blob").write_bytes(b"x")
        print(f"made {args.files} files in {time.monotonic() - started:.0f} s; peak RSS {peak_rss_mb():.0f} MB")
        started = time.monotonic()
        manifest = create_backup(rocksmq, work / "backup", milvus_running=False)
        print(f"backup of {manifest.file_count} files ({manifest.mode}): {time.monotonic() - started:.0f} s; "
              f"peak RSS {peak_rss_mb():.0f} MB; manifest {(work / 'backup' / 'manifest.json').stat().st_size / 1e6:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
