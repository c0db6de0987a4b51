"""Sandbox and CLI start-up figures: `sandbox up` (fresh binaries and cached), `seed`, `down`, and
`milvus-migrate --help` wall time as a ratio to `python -c "import typer"` (target <= 1.5).

    .venv/bin/python benchmarks/bench_sandbox.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "migrator"]


def wall(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=REPO, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def median_wall(argv: list[str], runs: int) -> float:
    wall(argv)  # warm the page cache and the .pyc files
    return statistics.median(wall(argv) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="runs of each start-up command (median)")
    args = parser.parse_args()

    typer_s = median_wall([sys.executable, "-c", "import typer"], args.runs)
    help_s = median_wall([*CLI, "--help"], args.runs)
    print(f"python -c 'import typer': {typer_s * 1000:.0f} ms (median of {args.runs})")
    print(f"milvus-migrate --help:    {help_s * 1000:.0f} ms, ratio {help_s / typer_s:.2f} (target <= 1.5)")

    root = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    env = {**os.environ, "MILVUS_MIGRATE_CACHE": str(root / "cache")}  # an empty cache: a fresh unpack
    try:
        for label, directory in (("fresh binaries", root / "one"), ("cached binaries", root / "two")):
            up = wall([*CLI, "sandbox", "up", "--dir", str(directory)], env)
            print(f"sandbox up ({label}): {up:.1f} s")
            if label == "fresh binaries":
                seed = wall([*CLI, "sandbox", "seed", "--dir", str(directory)], env)
                print(f"sandbox seed: {seed:.1f} s")
            down = wall([*CLI, "sandbox", "down", "--dir", str(directory)], env)
            print(f"sandbox down ({'after seed, loaded collections' if label == 'fresh binaries' else 'idle'}): "
                  f"{down:.1f} s")
    finally:
        for directory in (root / "one", root / "two"):
            subprocess.run([*CLI, "sandbox", "down", "--dir", str(directory)], cwd=REPO, capture_output=True, env=env)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
