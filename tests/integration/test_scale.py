"""Issue 15 on a real Milvus: the write-downtime budget, and counts that hold for collections nobody loaded.

The judge is never the tool's report: clients' own ledgers (tests/support/ledger.py), the test's own
pymilvus client, and the process's own log.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import threading
import time

import pytest

from migrator.migration.journal import Journal
from migrator.milvus.client import MilvusAdapter
from migrator.sandbox.seed import SEED
from migrator.verbs import sandbox as lifecycle
from tests.support.cli import run_cli, run_tool
from tests.support.ledger import Clients
from tests.support.sandbox import Sandbox, quiet_env, use_gate

pytestmark = pytest.mark.milvus

EXPECTED = {f"{s.database}.{s.name}": s.expected_rows for s in SEED}


def mq_in_use(sandbox: Sandbox) -> tuple[str | None, str | None]:
    status = lifecycle.status(quiet_env(), sandbox.dir)
    return status.mq_config, status.mq_log


def counts(sandbox: Sandbox) -> dict[str, int]:
    with MilvusAdapter.connect(sandbox.uri, timeout=60) as milvus:
        return {c.key: c.rows for c in milvus.snapshot(deadline_s=180).collections if c.key in EXPECTED}


def test_rows_written_where_nothing_is_loaded_just_before_the_stop_are_counted(fresh_sandbox: Sandbox) -> None:
    """datacoord counts flushed segments only: rows in a growing segment of a collection nobody loaded
    are counted once the FlushAll has flushed them, or verify would see more than the snapshot."""
    with MilvusAdapter.connect(fresh_sandbox.uri, timeout=60) as milvus:
        client = milvus.client("default")
        client.insert("archive_unloaded", [{"id": 50_000 + i, "vector": [0.5] * 8, "title": "late", "price": 1.0}
                                           for i in range(300)])
    result = run_cli(["--output", "json", "apply", "--playbook", str(fresh_sandbox.playbook), "--yes"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert mq_in_use(fresh_sandbox) == ("natsmq", "natsmq")
    expected = {**EXPECTED, "default.archive_unloaded": EXPECTED["default.archive_unloaded"] + 300}
    assert counts(fresh_sandbox) == expected


def test_a_spent_budget_after_the_first_stop_rolls_back_with_clients_back(fresh_sandbox: Sandbox) -> None:
    """Milvus freezes (SIGSTOP) as the FlushAll behind the gate starts: the step fails when the
    write-downtime budget is spent, the rollback says its bound first and brings clients back on
    RocksMQ, and no write the clients saw acknowledged is lost."""
    use_gate(fresh_sandbox, "firewall")
    plan = run_cli(["--output", "json", "plan", "--playbook", str(fresh_sandbox.playbook)]).json()
    # A budget just above the estimate (with room for the ledger's collections), below the 30 s a
    # connect waits at most: the run starts, and only the freeze spends it.
    budget = math.ceil(plan["estimate"]["write_downtime_s"]) + 10
    with open(fresh_sandbox.playbook, "a", encoding="utf-8") as playbook:
        playbook.write(f"  write_downtime_budget_s: {budget}\n  rollback_budget_s: 400\n")
    pid = lifecycle.status(quiet_env(), fresh_sandbox.dir).pid
    frozen: list[int] = []
    thaw = threading.Timer(600, lambda: [os.kill(p, signal.SIGCONT) for p in frozen])  # never left frozen

    def freeze_at_flush(event: dict, process: subprocess.Popen) -> None:
        if event.get("event") == "step.start" and event.get("step") == "flush-all":
            running = lifecycle.status(quiet_env(), fresh_sandbox.dir).pid
            os.kill(running, signal.SIGSTOP)
            frozen.append(running)
            thaw.start()
        if event.get("event") == "rollback.start" and frozen:
            os.kill(frozen[-1], signal.SIGCONT)

    try:
        with Clients(fresh_sandbox.uri, f"http://127.0.0.1:{fresh_sandbox.ports['metrics']}", "budget") as load:
            started = time.monotonic()
            code, events = run_tool("apply", "--playbook", str(fresh_sandbox.playbook), "--yes",
                                    on_event=freeze_at_flush)
            took = time.monotonic() - started
            problems = load.judge()
    finally:
        thaw.cancel()
        for frozen_pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(frozen_pid, signal.SIGCONT)
    assert pid is not None and frozen, "Milvus was never frozen"
    assert code == 1, events[-3:]
    failed = next(e for e in events if e.get("event") == "step.failed")
    assert failed["step"] == "flush-all" and f"budget of {budget} s is spent" in failed["error"], failed
    start = next(e for e in events if e.get("event") == "rollback.start")
    assert start["bound_s"] == 400 and start["ends_by"]
    assert [e.get("event") for e in events].index("rollback.start") < \
        [e.get("step") for e in events].index("rollback-stop")  # said before its first step
    assert problems == []  # no acknowledged write lost
    assert mq_in_use(fresh_sandbox) == ("rocksmq", "rocksmq")
    journal = Journal.load(fresh_sandbox.dir / "migrate" / "journal.json")
    marks = journal.marks
    # The rollback began when the budget was spent, counted from the first stop.
    assert budget - 5 <= marks.rollback_started_at - marks.clients_off_at <= budget + 30
    assert took < budget + 400
    status = run_cli(["--output", "json", "status", "--playbook", str(fresh_sandbox.playbook)]).json()
    assert status["status"] == "rolled-back" and status["writes_denied"] is False
    assert status["write_downtime_s"] == pytest.approx(marks.clients_back_at - marks.clients_off_at, abs=0.1)
    assert counts(fresh_sandbox) == EXPECTED
