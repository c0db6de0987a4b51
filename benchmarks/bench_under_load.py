"""Write-downtime under a live load, beside an idle run of the same migration in the same invocation.

Two seeded sandboxes, each migrated RocksMQ -> NATS with `apply`: one idle, one while clients
write (gRPC inserts/upserts/deletes every 50 ms, HTTP inserts every 200 ms, a DDL every 2 s) and
search (a Strong search every 200 ms). Prints for each: the write-downtime as the tool reports it
and as the clients saw it (last acknowledged write before the gap, first after), the refused
writes by error, the searches answered and failed during the apply, and whether the clients'
ledgers found every acknowledged write. Goals (issue 9): under load <= 20 s, within 10% of idle.

    .venv/bin/python benchmarks/bench_under_load.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CLI = [sys.executable, "-m", "migrator"]

from tests.support.ledger import Clients, error_kind  # noqa: E402 - after the repo is on the path


class Searcher(threading.Thread):
    """A Strong search on a seeded collection every 200 ms; counts answers and failures."""

    def __init__(self, uri: str) -> None:
        super().__init__(daemon=True)
        self.uri = uri
        self.answered = 0
        self.failed: Counter = Counter()
        self._stopping = threading.Event()

    def run(self) -> None:
        from pymilvus import MilvusClient

        client = None
        while not self._stopping.is_set():
            try:
                client = client or MilvusClient(uri=self.uri, timeout=5, dedicated=True)
                client.search("articles", data=[[0.5] * 8], limit=3, consistency_level="Strong")
                self.answered += 1
            except Exception as error:  # noqa: BLE001 - tallied
                self.failed[error_kind(error)] += 1
                client = None
            self._stopping.wait(0.2)

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=30)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=REPO, capture_output=True, text=True)


def migrate(root: Path, *, load: bool) -> dict:
    sandbox = root / ("loaded" if load else "idle")
    try:
        for verb in ("up", "seed"):
            done = cli("sandbox", verb, "--dir", str(sandbox))
            if done.returncode != 0:
                raise SystemExit(f"sandbox {verb} failed: {done.stderr[-500:]}")
        ports = json.loads((sandbox / "sandbox.json").read_text())["ports"]
        uri, metrics = f"http://127.0.0.1:{ports['proxy']}", f"http://127.0.0.1:{ports['metrics']}"
        clients = Clients(uri, metrics, "bench") if load else None
        searcher = Searcher(uri) if load else None
        if clients is not None:
            clients.__enter__()
            searcher.start()
        started = time.time()
        done = cli("--output", "json", "apply", "--playbook", str(sandbox / "playbook.yaml"), "--yes")
        ended = time.time()
        result: dict = {"apply_s": round(ended - started, 1), "exit": done.returncode}
        report = json.loads(done.stdout) if done.stdout.strip() else {}
        result["tool_write_downtime_s"] = report.get("write_downtime_s")
        result["tool_client_view"] = report.get("clients")
        if clients is not None:
            time.sleep(3)
            searcher.stop()
            problems = clients.judge()
            before, after = clients.grpc.ledger.gap(started)
            result["clients_write_downtime_s"] = round(after - before, 1) if before and after else None
            result["refused"] = dict(clients.grpc.ledger.refused + clients.http.ledger.refused)
            result["searches"] = {"answered": searcher.answered, "failed": dict(searcher.failed)}
            result["ledger"] = "every acknowledged write found" if not problems else problems
        return result
    finally:
        cli("sandbox", "down", "--dir", str(sandbox), "--timeout", "3")


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-under-load-"))
    try:
        idle = migrate(root, load=False)
        loaded = migrate(root, load=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"idle": idle, "under_load": loaded}, indent=2, default=str))
    tool_idle, tool_load = idle["tool_write_downtime_s"], loaded["tool_write_downtime_s"]
    if tool_idle and tool_load:
        print(f"write-downtime idle {tool_idle:.1f} s, under load {tool_load:.1f} s (tool), "
              f"{loaded.get('clients_write_downtime_s')} s (clients): ratio {tool_load / tool_idle:.2f} "
              "[goals: under load <= 20 s, ratio <= 1.10]")


if __name__ == "__main__":
    main()
