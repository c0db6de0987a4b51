"""The command runtime and the command runner, with real (small) processes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from migrator.errors import Refused
from migrator.runtime.base import CommandFailed, StartFailed, StopFailed, run_argv
from migrator.runtime.command import CommandRuntime

DEAD_URL = "http://127.0.0.1:9"  # nothing serves healthz here


def test_failure_names_command_and_stderr_tail() -> None:
    script = "import sys; [print(f'line {i}', file=sys.stderr) for i in range(20)]; sys.exit(3)"
    with pytest.raises(CommandFailed) as failed:
        run_argv([sys.executable, "-c", script], 10)
    message = failed.value.message
    assert "failed (exit 3): line 15 | line 16 | line 17 | line 18 | line 19" in message
    assert "line 14" not in message


def test_timeout_and_missing_executable() -> None:
    with pytest.raises(StopFailed, match="did not finish within 1 s"):
        run_argv(["sleep", "5"], 1, error=StopFailed)
    with pytest.raises(Refused, match="no-such-tool-xyz is not on PATH"):
        run_argv(["no-such-tool-xyz"], 1)


def _runtime(tmp_path: Path, **overrides) -> CommandRuntime:
    flag = tmp_path / "running"
    fields = {
        "stop_argv": ["rm", "-f", str(flag)],
        "start_argv": ["touch", str(flag)],
        "running_argv": ["test", "-e", str(flag)],
        "logs_argv": [sys.executable, "-c", "import sys; print('since', sys.argv[1], sys.argv[2])", "{since}", "{since_unix}"],
        "metrics_url": DEAD_URL,
        "declared_env": {"MQ_TYPE": "rocksmq"},
        "sleep": lambda s: time.sleep(0.01),
    }
    return CommandRuntime(**{**fields, **overrides})


def test_stop_start_running_and_environment(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    assert not runtime.running()
    assert runtime.stop(5).pid is None  # nothing to stop
    runtime.start()
    assert runtime.running()
    result = runtime.stop(5)
    assert result.graceful and not runtime.running()
    assert runtime.environment() == {"MQ_TYPE": "rocksmq"}


def test_stop_that_leaves_milvus_running_fails(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, stop_argv=["true"], stop_grace_s=0.3)
    runtime.start()
    with pytest.raises(StopFailed, match="still running after `true`"):
        runtime.stop(1)


def test_start_failure_and_exit_during_start(tmp_path: Path) -> None:
    with pytest.raises(StartFailed, match="`false` failed"):
        _runtime(tmp_path, start_argv=["false"]).start()
    with pytest.raises(StartFailed, match="Milvus exited during start-up"):
        _runtime(tmp_path).wait_healthy(5)  # not running, healthz silent


def test_logs_command_gets_the_mark(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    mark = runtime.log_mark()
    follower = runtime.log_follower(mark)
    try:
        lines = list(follower.lines(time.monotonic() + 10))
    finally:
        follower.close()
    assert lines == [f"since {mark['since']} {mark['since_unix']}"]


def test_the_mark_is_the_moment_it_was_taken(tmp_path: Path) -> None:
    """A log line before the mark must never prove this start: `--since` is now, not earlier."""
    from datetime import datetime

    runtime = _runtime(tmp_path)
    before = time.time()
    mark = runtime.log_mark()
    after = time.time()
    follower = runtime.log_follower(mark)
    try:
        (line,) = list(follower.lines(time.monotonic() + 10))
    finally:
        follower.close()
    _, since, since_unix = line.split(" ")
    assert datetime.fromisoformat(since).tzinfo is not None  # an instant, not a local wall-clock time
    assert before - 0.001 <= datetime.fromisoformat(since).timestamp() <= after + 0.001
    assert before - 0.001 <= float(since_unix) <= after + 0.001
