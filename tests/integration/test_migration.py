"""plan/apply against a real Milvus 2.3.5: dry-run, refusals, and faults that make apply roll back.

Faults are real: another process takes the NATS port, the log the playbook names stays silent.
Nothing here mocks Milvus. The runs under a live write load are in test_live_load.py.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from migrator.migration.journal import DeploymentLock
from migrator.milvus.client import MilvusAdapter
from migrator.sandbox.seed import SEED
from migrator.verbs import sandbox as lifecycle
from tests.support.cli import run_cli
from tests.support.sandbox import Sandbox, a_user_write_is_visible, quiet_env

pytestmark = pytest.mark.milvus

EXPECTED = {f"{s.database}.{s.name}": s.expected_rows for s in SEED}


def counts(sandbox: Sandbox) -> dict[str, int]:
    with MilvusAdapter.connect(sandbox.uri) as milvus:
        return {c.key: c.rows for c in milvus.snapshot().collections}


def mq_in_use(sandbox: Sandbox) -> tuple[str | None, str | None]:
    status = lifecycle.status(quiet_env(), sandbox.dir)
    return status.mq_config, status.mq_log


def apply_args(sandbox: Sandbox, *extra: str) -> list[str]:
    return ["apply", "--playbook", str(sandbox.playbook), "--yes", *extra]


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
    assert not summaries["preflight"].startswith("would ")  # read-only steps run for real
    # Every other step is checked, read-only, and never shown as done.
    assert report["status"] == "dry-run"
    assert {s["state"] for s in report["steps"]} == {"checked"}
    assert "start command: `" in summaries["start"] and "run standalone`" in summaries["start"]
    gate = report["gate"]["kind"]  # firewall where this machine can set one, port isolation otherwise
    assert f"client gate: {'firewall' if gate == 'firewall' else 'port isolation'}" in summaries[report["steps"][1]["id"]]
    assert "config write" in summaries["rewrite-config"] and "etcd:" in summaries["verify"]

    assert {p.name: p.read_bytes() for p in milvus_sandbox.config_dir.iterdir()} == config_before
    assert lifecycle.status(quiet_env(), milvus_sandbox.dir).pid == pid_before
    assert not state_dir.exists()  # no journal, no lock, no report
    assert a_user_write_is_visible(milvus_sandbox, 10_000_000)
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
    assert a_user_write_is_visible(fresh_sandbox, 10_000_000)


def test_log_line_never_seen_hits_the_deadline_and_rolls_back(fresh_sandbox: Sandbox, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Milvus really starts on NATS, but the log source the playbook names never shows the proof
    (a wrong path, a log shipper that lags): the confirm deadline passes and apply rolls back."""
    import migrator.runtime
    from migrator.milvus.logs import FileFollower
    from migrator.runtime import firewall

    silent = tmp_path / "a-log-milvus-never-writes.log"
    silent.write_text("")
    real_factory = migrator.runtime.runtime_for_playbook
    followed: list[str] = []

    class TargetLogSourceSilent:
        """The log source is silent for the first start on the target: the second start of a run behind
        port isolation, the first behind the firewall gate."""

        def __init__(self, inner) -> None:
            self._inner = inner

        def __getattr__(self, name: str):
            return getattr(self._inner, name)

        def log_follower(self, mark: dict):
            followed.append("silent" if len(followed) == target_start else "real")
            if followed[-1] == "silent":
                return FileFollower(silent, None)
            return self._inner.log_follower(mark)

    behind_firewall = firewall.usable_tool()[0] is not None
    target_start = 0 if behind_firewall else 1
    monkeypatch.setattr(migrator.runtime, "runtime_for_playbook",
                        lambda playbook, environ: TargetLogSourceSilent(real_factory(playbook, environ)))
    with open(fresh_sandbox.playbook, "a") as playbook:
        playbook.write("  deadlines:\n    confirm_s: 15\n")

    result = run_cli(apply_args(fresh_sandbox))
    assert result.exit_code == 1, result.stderr
    assert "no proof that Milvus runs on natsmq before the deadline" in result.stderr
    # The target's start was never proved; every other start of the run and of its rollback was,
    # from the real log: behind the firewall the rollback's one start, behind port isolation the
    # source's isolated start before and the rollback's two (isolated, then for clients) after.
    assert followed == (["silent", "real"] if behind_firewall else ["real", "silent", "real", "real"])
    assert mq_in_use(fresh_sandbox) == ("rocksmq", "rocksmq")
    assert counts(fresh_sandbox) == EXPECTED
    assert a_user_write_is_visible(fresh_sandbox, 10_000_000)
