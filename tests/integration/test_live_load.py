"""Clients keep writing through every path that restarts Milvus; their own ledgers are the judge.

A gRPC writer (inserts, upserts, deletes), an HTTP writer (both of Milvus's HTTP APIs, which
ignore forceDeny on 2.3.5) and a DDL prober (create/drop collection) run from before the tool
starts to after it ends. At the end every acknowledged insert must be readable with Strong
consistency, every acknowledged delete must stay deleted, no acknowledged upsert may be undone,
every acknowledged create/drop must hold. The tool's own report is never the judge. Faults are
real: Milvus is SIGKILLed, the tool is SIGKILLed and SIGTERMed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from migrator.migration.journal import Journal
from migrator.milvus.client import MilvusAdapter
from migrator.sandbox.seed import SEED
from migrator.verbs import sandbox as lifecycle
from tests.support.cli import run_cli, run_tool
from tests.support.ledger import Clients
from tests.support.sandbox import Sandbox, a_user_write_is_visible, quiet_env, use_gate

pytestmark = pytest.mark.milvus

EXPECTED = {f"{s.database}.{s.name}": s.expected_rows for s in SEED}


def clients(sandbox: Sandbox, tag: str) -> Clients:
    return Clients(sandbox.uri, f"http://127.0.0.1:{sandbox.ports['metrics']}", tag)


def seed_counts(sandbox: Sandbox) -> dict[str, int]:
    with MilvusAdapter.connect(sandbox.uri, timeout=60) as milvus:
        return {c.key: c.rows for c in milvus.snapshot(deadline_s=180).collections if c.key in EXPECTED}


def mq_in_use(sandbox: Sandbox) -> tuple[str | None, str | None]:
    status = lifecycle.status(quiet_env(), sandbox.dir)
    return status.mq_config, status.mq_log


def report_of(events: list[dict]) -> dict:
    """The run's report, read from the file its `apply.end` names (not from the tool's output)."""
    ended = [event for event in events if event.get("event") == "apply.end"]
    assert ended and ended[-1].get("report_files"), events[-3:]
    return json.loads(Path(ended[-1]["report_files"][0]).read_text())


def started_steps(events: list[dict]) -> list[str]:
    return [event["step"] for event in events if event.get("event") == "step.start"]


@pytest.mark.parametrize("gate", ["firewall", "isolation"])
def test_round_trip_under_load_loses_no_acknowledged_write(fresh_sandbox: Sandbox, gate: str) -> None:
    use_gate(fresh_sandbox, gate)
    original_config = (fresh_sandbox.config_dir / "milvus.yaml").read_bytes()
    plan_file = fresh_sandbox.dir / "plan.json"
    # The tool runs in a process of its own, as it does for an operator: the clients are another
    # program (pymilvus's connection registry is per process).
    with clients(fresh_sandbox, "trip") as load:
        assert run_cli(["plan", "--playbook", str(fresh_sandbox.playbook), "--out", str(plan_file)]).exit_code == 0
        code, events = run_tool("apply", str(plan_file), "--yes")
        assert code == 0, events[-3:]
        on_nats = time.time()
        forward = report_of(events)
        assert mq_in_use(fresh_sandbox) == ("natsmq", "natsmq")
        # The cron check after a done run: every collection of the migration still there, a probe seen.
        checked = run_cli(["--output", "json", "verify", "--playbook", str(fresh_sandbox.playbook)])
        assert "unexpected error" not in checked.stderr, checked.stderr
        verified = checked.json()
        assert verified["collections_missing"] == [] and "a probe insert is visible to a Strong query" in verified["checks"]
        if gate == "firewall":  # the run recorded stored rows only: not compared with live ones
            assert any(check.startswith("rows not compared") for check in verified["checks"]), verified
        # Clients wrote to NATS (and the judge below finds those writes again on RocksMQ).
        load.wait_for_acknowledged(on_nats)
        assert mq_in_use(fresh_sandbox) == ("natsmq", "natsmq")
        leaving_nats = time.time()
        code, events = run_tool("rollback", "--playbook", str(fresh_sandbox.playbook), "--yes")
        assert code == 0, events[-3:]
        back = report_of(events)
        problems = load.judge()
    assert problems == []
    on_nats_acknowledged = load.acknowledged_by_writer(on_nats, leaving_nats)
    assert min(on_nats_acknowledged.values()) >= 3, f"writes acknowledged on NATS: {on_nats_acknowledged}"
    assert load.grpc.ledger.refused and load.http.ledger.refused, "the clients never met the restarts"
    assert mq_in_use(fresh_sandbox) == ("rocksmq", "rocksmq")
    assert seed_counts(fresh_sandbox) == EXPECTED
    assert a_user_write_is_visible(fresh_sandbox, 20_000_000)
    for report in (forward, back):
        assert report["status"] == "done" and report["write_downtime_s"] > 0
        seen = report["clients"]  # what the tool's own client saw, in the report
        assert seen["refused"] and seen["seconds_without_an_acknowledged_write"] > 0, seen
    # mq.type and what kept clients away (compaction held, or the port and HTTP switch) went there
    # and back on the same lines.
    assert (fresh_sandbox.config_dir / "milvus.yaml").read_bytes() == original_config


def test_a_failure_after_clients_reached_the_target_rolls_back_keeping_their_writes(fresh_sandbox: Sandbox) -> None:
    """Milvus is killed once clients write to NATS again: the rollback cuts them off again, flushes
    what NATS acknowledged, and only then returns to RocksMQ."""
    use_gate(fresh_sandbox, "firewall")
    opened: list[float] = []

    def kill_milvus_once_clients_wrote(event: dict, process: subprocess.Popen) -> None:
        if event.get("event") == "step.end" and event.get("step") == "open-gate":
            opened.append(time.time())
        if event.get("event") == "step.start" and event.get("step") == "check-writes" and opened:
            until = time.time() + 30
            while load.acknowledged_after(opened[0]) < 5 and time.time() < until:
                time.sleep(0.2)
            os.kill(lifecycle.status(quiet_env(), fresh_sandbox.dir).pid, signal.SIGKILL)

    with clients(fresh_sandbox, "fail") as load:
        code, events = run_tool("apply", "--playbook", str(fresh_sandbox.playbook), "--yes",
                                on_event=kill_milvus_once_clients_wrote)
        problems = load.judge()
    assert code == 1, events[-3:]
    assert opened and load.acknowledged_after(opened[0]) >= 5, "no write reached NATS before the fault"
    assert "rollback-flush-target" in started_steps(events)  # the target was secured before leaving it
    assert problems == []
    assert mq_in_use(fresh_sandbox) == ("rocksmq", "rocksmq")
    status = run_cli(["--output", "json", "status", "--playbook", str(fresh_sandbox.playbook)]).json()
    assert status["status"] == "rolled-back" and status["writes_denied"] is False
    assert seed_counts(fresh_sandbox) == EXPECTED
    assert a_user_write_is_visible(fresh_sandbox, 20_000_000)


def test_the_tool_killed_at_step_boundaries_resumes_and_loses_nothing(fresh_sandbox: Sandbox) -> None:
    """SIGKILL of the tool at several boundaries (one right after Milvus started on NATS), one SIGTERM,
    each followed by `apply --resume`; clients write throughout."""
    use_gate(fresh_sandbox, "firewall")
    journal_path = fresh_sandbox.dir / "migrate" / "journal.json"
    boundaries = [("close-gate", signal.SIGKILL), ("flush-all", signal.SIGTERM), ("stop", signal.SIGKILL),
                  ("start", signal.SIGKILL), ("verify", signal.SIGKILL), ("open-gate", signal.SIGKILL)]
    with clients(fresh_sandbox, "resume") as load:
        for number, (boundary, sig) in enumerate(boundaries):
            done_before = {step for step, entry in (Journal.load(journal_path).steps.items()
                                                   if journal_path.exists() else []) if entry.state == "done"}

            def stop_the_tool(event: dict, process: subprocess.Popen, boundary: str = boundary, sig: int = sig) -> None:
                if event.get("event") == "step.end" and event.get("step") == boundary:
                    process.send_signal(sig)

            args = ["apply", "--playbook", str(fresh_sandbox.playbook), "--yes"] + (["--resume"] if number else [])
            code, events = run_tool(*args, on_event=stop_the_tool)
            assert code == (130 if sig == signal.SIGTERM else -signal.SIGKILL), (boundary, events[-3:])
            assert not set(started_steps(events)) & done_before, "a resumed run re-ran a finished step"
            journal = Journal.load(journal_path)
            assert journal is not None and journal.is_done(boundary)
            if sig == signal.SIGTERM:
                assert journal.status == "interrupted"
        code, events = run_tool("apply", "--playbook", str(fresh_sandbox.playbook), "--yes", "--resume")
        on_nats = time.time()
        load.wait_for_acknowledged(on_nats)
        problems = load.judge()
    assert code == 0, events[-3:]
    on_nats_acknowledged = load.acknowledged_by_writer(on_nats)
    assert min(on_nats_acknowledged.values()) >= 3, f"writes acknowledged on NATS: {on_nats_acknowledged}"
    assert Journal.load(journal_path).status == "done"
    assert problems == []
    assert mq_in_use(fresh_sandbox) == ("natsmq", "natsmq")
    assert seed_counts(fresh_sandbox) == EXPECTED
    assert a_user_write_is_visible(fresh_sandbox, 20_000_000)
