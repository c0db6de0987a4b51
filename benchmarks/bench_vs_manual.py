"""The tool against the manual switch it replaces: RocksMQ -> NATS (or, with `--to rocksmq`, the
way back) on two identically seeded sandboxes, one after the other, at each size, judged by our
own clients only (issue 18).

Per size (default 5, 100 and 200 loaded collections, a tenth of them with 16 partitions, plus a
tenth as many not loaded: benchmarks/scale_seed.py; `--big` adds one collection of 1M rows):

1. The manual way, as the seed article does it, on sandbox A: FlushAll (waited for with the tool's
   adapter, which sends it again every 2 s: pymilvus's own wait did not end within 600 s at 100
   collections; it runs before the stop, so it is in neither side's write-downtime), stop Milvus (SIGTERM, SIGKILL after the playbook's `runtime.stop_timeout_s`), set
   `mq.type: natsmq` in configs/milvus.yaml by a plain text edit, start the same binary with the
   playbook's argv/env/cwd, wait for healthz.
2. The tool on sandbox B: `plan` (its estimate), then `milvus-migrate apply --playbook B --to
   natsmq --yes`, exactly as a user runs it: whatever the pipeline does inside is what is measured.
   `--runs N` repeats this side; between runs B goes back with `apply --to rocksmq` (not measured),
   or is seeded afresh when that fails.

`--to rocksmq` measures the way back, the one every NATS user must take before 2.6: both sandboxes
are seeded on RocksMQ and moved to NATS with `apply` (not measured) first. The manual side then
sets `mq.type: rocksmq` and, while Milvus is stopped, renames the RocksMQ store left from before
aside (milvus-facts, "The route off NATS": RocksMQ would replay an old store from its oldest
message); the tool side runs `apply --to rocksmq`, and goes to NATS again between runs.

Both sides are watched by the same clients of our own (never by the tool's report):
- a writer (tests/support/ledger.py) inserting 5 rows every 50 ms into a loaded collection of its
  own, from before the procedure until after it: write-downtime = the longest time between two
  acknowledged inserts; lost = acknowledged rows a Strong query does not find once Milvus serves
  again (the manual way is expected to lose some: it switches with unflushed, acknowledged writes
  on RocksMQ that NATS never sees);
- a reader: once Milvus stops answering, it searches every collection that was loaded before the
  procedure (the writer's included), each about every 200 ms, until each answered once;
  read-downtime = from the writer's last acknowledged insert before its longest gap to the time
  the last collection first answered. A round stops at the first search that finds Milvus
  unreachable, so an outage costs one search per round, not one per collection.

Both clients pass `grpc_options` (use_local_subchannel_pool, reconnect backoff 100 ms .. 1 s) to
MilvusClient; pymilvus 3.0.2 hands MilvusClient's extra kwargs through ConnectionConfig to its
GrpcHandler, which merges them into every channel it creates, reconnects included. Without them a
reconnecting channel shares gRPC's process-wide subchannel and its exponential backoff (up to
120 s), which adds many seconds after any outage: the figure would measure the client library,
not Milvus. The tool's own reported write-downtime is recorded beside ours, for comparison only.

Goals (issue 18), printed with PASS/FAIL: the tool's write-downtime <= 15 s below 100 loaded
collections and <= 20 s at 100 and above; growth <= 0.05 s per loaded collection (needs two
sizes); ratio tool/manual <= 1.25; the tool's read-downtime no worse than the manual way's;
0 acknowledged writes lost by the tool; apply exit 0 in every run. Every sandbox is brought down
at the end, also on a failure or Ctrl-C.

    .venv/bin/python benchmarks/bench_vs_manual.py [--sizes 5,100,200] [--runs N] [--big] [--to MQ] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import scale_seed  # noqa: E402 - after the paths
from bench_scale import cli, fit  # noqa: E402 - `cli` runs milvus-migrate in a subprocess

from tests.support.ledger import LedgerWriter, error_kind, judge  # noqa: E402

GRPC_OPTIONS = {
    "grpc.use_local_subchannel_pool": 1,
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 1000,
}
WRITER_COLLECTION = "bench_ledger"
BATCH = 5  # rows per insert
BIG_ROWS = 1_000_000

GOAL_WRITE_S = 15.0  # below 100 loaded collections
GOAL_WRITE_LARGE_S = 20.0  # at 100 and above
GOAL_GROWTH_S = 0.05  # per loaded collection
GOAL_RATIO = 1.25

# Error kinds (ledger.error_kind) that mean Milvus is not reachable at all: a round of searches stops there.
UNREACHABLE = {"connection refused", "unavailable", "timed out"}
# Kinds that mean it is gone again after a collection answered: the read watch starts over.
GONE = {"connection refused", "unavailable"}


def _json(text: str) -> dict:
    try:
        found = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def uri_of(sandbox: Path) -> str:
    return f"http://127.0.0.1:{json.loads((sandbox / 'sandbox.json').read_text())['ports']['proxy']}"


# -- sandboxes -------------------------------------------------------------------------------


def seeded_sandbox(sandbox: Path, size: int, big_rows: int, made: list[Path], *, on: str = "rocksmq") -> float:
    """`sandbox up` in a new dir, then the scale seed (and the big collection), then for `on`
    natsmq the tool's switch to NATS; the seconds it took."""
    started = time.monotonic()
    if sandbox.exists():  # a left-over of an earlier run (--dir) or the run before a reseed
        sandbox_down(sandbox)
        shutil.rmtree(sandbox)
    made.append(sandbox)
    cli("sandbox", "up", "--dir", str(sandbox))
    uri = uri_of(sandbox)
    scale_seed.grow(uri, scale_seed.Mix.for_size(size))
    if big_rows:
        scale_seed.add_big(uri, big_rows)
    if on == "natsmq":
        cli("apply", "--playbook", str(sandbox / "playbook.yaml"), "--to", "natsmq", "--yes")
    return time.monotonic() - started


def sandbox_down(sandbox: Path) -> None:
    if (sandbox / "sandbox.json").exists():
        cli("sandbox", "down", "--dir", str(sandbox), "--timeout", "3", check=False)


def logged_mq(sandbox: Path) -> str | None:
    """The mqType of the last `try to init mq` line Milvus wrote (2.3.5: stdout only)."""
    try:
        text = (sandbox / "logs" / "stdout.log").read_text(errors="replace")
    except OSError:
        return None
    found = re.findall(r"try to init mq.*?mqType=(\w+)", text)
    return found[-1] if found else None


def set_mq_type(milvus_yaml: Path, mq: str) -> None:
    """The operator's edit: the `type:` line of the top-level `mq:` block, nothing else."""
    lines = milvus_yaml.read_text().splitlines(keepends=True)
    start = next((n for n, line in enumerate(lines) if re.match(r"mq:\s*(#.*)?$", line)), None)
    if start is None:
        raise RuntimeError(f"{milvus_yaml}: no top-level `mq:` block")
    child = None
    for number in range(start + 1, len(lines)):
        line = lines[number]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            break
        indent = len(line) - len(line.lstrip())
        child = indent if child is None else child
        match = re.match(r"(\s*type:\s*)([^\s#]+)(.*)$", line, re.DOTALL)
        if indent == child and match:
            lines[number] = f"{match.group(1)}{mq}{match.group(3)}"
            milvus_yaml.write_text("".join(lines))
            return
    raise RuntimeError(f"{milvus_yaml}: no `type:` under `mq:`")


# -- our own clients -------------------------------------------------------------------------


def loaded_collections(uri: str) -> dict[str, int]:
    """name -> vector dim of every collection loaded right now (default database)."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=uri, timeout=60, dedicated=True)
    try:
        found = {}
        for name in sorted(client.list_collections()):
            if "Loaded" not in str(client.get_load_state(name).get("state")):
                continue
            fields = client.describe_collection(name)["fields"]
            found[name] = next(int(f["params"]["dim"]) for f in fields if f["type"] == DataType.FLOAT_VECTOR)
        return found
    finally:
        client.close()


class ReadWatch(threading.Thread):
    """Searches one collection every `poll_s` until Milvus stops answering; from then on every
    collection, each once a round, until each answered once (`answered`: name -> time.time()).
    A collection that answered and then finds Milvus gone again starts the watch over; one that
    no longer exists (the tool's own probe collections come and go) leaves the watch."""

    def __init__(self, uri: str, collections: dict[str, int], *, poll_s: float = 0.2, timeout_s: float = 2.0) -> None:
        super().__init__(name="read-watch", daemon=True)
        self.uri, self.collections, self.poll_s, self.timeout_s = uri, collections, poll_s, timeout_s
        self.down_at: float | None = None
        self.answered: dict[str, float] = {}
        self.dropped: list[str] = []
        self.outages = 0
        self.crashed: BaseException | None = None
        self._stopping = threading.Event()

    @property
    def pending(self) -> list[str]:
        return [name for name in self.collections if name not in self.answered]

    def settled(self) -> bool:
        return self.down_at is not None and not self.pending

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=30)

    def _search(self, client: Any, name: str) -> str | None:
        """None when answered, else the kind of failure."""
        try:
            client.search(name, data=[[0.5] * self.collections[name]], limit=1, timeout=self.timeout_s)
        except Exception as error:  # noqa: BLE001 - every failure is a kind, none is fatal
            return error_kind(error)
        return None

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as error:  # noqa: BLE001 - surfaced through `crashed`
            self.crashed = error

    def _loop(self) -> None:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=self.uri, timeout=self.timeout_s, dedicated=True, grpc_options=GRPC_OPTIONS)
        sentinel = next(iter(self.collections))
        while not self._stopping.is_set():
            if self.down_at is None:
                if self._search(client, sentinel) is not None:
                    self.down_at, self.outages = time.time(), 1
            else:
                if self.answered and self._search(client, next(iter(self.answered))) in GONE:
                    self.answered, self.outages = {}, self.outages + 1
                for name in self.pending:
                    kind = self._search(client, name)
                    if kind is None:
                        self.answered[name] = time.time()
                    elif kind == "collection not found":
                        self.dropped.append(name)
                        del self.collections[name]
                    elif kind in UNREACHABLE:
                        break
            self._stopping.wait(self.poll_s)
        client.close()


class Watch:
    """The writer and the reader on one sandbox, around one procedure."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.writer = LedgerWriter(uri, WRITER_COLLECTION, batch=BATCH, interval_s=0.05, delete_every=0,
                                   upsert_every=0, client_options={"grpc_options": GRPC_OPTIONS})
        self.writer.create_collection()
        self.reader = ReadWatch(uri, loaded_collections(uri))
        self.t0 = 0.0

    def start(self) -> float:
        """Both clients running, some writes acknowledged: the moment the procedure may start."""
        self.writer.start()
        self.reader.start()
        time.sleep(3.0)
        self.t0 = time.time()
        return self.t0

    def _writes_back(self, after: float) -> bool:
        return any(o.ok and o.at > after for o in list(self.writer.ledger.outcomes))

    def _when_lost(self, calls: list[int], gap: Any) -> dict[str, Any]:
        """When the lost inserts were acknowledged: before writes were cut off, or after they came
        back (the writer only inserts, so its k-th outcome is the insert of ids k*BATCH on)."""
        at = [self.writer.ledger.outcomes[k].at for k in calls]
        found: dict[str, Any] = {"lost_inserts": len(calls)}
        if gap is not None and at:
            found["lost_inserts_before_cut"] = sum(1 for moment in at if moment <= gap.before)
            found["lost_inserts_after_back"] = sum(1 for moment in at if moment >= gap.after)
            found["lost_acknowledged_s"] = [round(min(at) - self.t0, 1), round(max(at) - self.t0, 1)]
        return found

    def finish(self, ended: float, settle_s: float) -> dict[str, Any]:
        """Wait (up to `settle_s`) until a write is acknowledged after `ended` and every loaded
        collection answered a search; stop both clients, judge the ledger."""
        until = time.monotonic() + settle_s
        while time.monotonic() < until and not (self._writes_back(ended) and self.reader.settled()):
            time.sleep(0.5)
        time.sleep(1.0)
        stopped = time.time()
        self.writer.stop()
        self.reader.stop()
        ledger = self.writer.ledger
        gap = ledger.longest_gap(self.t0 - 1.0, stopped)
        figures: dict[str, Any] = {
            "write_downtime_s": round(gap.seconds, 1) if gap else None,
            "writes_came_back": bool(gap and not gap.open),
            "writes_cut_at_s": round(gap.before - self.t0, 1) if gap else None,
            "writes_back_at_s": round(gap.after - self.t0, 1) if gap and not gap.open else None,
            "refused": dict(ledger.refused),
            "loaded_watched": len(self.reader.collections),
        }
        reader = self.reader
        if reader.down_at is None:
            figures["read_downtime_s"], figures["reads"] = None, "never saw Milvus stop answering"
        elif reader.pending:
            figures["read_downtime_s"] = None
            figures["reads"] = (f"{len(reader.pending)} of {len(reader.collections)} loaded collections did not "
                                f"answer within {settle_s:.0f} s, e.g. {reader.pending[:3]}")
        else:
            cut = gap.before if gap else reader.down_at
            figures["read_downtime_s"] = round(max(reader.answered.values()) - cut, 1)
            figures["reads"] = (f"all {len(reader.collections)} answered; outages seen {reader.outages}"
                                + (f"; dropped meanwhile {reader.dropped}" if reader.dropped else ""))
        if reader.crashed or self.writer.crashed:
            figures["crashed"] = repr(reader.crashed or self.writer.crashed)
        try:
            verdict = judge(self.uri, self.writer, deadline_s=300)
        except Exception as error:  # noqa: BLE001 - reported, the bench goes on
            figures["lost"], figures["judge_error"] = None, str(error)[:300]
        else:
            figures["lost"] = len(verdict.lost_inserts)
            figures.update(self._when_lost(sorted({i // BATCH for i in verdict.lost_inserts}), gap))
        figures["acknowledged_rows"] = len(ledger.acked_inserts)
        figures["acknowledged_inserts"] = sum(1 for o in ledger.outcomes if o.ok)
        return figures


# -- the two procedures ----------------------------------------------------------------------


def move_rocksmq_aside(sandbox: Path) -> list[str]:
    """The manual way back's clean-up, while Milvus is stopped: the sandbox's rocksmq.path and its
    _meta_kv renamed aside (kept), so RocksMQ starts on an empty store. What was moved."""
    from migrator.sandbox.layout import SandboxLayout

    store = SandboxLayout(sandbox).rocksmq_path
    moved = []
    for path in (store, store.with_name(store.name + "_meta_kv")):
        if path.exists():
            path.rename(path.with_name(path.name + ".before-manual"))
            moved.append(path.name)
    return moved


def manual(sandbox: Path, settle_s: float, to: str) -> dict[str, Any]:
    """The seed article's switch, by hand: FlushAll, stop, edit mq.type (to RocksMQ: the old store
    renamed aside too), start, healthz."""
    from migrator.milvus.client import MilvusAdapter
    from migrator.playbook import load_playbook
    from migrator.runtime import runtime_for_playbook

    spec = load_playbook(sandbox / "playbook.yaml").spec
    runtime = runtime_for_playbook(spec, os.environ)
    watch = Watch(spec.milvus.uri)
    t0 = watch.start()
    steps: dict[str, Any] = {}
    result: dict[str, Any] = {"steps": steps}
    try:
        # pymilvus's own flush_all waits for GetFlushAllState, which at 100 collections did not hold
        # within 600 s (a channel with nothing to flush waits for its periodic checkpoint update):
        # the manual side gets the tool's FlushAll, which sends it again every 2 s. It runs before
        # the stop, while clients still write: not in the manual way's write-downtime either way.
        with MilvusAdapter.connect(spec.milvus.uri, timeout=60) as milvus:
            steps["flush_all_s"] = round(milvus.flush_all(deadline_s=600).seconds, 1)
        steps["flushed_at_s"] = round(time.time() - t0, 1)
        stopped = runtime.stop(spec.runtime.stop_timeout_s)
        steps["stopped_at_s"] = round(time.time() - t0, 1)
        steps["stop"] = "graceful" if stopped.graceful else f"SIGKILL after {spec.runtime.stop_timeout_s:g} s"
        set_mq_type(spec.config.dir / "milvus.yaml", to)
        if to == "rocksmq":
            steps["moved_aside"] = move_rocksmq_aside(sandbox)
        runtime.start()
        steps["started_at_s"] = round(time.time() - t0, 1)
        runtime.wait_healthy(spec.runtime.start_timeout_s)
        steps["healthy_at_s"] = round(time.time() - t0, 1)
    except Exception as error:  # noqa: BLE001 - reported; the clients still say what they saw
        result["error"] = str(error)[:500]
    ended = time.time()
    result.update(watch.finish(ended, settle_s))
    result["mq_after"] = logged_mq(sandbox)
    return result


def tool(sandbox: Path, settle_s: float, run: int, to: str) -> dict[str, Any]:
    """`plan` for its estimate, then `apply` as a user runs it, watched by our clients."""
    playbook = str(sandbox / "playbook.yaml")
    watch = Watch(uri_of(sandbox))  # the writer's collection exists (loaded) before the plan counts
    plan_file = sandbox / f"plan-{run}.json"
    planned = cli("plan", "--playbook", playbook, "--to", to, "--out", str(plan_file), "--output", "json",
                  check=False)
    plan = _json(plan_file.read_text()) if plan_file.exists() else {}
    result: dict[str, Any] = {"run": run, "plan_exit": planned.returncode, "estimate": plan.get("estimate", {})}
    t0 = watch.start()
    applied = cli("apply", "--playbook", playbook, "--to", to, "--yes", "--output", "json", check=False)
    ended = time.time()
    report = _json(applied.stdout)
    failure = report.get("error") or (applied.stderr.strip().splitlines() or [""])[-1][:500]
    result.update({
        "exit": applied.returncode,
        "apply_s": round(ended - t0, 1),
        "error": failure if applied.returncode else None,
        "tool_write_downtime_s": report.get("write_downtime_s"),
        "tool_read_downtime_s": report.get("read_downtime_s"),
    })
    result.update(watch.finish(ended, settle_s))
    result["mq_after"] = logged_mq(sandbox)
    scale_seed.drop(uri_of(sandbox), [WRITER_COLLECTION])
    return result


# -- the report ------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _lost(figures: dict) -> str:
    if figures.get("lost") is None:
        return f"? ({figures.get('judge_error', 'not judged')})"
    text = (f"{figures['lost']} of {figures['acknowledged_rows']} rows "
            f"({figures['lost_inserts']} of {figures['acknowledged_inserts']} inserts")
    if figures.get("lost_acknowledged_s"):
        first, last = figures["lost_acknowledged_s"]
        text += (f": {figures['lost_inserts_before_cut']} acknowledged before writes were cut, "
                 f"{figures['lost_inserts_after_back']} after they came back; acknowledged {first}..{last} s")
    return text + ")"


def ratio(run: dict, manual_side: dict) -> float | None:
    if run.get("write_downtime_s") is None or not manual_side.get("write_downtime_s"):
        return None
    return round(run["write_downtime_s"] / manual_side["write_downtime_s"], 2)


def print_size(entry: dict) -> None:
    m = entry["manual"]
    print(f"\n== {entry.get('direction', '')}: {entry['size']} loaded collections ({entry['loaded']} loaded with the writer's"
          f"{' and the big one' if entry['big_rows'] else ''}); seeded in {entry['seed_s']:.0f} s each")
    print(f"  manual  write-downtime {_s(m.get('write_downtime_s'))}, read-downtime {_s(m.get('read_downtime_s'))}, "
          f"lost {_lost(m)}; {m.get('reads')}; Milvus logged mqType={m.get('mq_after')}")
    print(f"          steps (s from the start): {m.get('steps')}; writes cut at {m.get('writes_cut_at_s')} s, "
          f"back at {m.get('writes_back_at_s')} s; refused {m.get('refused')}"
          + (f"; ERROR {m['error']}" if m.get("error") else ""))
    for run in entry["tool"]:
        estimate = run.get("estimate") or {}
        print(f"  tool #{run['run']} write-downtime {_s(run.get('write_downtime_s'))} (the tool reports "
              f"{_s(run.get('tool_write_downtime_s'))}), ratio tool/manual {ratio(run, m)}, read-downtime "
              f"{_s(run.get('read_downtime_s'))}, lost {_lost(run)}, apply exit {run.get('exit')} in {run.get('apply_s')} s; "
              f"plan (exit {run.get('plan_exit')}) estimates write {_s(estimate.get('write_downtime_s'))}, "
              f"read {_s(estimate.get('read_downtime_s'))}")
        print(f"          writes cut at {run.get('writes_cut_at_s')} s, back at {run.get('writes_back_at_s')} s; "
              f"{run.get('reads')}; refused {run.get('refused')}; Milvus logged mqType={run.get('mq_after')}"
              + (f"; ERROR {run['error']}" if run.get("error") else ""))


def goals(results: list[dict]) -> list[tuple[str, bool | None]]:
    """(what, passed) of every goal of issue 18; None: not measurable in this invocation."""
    found: list[tuple[str, bool | None]] = []
    for entry in results:
        size, runs, m = entry["size"], entry["tool"], entry["manual"]
        if not runs:
            found.append((f"{size}: no tool run finished", False))
            continue
        limit = GOAL_WRITE_S if size < 100 else GOAL_WRITE_LARGE_S
        writes = [r.get("write_downtime_s") for r in runs]
        worst = None if None in writes or not all(r.get("writes_came_back") for r in runs) else max(writes)
        found.append((f"{size}: tool write-downtime <= {limit:.0f} s (worst of {len(runs)}: {_s(worst)})",
                      worst is not None and worst <= limit))
        ratios = [ratio(r, m) for r in runs]
        worst_ratio = None if None in ratios else max(ratios)
        found.append((f"{size}: ratio tool/manual <= {GOAL_RATIO} (worst: {worst_ratio})",
                      worst_ratio is not None and worst_ratio <= GOAL_RATIO))
        reads = [r.get("read_downtime_s") for r in runs]
        worst_read = None if None in reads else max(reads)
        manual_read = m.get("read_downtime_s")
        found.append((f"{size}: tool read-downtime no worse than manual (worst {_s(worst_read)} vs {_s(manual_read)})",
                      worst_read is not None and manual_read is not None and worst_read <= manual_read))
        lost = [r.get("lost") for r in runs]
        found.append((f"{size}: 0 acknowledged writes lost by the tool ({lost})", all(n == 0 for n in lost)))
        exits = [r.get("exit") for r in runs]
        found.append((f"{size}: apply exit 0 ({exits.count(0)} of {len(exits)})", all(e == 0 for e in exits)))
    points = [(e["size"], sum(r["write_downtime_s"] for r in e["tool"]) / len(e["tool"])) for e in results
              if e["tool"] and all(r.get("write_downtime_s") is not None for r in e["tool"])]
    if len({x for x, _ in points}) >= 2:
        _, slope = fit(points)
        found.append((f"growth <= {GOAL_GROWTH_S} s per loaded collection ({slope:.3f} s)", slope <= GOAL_GROWTH_S))
    else:
        found.append((f"growth <= {GOAL_GROWTH_S} s per loaded collection (needs two sizes)", None))
    return found


def print_goals(results: list[dict]) -> None:
    print("\ngoals (issue 18):")
    for what, passed in goals(results):
        print(f"  [{'n/a' if passed is None else 'PASS' if passed else 'FAIL'}] {what}")


# -- main ------------------------------------------------------------------------------------


def measure_size(root: Path, size: int, args: argparse.Namespace, made: list[Path], entry: dict) -> None:
    """Fills `entry` as it goes, so that a failure or Ctrl-C keeps what was measured."""
    big_rows = BIG_ROWS if args.big else 0
    entry.update({"size": size, "big_rows": big_rows, "loaded": size + 1 + (1 if big_rows else 0), "tool": []})
    manual_dir, tool_dir = root / f"manual-{size}", root / f"tool-{size}"
    source = "natsmq" if args.to == "rocksmq" else "rocksmq"
    entry["direction"] = f"{source} -> {args.to}"
    try:
        entry["seed_s"] = round(seeded_sandbox(manual_dir, size, big_rows, made, on=source), 1)
        print(f"[{size}] sandbox A seeded on {source}; the manual switch ...", flush=True)
        entry["manual"] = manual(manual_dir, args.settle, args.to)
    finally:
        sandbox_down(manual_dir)
    try:
        seed_b = seeded_sandbox(tool_dir, size, big_rows, made, on=source)
        entry["seed_s"] = round(max(entry["seed_s"], seed_b), 1)
        for run in range(1, args.runs + 1):
            print(f"[{size}] sandbox B: apply, run {run} of {args.runs} ...", flush=True)
            entry["tool"].append(tool(tool_dir, args.settle, run, args.to))
            if run == args.runs:
                break
            back = cli("apply", "--playbook", str(tool_dir / "playbook.yaml"), "--to", source, "--yes", check=False)
            if back.returncode != 0:
                print(f"[{size}] migrating B back failed (exit {back.returncode}): seeding it afresh", flush=True)
                sandbox_down(tool_dir)
                seeded_sandbox(tool_dir, size, big_rows, made, on=source)
    finally:
        sandbox_down(tool_dir)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM takes the same way out as Ctrl-C: every sandbox down


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5,100,200", help="loaded collections per size, comma-separated")
    parser.add_argument("--runs", type=int, default=1, help="runs of the tool side per size")
    parser.add_argument("--big", action="store_true", help=f"add one loaded collection of {BIG_ROWS} rows")
    parser.add_argument("--settle", type=float, default=900.0,
                        help="seconds to wait after a procedure for writes and every loaded collection to come back")
    parser.add_argument("--to", choices=("natsmq", "rocksmq"), default="natsmq",
                        help="the MQ to switch to (rocksmq: both sandboxes are moved to NATS first)")
    parser.add_argument("--json", type=Path, help="write every figure to this file too")
    parser.add_argument("--dir", type=Path, help="where the sandboxes go (default: a temporary dir, removed)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.runs < 1 or any(size < 1 for size in sizes):
        parser.error("--runs and every size must be at least 1")
    signal.signal(signal.SIGTERM, _interrupted)
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-vs-manual-"))
    made: list[Path] = []
    results: list[dict] = []
    try:
        for size in sizes:
            entry: dict[str, Any] = {}
            results.append(entry)
            measure_size(root, size, args, made, entry)
            print_size(entry)
    finally:
        for sandbox in made:
            sandbox_down(sandbox)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print_goals(results)


if __name__ == "__main__":
    main()
