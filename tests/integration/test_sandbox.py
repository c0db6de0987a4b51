"""The sandbox against a real Milvus 2.3.5: serves, seeds exactly, never starts twice, fails cleanly."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from migrator.milvus.client import MilvusAdapter
from migrator.sandbox.seed import SEED
from migrator.verbs import sandbox as lifecycle
from tests.support.cli import run_cli
from tests.support.sandbox import Sandbox, quiet_env, start_sandbox, stop_sandbox

pytestmark = pytest.mark.milvus


def test_seeded_counts_are_exact(milvus_sandbox: Sandbox) -> None:
    with MilvusAdapter.connect(milvus_sandbox.uri) as milvus:
        snapshot = milvus.snapshot()
    assert snapshot.version.startswith("v2.3.5")
    got = {c.key: (c.rows, c.loaded) for c in snapshot.collections}
    assert got == {f"{s.database}.{s.name}": (s.expected_rows, s.loaded) for s in SEED}


def test_second_up_does_not_start_a_second_process(milvus_sandbox: Sandbox) -> None:
    before = lifecycle.status(quiet_env(), milvus_sandbox.dir)
    result = run_cli(["--output", "json", "sandbox", "up", "--dir", str(milvus_sandbox.dir)])
    assert result.exit_code == 0, result.stderr
    assert result.json()["pid"] == before.pid
    binaries = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cwd(p) == milvus_sandbox.dir]
    assert len([p for p in binaries if "milvus" in _cmdline(p)]) == 1


def test_status_reads_mq_from_config_and_log(milvus_sandbox: Sandbox) -> None:
    result = run_cli(["--output", "json", "sandbox", "status", "--dir", str(milvus_sandbox.dir)])
    assert result.exit_code == 0, result.stderr
    status = result.json()
    assert status["running"] is True
    assert status["mq_config"] == "rocksmq"
    assert status["mq_log"] == "rocksmq"


def test_milvus_dying_at_start_is_refused_and_leaves_no_process(tmp_path: Path) -> None:
    """A NATS port taken after creation: Milvus 2.3.5 exits at once, the reason only in the NATS log."""
    root = tmp_path / "natsbox"
    start_sandbox(root, mq="natsmq")
    stop_sandbox(root)
    layout, state = lifecycle.load(root)
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        text = layout.milvus_yaml.read_text()
        layout.milvus_yaml.write_text(text.replace(f"port: {state.ports['nats']}", f"port: {taken}"))
        result = run_cli(["sandbox", "up", "--dir", str(root), "--timeout", "60"])
    assert result.exit_code == 3, result.stderr
    assert "exited during start-up" in result.stderr
    assert "address already in use" in result.stderr  # read from the sandbox's own NATS log
    assert lifecycle.status(quiet_env(), root).running is False


def _cwd(proc: Path) -> Path | None:
    try:
        return Path(proc / "cwd").resolve()
    except OSError:
        return None


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_text()
    except OSError:
        return ""
