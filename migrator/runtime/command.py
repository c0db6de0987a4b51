"""Running a deployment's own commands (systemctl, docker, ...) and the `command` runtime,
whose stop/start/running/logs commands the operator writes in the playbook.

Every command is an argv list (no shell), has a timeout, and a failure becomes a domain error
quoting the command and the tail of its stderr.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from migrator.errors import MigrateError, Refused
from migrator.runtime.process import StartFailed, StopFailed, StopResult, healthz_ok

_STDERR_TAIL_LINES = 5
_STDERR_TAIL_CHARS = 600


class CommandFailed(MigrateError):
    """A deployment command (systemctl, docker, kubectl, ...) failed or timed out."""


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def stderr_tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()][-_STDERR_TAIL_LINES:]
    return " | ".join(lines)[-_STDERR_TAIL_CHARS:]


def run_argv(
    argv: Sequence[str],
    timeout_s: float,
    *,
    check: bool = True,
    error: type[MigrateError] = CommandFailed,
    timeout_error: type[MigrateError] | None = None,
    env: Mapping[str, str] | None = None,
) -> Completed:
    """Run `argv`; with `check`, a non-zero exit raises `error` naming the command and its stderr.
    Running past `timeout_s` raises `timeout_error` (default: `error`)."""
    command = list(argv)
    shown = " ".join(command)
    try:
        done = subprocess.run(  # noqa: S603 - argv lists from the playbook, never a shell
            command, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
        )
    except FileNotFoundError:
        raise Refused(f"`{shown}`: {command[0]} is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise (timeout_error or error)(f"`{shown}` did not finish within {timeout_s:.0f} s") from None
    result = Completed(command, done.returncode, done.stdout, done.stderr)
    if check and done.returncode != 0:
        tail = stderr_tail(done.stderr) or stderr_tail(done.stdout)
        raise error(f"`{shown}` failed (exit {done.returncode})" + (f": {tail}" if tail else ""))
    return result


def wait_until_healthy(
    running: Callable[[], bool],
    metrics_url: str,
    deadline_s: float,
    *,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Poll healthz until OK; fail fast once `running()` says Milvus is gone. Returns seconds waited."""
    started = time.monotonic()
    while True:
        if healthz_ok(metrics_url):
            return time.monotonic() - started
        if not running():
            raise StartFailed(f"{what} exited during start-up")
        if time.monotonic() - started > deadline_s:
            raise StartFailed(f"{what} not healthy within {deadline_s:.0f} s ({metrics_url}/healthz)")
        sleep(0.5)


def wait_until_stopped(running: Callable[[], bool], seconds: float, sleep: Callable[[float], None] = time.sleep) -> bool:
    until = time.monotonic() + seconds
    while running():
        if time.monotonic() >= until:
            return False
        sleep(0.2)
    return True


def time_mark() -> dict[str, Any]:
    """A mark for log sources that filter by time (`--since`): now, as text and as unix seconds."""
    now = datetime.now(timezone.utc)
    return {"since": now.isoformat(timespec="microseconds"), "since_unix": f"{now.timestamp():.6f}"}


@dataclass
class CommandRuntime:
    stop_argv: list[str]
    start_argv: list[str]
    logs_argv: list[str]
    metrics_url: str
    running_argv: list[str] | None = None
    declared_env: Mapping[str, str] = field(default_factory=dict)  # playbook environment + env files
    timeout_s: float = 300.0
    stop_grace_s: float = 15.0  # after the stop command returns, for `running` to say no
    sleep: Callable[[float], None] = time.sleep
    kind: str = "command"

    def running(self) -> bool:
        if self.running_argv is None:
            return healthz_ok(self.metrics_url)
        return run_argv(self.running_argv, self.timeout_s, check=False).returncode == 0

    def stop(self, deadline_s: float) -> StopResult:
        started = time.monotonic()
        if not self.running():
            return StopResult(pid=None, graceful=True, seconds=0.0)
        run_argv(self.stop_argv, max(deadline_s, self.timeout_s), error=StopFailed)
        graceful = time.monotonic() - started <= deadline_s
        if not wait_until_stopped(self.running, self.stop_grace_s, self.sleep):
            raise StopFailed(f"Milvus still running after `{' '.join(self.stop_argv)}`")
        return StopResult(pid=None, graceful=graceful, seconds=time.monotonic() - started)

    def start(self) -> None:
        run_argv(self.start_argv, self.timeout_s, error=StartFailed)

    def wait_healthy(self, deadline_s: float) -> float:
        return wait_until_healthy(self.running, self.metrics_url, deadline_s, what="Milvus", sleep=self.sleep)

    def environment(self) -> dict[str, str]:
        return dict(self.declared_env)

    def log_mark(self) -> dict[str, Any]:
        return time_mark()

    def log_follower(self, mark: dict[str, Any]):
        from migrator.logs import CommandFollower

        argv = [arg.replace("{since_unix}", mark["since_unix"]).replace("{since}", mark["since"])
                for arg in self.logs_argv]
        return CommandFollower(argv)
