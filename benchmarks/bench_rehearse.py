"""Does a rehearsal measure what the real migration then does? On one sandbox seeded with N loaded
collections (benchmarks/scale_seed.py): `rehearse` (its writer's longest gap between acknowledged
writes on the copy), then the real `apply` on the sandbox itself while a client of the bench's own
writes (tests/support/ledger.py, judged by its ledger). Goal of issue 19: the rehearsal's measured
write-downtime within 20% of the real one.

    .venv/bin/python benchmarks/bench_rehearse.py [--collections 50]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import scale_seed  # noqa: E402 - after the paths
from bench_scale import cli, longest_gap  # noqa: E402 - the bench's own client's longest gap

from tests.support.ledger import LedgerWriter, judge  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collections", type=int, default=50, help="loaded collections of the seed")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="milvus-migrate-bench-rehearse-"))
    sandbox = root / "sandbox"
    try:
        cli("sandbox", "up", "--dir", str(sandbox))
        uri = f"http://127.0.0.1:{json.loads((sandbox / 'sandbox.json').read_text())['ports']['proxy']}"
        scale_seed.grow(uri, scale_seed.Mix.for_size(args.collections))
        playbook = str(sandbox / "playbook.yaml")

        started = time.monotonic()
        done = cli("--output", "json", "rehearse", "-p", playbook, check=False)
        rehearsal = json.loads(done.stdout) if done.stdout.strip() else {}
        rehearse_s = time.monotonic() - started
        measured = (rehearsal.get("measured") or {}).get("write_downtime_s")
        print(f"rehearse: exit {done.returncode}, {rehearse_s:.0f} s in all, copy "
              f"{(rehearsal.get('copy') or {}).get('seconds')} s; write-downtime measured {measured} s, "
              f"read-downtime {(rehearsal.get('measured') or {}).get('read_downtime_s')} s, estimate "
              f"{(rehearsal.get('estimate') or {}).get('write_downtime_s')} s", flush=True)

        writer = LedgerWriter(uri, "bench_rehearse_ledger", batch=1, interval_s=0.2)
        writer.create_collection()
        writer.start()
        time.sleep(2.0)
        started, since = time.monotonic(), time.time()
        applied = cli("--output", "json", "apply", "-p", playbook, "--yes", check=False)
        seconds, ended = time.monotonic() - started, time.time()
        until = time.monotonic() + 90  # the client reconnects on its own time: wait for its first write after
        while time.monotonic() < until and not any(o.ok and o.at > ended for o in list(writer.ledger.outcomes)):
            time.sleep(0.2)
        writer.stop()
        if writer.crashed is not None:
            raise SystemExit(f"the bench's writer crashed: {writer.crashed!r}")
        real = longest_gap(writer.ledger, since=since)
        verdict = judge(uri, writer)
        print(f"apply: exit {applied.returncode}, {seconds:.0f} s; write-downtime measured {real} s; "
              f"ledger: {'every acknowledged write found' if verdict.ok else verdict}", flush=True)
        if measured and real:
            print(f"rehearsal / real: {measured / real:.2f} (goal: within 0.80-1.20)")
    finally:
        if (sandbox / "sandbox.json").exists():
            cli("sandbox", "down", "--dir", str(sandbox), "--timeout", "3", check=False)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
