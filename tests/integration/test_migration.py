"""plan/apply against a real Milvus 2.3.5: both directions, dry-run, kill -9 + resume, faults, refusals.

Faults are real: the tool is SIGKILLed, another process takes the NATS port. Nothing here
mocks Milvus.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from migrator.migration.journal import DeploymentLock, Journal
from migrator.milvus.client import MilvusAdapter
from migrator.sandbox.seed import SEED
from migrator.verbs import sandbox as lifecycle
from tests.support.cli import run_cli
from tests.support.sandbox import Sandbox, quiet_env

pytestmark = pytest.mark.milvus

EXPECTED = {f"{s.database}.{s.name}": s.expected_rows for s in SEED}
STEPS = ["preflight", "deny-writes", "flush-all", "snapshot", "stop", "rewrite-config", "start", "confirm-mq",
         "expire-dead-sessions", "healthy", "verify", "allow-writes"]


def counts(sandbox: Sandbox) -> dict[str, int]:
    with MilvusAdapter.connect(sandbox.uri) as milvus:
        return {c.key: c.rows for c in milvus.snapshot().collections}


def user_insert_works(sandbox: Sandbox) -> bool:
    """A write into a user collection goes through (the probe is the tool's own; this is the operator's)."""
    with MilvusAdapter.connect(sandbox.uri) as milvus:
        client = milvus.client("shop")
        client.insert("reviews", [{"id": 10_000_000, "vector": [0.1] * 8, "title": "after", "price": 1.0}])
        client.delete("reviews", filter="id == 10000000")
    return True


def mq_in_use(sandbox: Sandbox) -> tuple[str | None, str | None]:
    status = lifecycle.status(quiet_env(), sandbox.dir)
    return status.mq_config, status.mq_log


def apply_args(sandbox: Sandbox, *extra: str) -> list[str]:
    return ["apply", "--playbook", str(sandbox.playbook), "--yes", *extra]


def test_round_trip_rocksmq_nats_rocksmq_loses_nothing(fresh_sandbox: Sandbox) -> None:
    original_config = (fresh_sandbox.config_dir / "milvus.yaml").read_bytes()
    plan_file = fresh_sandbox.dir / "plan.json"
    planned = run_cli(["plan", "--playbook", str(fresh_sandbox.playbook), "--out", str(plan_file)])
    assert planned.exit_code == 0, planned.stderr

    forward = run_cli(["--output", "json", "apply", str(plan_file), "--yes"])
    assert forward.exit_code == 0, forward.stderr
    report = forward.json()
    assert report["status"] == "done"
    assert all(c["before"] == c["after"] for c in report["counts"]), report["counts"]
    assert mq_in_use(fresh_sandbox) == ("natsmq", "natsmq")
    assert counts(fresh_sandbox) == EXPECTED
    assert user_insert_works(fresh_sandbox)

    # `rollback` of a finished migration is the same engine the other way (apply --to rocksmq).
    back = run_cli(["--output", "json", "rollback", "--playbook", str(fresh_sandbox.playbook), "--yes"])
    assert back.exit_code == 0, back.stderr
    assert back.json()["status"] == "done"
    assert mq_in_use(fresh_sandbox) == ("rocksmq", "rocksmq")
    assert counts(fresh_sandbox) == EXPECTED
    assert user_insert_works(fresh_sandbox)
    # forceDeny and mq.type went there and back on the same lines: the file is byte-identical.
    assert (fresh_sandbox.config_dir / "milvus.yaml").read_bytes() == original_config

    verified = run_cli(["--output", "json", "verify", "--playbook", str(fresh_sandbox.playbook)])
    assert verified.exit_code == 0, verified.stderr
    assert verified.json()["ok"] is True


def test_dry_run_changes_nothing(milvus_sandbox: Sandbox) -> None:
    config_before = {p.name: p.read_bytes() for p in milvus_sandbox.config_dir.iterdir()}
    pid_before = lifecycle.status(quiet_env(), milvus_sandbox.dir).pid
    state_dir = milvus_sandbox.dir / "migrate"
    assert not state_dir.exists()

    result = run_cli(["--output", "json", *apply_args(milvus_sandbox, "--dry-run")])
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["dry_run"] is True
    summaries = {s["id"]: s["summary"] for s in report["steps"]}
    assert summaries["stop"].startswith("would ")
    assert summaries["rewrite-config"].startswith("would ")
    assert not summaries["snapshot"].startswith("would ")  # read-only steps run for real

    assert {p.name: p.read_bytes() for p in milvus_sandbox.config_dir.iterdir()} == config_before
    assert lifecycle.status(quiet_env(), milvus_sandbox.dir).pid == pid_before
    assert not state_dir.exists()  # no journal, no lock, no report
    assert user_insert_works(milvus_sandbox)
    assert counts(milvus_sandbox) == EXPECTED


def test_stale_plan_is_refused(milvus_sandbox: Sandbox, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    assert run_cli(["plan", "--playbook", str(milvus_sandbox.playbook), "--out", str(plan_file)]).exit_code == 0
    config = milvus_sandbox.config_dir / "milvus.yaml"
    original = config.read_bytes()
    try:
        config.write_bytes(original + b"# edited by hand after the plan\n")
        result = run_cli(["apply", str(plan_file), "--yes"])
    finally:
        config.write_bytes(original)
    assert result.exit_code == 3
    assert "stale" in result.stderr and str(config) in result.stderr
    assert not (milvus_sandbox.dir / "migrate" / "journal.json").exists()


def test_second_apply_is_refused_while_one_holds_the_lock(milvus_sandbox: Sandbox) -> None:
    lock = DeploymentLock(milvus_sandbox.dir / "migrate" / "lock")
    try:
        lock.acquire()
        result = run_cli(apply_args(milvus_sandbox))
        planned = run_cli(["plan", "--playbook", str(milvus_sandbox.playbook)])
    finally:
        lock.release()
        lock.path.unlink()
        lock.path.parent.rmdir()
    assert result.exit_code == 3
    assert f"pid {os.getpid()}" in result.stderr
    assert planned.exit_code == 3
    assert "another migration is running" in planned.stdout


def _apply_and_kill_after(sandbox: Sandbox, boundary: str | None, *, resume: bool,
                          sig: int = signal.SIGKILL) -> tuple[int, list[dict]]:
    """Run the real CLI; send `sig` once the journal has recorded `boundary` (None: run to the end)."""
    args = [sys.executable, "-m", "migrator", "--log-format", "json", "--log-file",
            str(sandbox.dir / "apply-log.jsonl"), "apply", "--playbook", str(sandbox.playbook), "--yes"]
    if resume:
        args.append("--resume")
    process = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    events = []
    assert process.stderr is not None
    for line in process.stderr:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        events.append(event)
        if boundary and event.get("event") == "step.end" and event.get("step") == boundary:
            process.send_signal(sig)
            boundary = None  # keep reading: a closed pipe would turn the exit into EPIPE's 1
    process.stderr.close()
    return process.wait(timeout=600), events


def test_kill_at_every_step_boundary_then_resume_ends_migrated(fresh_sandbox: Sandbox) -> None:
    journal_path = fresh_sandbox.dir / "migrate" / "journal.json"
    for number, boundary in enumerate(STEPS[:-1]):
        sig = signal.SIGTERM if boundary == "flush-all" else signal.SIGKILL
        code, _ = _apply_and_kill_after(fresh_sandbox, boundary, resume=number > 0, sig=sig)
        if sig == signal.SIGTERM:
            assert code in (0, 130)  # 130 when the signal lands inside the next step
        else:
            assert code == -signal.SIGKILL
        journal = Journal.load(journal_path)
        assert journal is not None and journal.is_done(boundary), boundary
        if boundary == "deny-writes":
            status = run_cli(["--output", "json", "status", "--playbook", str(fresh_sandbox.playbook)]).json()
            assert status["writes_denied"] is True
            assert status["lock_holder"] is None  # the kernel dropped the dead holder's lock

    code, events = _apply_and_kill_after(fresh_sandbox, None, resume=True)
    assert code == 0, events[-3:]
    journal = Journal.load(journal_path)
    assert journal is not None and journal.status == "done"
    assert all(journal.is_done(step) for step in STEPS)
    assert mq_in_use(fresh_sandbox) == ("natsmq", "natsmq")
    assert counts(fresh_sandbox) == EXPECTED
    assert user_insert_works(fresh_sandbox)


def test_nats_port_taken_makes_milvus_fail_and_apply_rolls_back(fresh_sandbox: Sandbox) -> None:
    plan_file = fresh_sandbox.dir / "plan.json"
    assert run_cli(["plan", "--playbook", str(fresh_sandbox.playbook), "--out", str(plan_file)]).exit_code == 0
    with socket.socket() as intruder:  # another process grabs the port after the plan was made
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        intruder.bind(("127.0.0.1", fresh_sandbox.ports["nats"]))
        intruder.listen()
        result = run_cli(["--output", "json", "apply", str(plan_file), "--yes"])
    assert result.exit_code == 1, result.stderr
    assert "address already in use" in result.stderr
    assert "rolled back to rocksmq" in result.stderr
    assert mq_in_use(fresh_sandbox) == ("rocksmq", "rocksmq")
    status = run_cli(["--output", "json", "status", "--playbook", str(fresh_sandbox.playbook)]).json()
    assert status["status"] == "rolled-back"
    assert status["writes_denied"] is False
    assert counts(fresh_sandbox) == EXPECTED
    assert user_insert_works(fresh_sandbox)


def test_log_line_never_seen_hits_the_deadline_and_rolls_back(fresh_sandbox: Sandbox, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Milvus really starts on NATS, but the log source the playbook names never shows the proof
    (a wrong path, a log shipper that lags): the confirm deadline passes and apply rolls back."""
    import migrator.runtime
    from migrator.milvus.logs import FileFollower

    silent = tmp_path / "a-log-milvus-never-writes.log"
    silent.write_text("")
    real_factory = migrator.runtime.runtime_for_playbook
    followed: list[str] = []

    class FirstLogSourceSilent:
        def __init__(self, inner) -> None:
            self._inner = inner

        def __getattr__(self, name: str):
            return getattr(self._inner, name)

        def log_follower(self, mark: dict):
            followed.append("silent" if not followed else "real")
            if followed[-1] == "silent":
                return FileFollower(silent, None)
            return self._inner.log_follower(mark)

    monkeypatch.setattr(migrator.runtime, "runtime_for_playbook",
                        lambda playbook, environ: FirstLogSourceSilent(real_factory(playbook, environ)))
    with open(fresh_sandbox.playbook, "a") as playbook:
        playbook.write("  deadlines:\n    confirm_s: 15\n")

    result = run_cli(apply_args(fresh_sandbox))
    assert result.exit_code == 1, result.stderr
    assert "no proof that Milvus runs on natsmq before the deadline" in result.stderr
    assert followed == ["silent", "real"]  # the rollback's own proof came from the real log
    assert mq_in_use(fresh_sandbox) == ("rocksmq", "rocksmq")
    assert counts(fresh_sandbox) == EXPECTED
    assert user_insert_works(fresh_sandbox)
