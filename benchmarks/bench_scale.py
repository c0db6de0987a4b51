"""The growth curve: write-downtime and its parts at 5, 50 and 200 loaded collections and with one
collection of 1M rows, the plan's estimate beside each measured figure, on one sandbox in one run.

Each size adds to the same sandbox (benchmarks/scale_seed.py): loaded collections of 100 rows (a
tenth of them with 16 partitions) plus a tenth as many not loaded. Few rows per collection on
purpose: seeding 200 collections takes minutes already; the 1M-row collection (seeded once, after
the first size, and dropped after its run; its last 50k rows left unflushed) carries the cost of
rows. At each size: `plan` (its estimate), `apply` RocksMQ -> NATS and the way back (`rollback`),
each while a client writes through it (tests/support/ledger.py) and judged by that client's
ledger, never by the tool's report. Per-step seconds come from the journal.

Prints a table per run, the per-unit costs fitted over the sizes (the figures migration/costs.py
holds), and the goals of issue 15: write-downtime at 100 collections <= 30 s, growth <= 0.1 s per
collection, 1M rows adding <= 5 s, the estimate within 30% of the measurement at every size.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 5,50,200] [--big-rows 1000000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
CLI = [sys.executable, "-m", "migrator"]

import scale_seed  # noqa: E402 - after the paths

from tests.support.ledger import LedgerWriter, judge  # noqa: E402

# The parts of the write-downtime, by the steps that make them (migration/steps/pipeline.py).
PARTS = {
    "stops": ("stop", "stop-source", "stop-target"),
    "restarts": ("isolate", "source-start", "source-confirm", "source-expire-sessions", "source-healthy",
                 "rewrite-config", "move-target-aside", "start", "confirm", "expire-sessions", "healthy",
                 "open-config", "public-start", "public-confirm", "public-expire-sessions", "public-healthy"),
    "snapshot": ("snapshot",),
    "flush-all": ("flush-all",),
    "verify": ("verify",),
}


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*CLI, *args], cwd=REPO, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"milvus-migrate {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def parts_of(journal: dict) -> dict[str, float]:
    """Seconds per part of the write-downtime, from the journal's steps and marks."""
    steps, marks = journal["steps"], journal.get("marks", {})
    parts = {name: round(sum(float(steps[s]["seconds"] or 0) for s in ids if s in steps), 1)
             for name, ids in PARTS.items()}
    check = steps.get("check-writes")
    if check and "clients_back_at" in marks:
        parts["first write"] = round(marks["clients_back_at"] - _unix(check["started_at"]), 1)
    return parts


def migrate(sandbox: Path, label: str, *, back: bool) -> dict:
    """One apply (RocksMQ -> NATS) or the way back, while a client writes; its figures."""
    playbook = str(sandbox / "playbook.yaml")
    uri = f"http://127.0.0.1:{json.loads((sandbox / 'sandbox.json').read_text())['ports']['proxy']}"
    writer = LedgerWriter(uri, "scale_ledger", batch=5, interval_s=0.1)
    writer.create_collection()
    writer.start()
    time.sleep(2.0)
    plan_file = sandbox / "plan.json"
    if back:
        # `rollback` of a finished run migrates back with a plan made now; make the same plan to read it.
        cli("plan", "--playbook", playbook, "--to", "rocksmq", "--out", str(plan_file))
    else:
        # A port of its own: another program may have taken the sandbox's NATS port meanwhile.
        cli("plan", "--playbook", playbook, "--set", "natsmq.server.port=-1", "--out", str(plan_file))
    plan = json.loads(plan_file.read_text())
    started = time.monotonic()
    if back:
        done = cli("--output", "json", "rollback", "--playbook", playbook, "--yes", check=False)
    else:
        done = cli("--output", "json", "apply", str(plan_file), "--yes", check=False)
    seconds = time.monotonic() - started
    writer.stop()
    client_gap = longest_gap(writer.ledger, since=time.time() - seconds)
    verdict = judge(uri, writer)
    scale_seed.drop(uri, ["scale_ledger"])
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    journal = json.loads((sandbox / "migrate" / "journal.json").read_text())
    snapshot = plan["snapshot"]["collections"]
    result = {
        "label": label,
        "direction": f"{plan['source_mq']} -> {plan['target_mq']}",
        "exit": done.returncode,
        "error": report.get("error"),
        "collections": len(snapshot),
        "loaded": sum(1 for c in snapshot if c["loaded"]),
        "rows": sum(c["rows"] for c in snapshot),
        "segments": plan.get("facts", {}).get("scale", {}).get("loaded_segments"),
        "estimate_s": plan.get("estimate", {}).get("write_downtime_s"),
        "budget_s": plan.get("estimate", {}).get("write_downtime_budget_s"),
        "write_downtime_s": report.get("write_downtime_s"),
        # What the bench's own client saw: its last acknowledged write before the gap, its first after.
        "client_write_downtime_s": client_gap,
        "command_s": round(seconds, 1),
        "parts": parts_of(journal),
        "restart_to_all_loaded_strong_s": report.get("restart_to_all_loaded_strong_s"),
        "ledger": "every acknowledged write found" if verdict.ok else str(verdict),
        "acknowledged": verdict.acked,
        "steps": {step: entry.get("seconds") for step, entry in journal["steps"].items()},
    }
    print(_line(result), flush=True)
    return result


def longest_gap(ledger, since: float) -> float | None:  # noqa: ANN001 - tests.support.ledger.Ledger
    """The longest time between two acknowledged writes of the client from `since` on: its
    write-downtime, whether its writes failed meanwhile or hung until Milvus came back."""
    gap = ledger.longest_gap(since - 5, time.time())
    return round(gap.seconds, 1) if gap else None


def _line(result: dict) -> str:
    parts = ", ".join(f"{name} {value:.1f}" for name, value in result["parts"].items())
    estimate = "-" if result["estimate_s"] is None else f"{result['estimate_s']:.1f}"
    measured = "-" if result["write_downtime_s"] is None else f"{result['write_downtime_s']:.1f}"
    return (f"{result['label']:>16} {result['direction']:18} {result['collections']:4} coll {result['loaded']:4} loaded "
            f"{result['rows']:8} rows: write-downtime {measured:>6} s (estimate {estimate:>6} s, client "
            f"{result['client_write_downtime_s']} s) [{parts}] exit {result['exit']}; ledger: {result['ledger']}")


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(intercept, slope) of a least-squares line through (x, y) points."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0
    return mean_y - slope * mean_x, slope


def summary(results: list[dict]) -> None:
    sized = [r for r in results if not r["label"].startswith("+")]
    print("\nper-unit costs over the sizes (seconds = intercept + slope x loaded collections):")
    for direction in sorted({r["direction"] for r in sized}):
        runs = [r for r in sized if r["direction"] == direction and r["write_downtime_s"] is not None]
        if len(runs) < 2:
            continue
        for name in [*PARTS, "first write", "write-downtime"]:
            points = [(r["loaded"], r["write_downtime_s"] if name == "write-downtime" else r["parts"].get(name, 0.0))
                      for r in runs]
            intercept, slope = fit(points)
            print(f"  {direction:18} {name:15} {intercept:6.1f} s + {slope * 1000:7.1f} ms per loaded collection")
        if all(r["segments"] for r in runs):
            # A reload waits for every flushed segment of the loaded collections, each one slower than
            # the last (migration/costs.py): fitted against the square of their number.
            for name in ("snapshot", "verify"):
                intercept, slope = fit([(r["segments"] ** 2, r["parts"].get(name, 0.0)) for r in runs])
                print(f"  {direction:18} {name:15} {intercept:6.1f} s + {slope * 1e6:7.1f} us x segments^2 "
                      "(flushed segments of the loaded collections)")
        intercept, slope = fit([(r["loaded"], r["write_downtime_s"]) for r in runs])
        at_100 = intercept + slope * 100
        print(f"  {direction}: at 100 collections {at_100:.1f} s [goal <= 30 s], growth {slope:.3f} s per "
              f"collection [goal <= 0.1 s]")
    for big in (r for r in results if r["label"].startswith("+")):
        base = next((r for r in sized if r["direction"] == big["direction"] and r["loaded"] == big["loaded"] - 1), None)
        if base and big["write_downtime_s"] is not None and base["write_downtime_s"] is not None:
            print(f"  {big['direction']}: {big['label']} adds {big['write_downtime_s'] - base['write_downtime_s']:.1f} s "
                  "[goal <= 5 s]")
    print("\nthe plan's estimate beside the measurement [goal: within 30%]:")
    for r in results:
        if r["estimate_s"] and r["write_downtime_s"]:
            error = (r["estimate_s"] - r["write_downtime_s"]) / r["write_downtime_s"]
            print(f"  {r['label']:>16} {r['direction']:18} estimate {r['estimate_s']:6.1f} s, measured "
                  f"{r['write_downtime_s']:6.1f} s: {error:+.0%}{'' if abs(error) <= 0.3 else '  MISSED'}")
    lost = [r for r in results if r["ledger"] != "every acknowledged write found"]
    print(f"\nledgers: {len(results) - len(lost)} of {len(results)} runs lost no acknowledged write"
          + "".join(f"\n  {r['label']} {r['direction']}: {r['ledger']}" for r in lost))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5,50,200", help="loaded collections at each step, growing")
    parser.add_argument("--big-rows", type=int, default=1_000_000, help="rows of the big collection (0: none)")
    parser.add_argument("--json", type=Path, help="write every figure to this file too")
    parser.add_argument("--keep", type=Path, help="sandbox dir to use and keep (default: a temp dir, removed)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    sandbox = root / "sandbox"
    results: list[dict] = []
    try:
        cli("sandbox", "up", "--dir", str(sandbox))
        uri = f"http://127.0.0.1:{json.loads((sandbox / 'sandbox.json').read_text())['ports']['proxy']}"
        for number, size in enumerate(sizes):
            started = time.monotonic()
            scale_seed.grow(uri, scale_seed.Mix.for_size(size))
            print(f"seeded {size} loaded collections in {time.monotonic() - started:.0f} s", flush=True)
            results.append(migrate(sandbox, f"{size} loaded", back=False))
            results.append(migrate(sandbox, f"{size} loaded", back=True))
            if number == 0 and args.big_rows:
                seconds = scale_seed.add_big(uri, args.big_rows)
                print(f"seeded {scale_seed.BIG} ({args.big_rows} rows) in {seconds:.0f} s", flush=True)
                label = f"+{args.big_rows // 1000}k rows"
                results.append(migrate(sandbox, label, back=False))
                results.append(migrate(sandbox, label, back=True))
                scale_seed.drop(uri, [scale_seed.BIG])
    finally:
        cli("sandbox", "down", "--dir", str(sandbox), "--timeout", "3", check=False)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    summary(results)


if __name__ == "__main__":
    main()
